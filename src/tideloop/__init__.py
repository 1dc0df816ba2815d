"""tideloop: a drop-in asyncio event loop written in Python.

Public API only. Everything else lives in private modules; ``__all__`` is the
contract and a test checks it.

    asyncio.run(main(), loop_factory=tideloop.new_event_loop)   # 3.12+
    with asyncio.Runner(loop_factory=tideloop.new_event_loop) as r: ...
    tideloop.run(main())
"""

from __future__ import annotations

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
