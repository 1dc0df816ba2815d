"""tideloop: a drop-in asyncio event loop written in Python.

Public API only. Everything else lives in private modules; ``__all__`` is the
contract and a test checks it.

    asyncio.run(main(), loop_factory=tideloop.new_event_loop)   # 3.12+
    with asyncio.Runner(loop_factory=tideloop.new_event_loop) as r: ...
    tideloop.run(main())

Builds: ``pip install`` compiles the hot-path modules with mypyc where it
can; ``TIDELOOP_PURE_PYTHON=1`` selects the pure-Python build at run time
(``python -m tideloop info`` says which runs).
"""

from __future__ import annotations

# First import: with TIDELOOP_PURE_PYTHON set, importing _build installs the
# finder that imports the submodules below from their .py files even where
# compiled ones are installed (tideloop/_build.py). This file and _build.py
# are never compiled.
from . import _build  # noqa: F401
from ._backends import available_backends, default_backend
from ._blockbuster import allow_in_blockbuster
from ._clock import VirtualClock
from ._loop import EventLoop, new_event_loop
from ._metrics import LagHistogram, LoopMetrics, SlowCallback
from ._runner import EventLoopPolicy, install, run

__version__ = "0.1.0"

__all__ = [
    "EventLoop",
    "EventLoopPolicy",
    "LagHistogram",
    "LoopMetrics",
    "SlowCallback",
    "VirtualClock",
    "__version__",
    "allow_in_blockbuster",
    "available_backends",
    "default_backend",
    "install",
    "new_event_loop",
    "run",
]
