"""poll(2) backend: portable to every POSIX system, O(n) per call.

A closed fd that is still registered reports POLLNVAL, which wakes both its
reader and writer (as ``selectors.PollSelector`` does): each then sees EBADF
from its own syscall.
"""

from __future__ import annotations

import select
from collections import deque
from typing import Any

from ._base import Backend, EventList, ceil_ms

_IN = select.POLLIN
_OUT = select.POLLOUT


class PollBackend(Backend):
    name = "poll"

    def __init__(self, ready: deque[Any]) -> None:
        super().__init__(ready)
        self._poll = select.poll()
        self._poll.register(self._waker.read_fd, _IN)

    def _register(self, fd: int, read: bool, write: bool, old_read: bool, old_write: bool) -> None:
        mask = (_IN if read else 0) | (_OUT if write else 0)
        if mask:
            self._poll.register(fd, mask)  # register() also modifies
        else:
            try:
                self._poll.unregister(fd)
            except KeyError:
                pass

    def poll(self, timeout: float | None) -> EventList:
        self.polls += 1
        return self._poll.poll(None if timeout is None else ceil_ms(timeout))

    def _close_poller(self) -> None:
        del self._poll
