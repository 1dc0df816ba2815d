"""poll(2) backend: portable to every POSIX system, O(n) per call.

A closed fd that is still registered reports POLLNVAL. epoll(7) forgets a
closed fd silently, and so do we: the number is dropped from the poll set
(the handles stay, so remove_reader still reports True, and watching the
number again re-adds it). ``selectors.PollSelector`` instead wakes the
callbacks on every iteration, a busy loop.
"""

from __future__ import annotations

import select

from ._base import Backend, EventList, ceil_ms, check_fd_open

_IN = select.POLLIN
_OUT = select.POLLOUT
_NVAL = select.POLLNVAL


class PollBackend(Backend):
    name = "poll"

    def __init__(self) -> None:
        super().__init__()
        self._poll = select.poll()
        self._poll.register(self._waker.read_fd, _IN)

    def _register(self, fd: int, read: bool, write: bool, old_read: bool, old_write: bool) -> None:
        if not (old_read or old_write):
            check_fd_open(fd)
        mask = (_IN if read else 0) | (_OUT if write else 0)
        if mask:
            self._poll.register(fd, mask)  # register() also modifies
        else:
            try:
                self._poll.unregister(fd)
            except KeyError:
                pass

    def poll(self, timeout: float | None) -> EventList:
        events = self._poll.poll(None if timeout is None else ceil_ms(timeout))
        for _fd, mask in events:
            if mask & _NVAL:
                return self._drop_invalid(events)
        return events

    def _drop_invalid(self, events: EventList) -> EventList:
        kept: EventList = []
        for fd, mask in events:
            if mask & _NVAL:
                self._poll.unregister(fd)
            else:
                kept.append((fd, mask))
        return kept

    def _close_poller(self) -> None:
        del self._poll
