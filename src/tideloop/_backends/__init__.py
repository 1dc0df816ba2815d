"""Readiness backends behind the loop's narrow I/O seam (DESIGN.md section 3).

Selection is per loop: ``new_event_loop(backend="poll")``, else the
``TIDELOOP_BACKEND`` environment variable, else the first available of
epoll, kqueue, poll, select.
"""

from __future__ import annotations

import os
import select

from ._base import Backend

__all__ = ["Backend", "available_backends", "default_backend", "make_backend"]

_PREFERENCE = ("epoll", "kqueue", "poll", "select")
ENV_VAR = "TIDELOOP_BACKEND"


def _is_available(name: str) -> bool:
    if name == "epoll":
        return hasattr(select, "epoll")
    if name == "kqueue":
        return hasattr(select, "kqueue")
    if name == "poll":
        return hasattr(select, "poll")
    return name == "select"


def available_backends() -> list[str]:
    """Names of the backends this platform supports, best first."""
    return [name for name in _PREFERENCE if _is_available(name)]


def default_backend() -> str:
    """The backend a loop gets without an explicit choice."""
    env = os.environ.get(ENV_VAR)
    if env:
        return _check_name(env)
    return available_backends()[0]


def _check_name(name: str) -> str:
    if name not in _PREFERENCE:
        raise ValueError(
            f"unknown tideloop backend {name!r}; expected one of {', '.join(_PREFERENCE)}"
        )
    if not _is_available(name):
        raise ValueError(f"tideloop backend {name!r} is not available on this platform")
    return name


def backend_class(name: str | None) -> type[Backend]:
    name = default_backend() if name is None else _check_name(name)
    if name == "epoll":
        from ._epoll import EpollBackend

        return EpollBackend
    if name == "kqueue":
        from ._kqueue import KqueueBackend

        return KqueueBackend
    if name == "poll":
        from ._poll import PollBackend

        return PollBackend
    from ._select import SelectBackend

    return SelectBackend


def make_backend(name: str | None) -> Backend:
    return backend_class(name)()
