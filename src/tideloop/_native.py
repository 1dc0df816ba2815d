"""Marks for the compiled build (docs/architecture.md, "The compiled build").

``mypyc_attr`` is mypyc's class decorator, read by mypyc from the source; at
run time (the pure build, or a module left uncompiled) it does nothing, so
tideloop needs no runtime dependency for it. Uses in tideloop:

- ``@mypyc_attr(native_class=False)``: the class stays a Python class when
  its module is compiled (a subclass of asyncio's ``Handle``, whose
  ``__slots__`` a native class cannot extend, or a class whose instances
  tests patch);
- ``@mypyc_attr(allow_interpreted_subclasses=True)``: a native class that
  uncompiled classes subclass (the loop's parts above a compiled part).

Cython's pure-Python mode ignores it: there a class is native only if a
``.pxd`` beside the module declares it ``cdef class``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

_C = TypeVar("_C", bound=type)

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr as mypyc_attr
else:

    def mypyc_attr(*attrs: Any, **kwattrs: Any) -> Callable[[_C], _C]:
        def keep(cls: _C) -> _C:
            return cls

        return keep
