"""Loop factories, and the patch that makes asyncio hand out our loop.

Two ways a CPython test gets an event loop, and how each is redirected:

1. **Mixin suites** (``_suites.py``) build their own ``TestCase`` classes and
   override the factory method the upstream mixin calls
   (``create_event_loop`` / ``new_loop``) with :func:`make_factory`. Nothing
   global is patched for those loops.

2. **Whole-module suites** run CPython's modules untouched; the loop comes from
   ``asyncio.new_event_loop()``, ``asyncio.run()``, ``asyncio.Runner`` or
   ``unittest.IsolatedAsyncioTestCase``. All of them end in
   ``get_event_loop_policy().new_event_loop()``, which for the default policy
   is ``BaseDefaultEventLoopPolicy.new_event_loop`` -> ``self._loop_factory()``.

   :func:`install_default_factory` therefore replaces the *class attribute*
   ``_loop_factory`` of ``asyncio.DefaultEventLoopPolicy`` (on Unix that is
   ``unix_events._UnixDefaultEventLoopPolicy``) with a ``staticmethod``.
   Why the class attribute and not ``set_event_loop_policy(OurPolicy())``:

   * many modules call ``asyncio.set_event_loop_policy(None)`` in
     ``tearDownModule``/``tearDown``; the next ``get_event_loop_policy()``
     then lazily builds a *fresh* ``DefaultEventLoopPolicy()``. An installed
     policy instance would be lost, a patched class is not;
   * tests that build ``asyncio.DefaultEventLoopPolicy()`` themselves (policy
     and child-watcher tests) get our loop too;
   * ``isinstance(policy, asyncio.DefaultEventLoopPolicy)`` and every other
     policy behaviour (``get_event_loop`` rules, child watchers, deprecation
     warnings) stay stock, so the policy tests keep testing asyncio's policy
     while the loops they create are ours.

   Loops that a test builds explicitly (``asyncio.SelectorEventLoop()``,
   ``asyncio.BaseEventLoop()``, ``test_utils.TestLoop``, 3.13's
   ``asyncio.EventLoop``) are deliberately left alone: those tests are about
   asyncio's own implementation.

Every factory is wrapped by :class:`LoopCounter` so the worker can tell, per
test, whether the test created at least one loop from the factory under test
(the "on loop" column of the report). With ``--loop asyncio`` the very same
patch is installed with a factory returning stock loops, which validates the
mechanism itself: that run must be green.
"""

from __future__ import annotations

import asyncio
import importlib
import selectors
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

LOOP_KINDS: tuple[str, ...] = ("tideloop", "asyncio")

#: tideloop backend name -> the stock selector class that mirrors it.
_SELECTOR_FOR_BACKEND: dict[str, str] = {
    "epoll": "EpollSelector",
    "poll": "PollSelector",
    "select": "SelectSelector",
    "kqueue": "KqueueSelector",
    "devpoll": "DevpollSelector",
}

REPO_SRC = Path(__file__).resolve().parents[2] / "src"


def import_tideloop() -> ModuleType:
    """Import tideloop; fall back to the repo's ``src/`` when not installed."""
    try:
        return importlib.import_module("tideloop")
    except ImportError:
        if not (REPO_SRC / "tideloop").is_dir() or str(REPO_SRC) in sys.path:
            raise
    sys.path.insert(0, str(REPO_SRC))
    for name in [m for m in sys.modules if m == "tideloop" or m.startswith("tideloop.")]:
        del sys.modules[name]
    return importlib.import_module("tideloop")


class LoopCounter:
    """Counts the loops a factory has produced (read by the worker per test)."""

    created: int = 0

    @classmethod
    def wrap(cls, factory: LoopFactory) -> LoopFactory:
        def counted() -> asyncio.AbstractEventLoop:
            loop = factory()
            cls.created += 1
            return loop

        counted.__name__ = f"counted_{getattr(factory, '__name__', 'factory')}"
        counted.__qualname__ = counted.__name__
        return counted


def backends(loop_kind: str) -> list[str]:
    """Backends the mixin suites are instantiated for, in upstream order."""
    if loop_kind == "tideloop":
        names: list[str] = list(import_tideloop().available_backends())
        return names
    return [b for b, sel in _SELECTOR_FOR_BACKEND.items() if hasattr(selectors, sel)]


def make_factory(loop_kind: str, backend: str | None = None) -> LoopFactory:
    """A zero-argument callable returning a new loop of *loop_kind*.

    ``backend=None`` means the default: ``tideloop.new_event_loop()`` or the
    stock ``asyncio.DefaultEventLoopPolicy._loop_factory`` (captured before
    any patching).
    """
    if loop_kind == "tideloop":
        tideloop = import_tideloop()
        if backend is None:
            new_loop: LoopFactory = tideloop.new_event_loop
        else:

            def new_loop() -> asyncio.AbstractEventLoop:
                loop: asyncio.AbstractEventLoop = tideloop.new_event_loop(backend=backend)
                return loop

        return LoopCounter.wrap(new_loop)
    if loop_kind == "asyncio":
        if backend is None:
            stock: Callable[[], asyncio.AbstractEventLoop] = _STOCK_LOOP_FACTORY
            return LoopCounter.wrap(stock)
        selector_cls = getattr(selectors, _SELECTOR_FOR_BACKEND[backend])

        def new_selector_loop() -> asyncio.AbstractEventLoop:
            return asyncio.SelectorEventLoop(selector_cls())

        return LoopCounter.wrap(new_selector_loop)
    raise ValueError(f"unknown loop kind {loop_kind!r}")


def _policy_class() -> type[asyncio.AbstractEventLoopPolicy]:
    cls: type[asyncio.AbstractEventLoopPolicy] = asyncio.DefaultEventLoopPolicy
    return cls


def _stock_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    factory: Callable[[], asyncio.AbstractEventLoop] = _policy_class().__dict__.get(
        "_loop_factory", asyncio.SelectorEventLoop
    )
    return factory


_STOCK_LOOP_FACTORY = _stock_loop_factory()


def install_default_factory(factory: LoopFactory) -> None:
    """Make every default-policy ``new_event_loop()`` call use *factory*.

    See the module docstring for why the policy *class* is patched.
    """
    policy_cls = _policy_class()
    if not hasattr(policy_cls, "_loop_factory"):  # pragma: no cover - future Pythons
        raise RuntimeError(f"{policy_cls!r} has no _loop_factory; the patch needs updating")
    policy_cls._loop_factory = staticmethod(factory)  # type: ignore[attr-defined]
    # Drop any policy instance created before the patch (none should exist).
    asyncio.set_event_loop_policy(None)
