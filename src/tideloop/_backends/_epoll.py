"""epoll(7) backend, the default on Linux.

Level-triggered, one registration per fd holding the union of the watched
directions (EPOLL_CTL_MOD when a direction is added or dropped). See _base for
the stale-fd policy; the errno handling below implements it (epoll_ctl(2)).
"""

from __future__ import annotations

import errno
import select
from collections.abc import Callable

from ._base import Backend, EventList

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT


class EpollBackend(Backend):
    name = "epoll"

    def __init__(self) -> None:
        super().__init__()
        self._epoll = select.epoll()
        try:
            self._epoll.register(self._waker.read_fd, _IN)
        except BaseException:
            self._epoll.close()
            self._waker.close()
            raise

    def fileno(self) -> int:
        return self._epoll.fileno()

    def _register(self, fd: int, read: bool, write: bool, old_read: bool, old_write: bool) -> None:
        mask = (_IN if read else 0) | (_OUT if write else 0)
        epoll = self._epoll
        if not (old_read or old_write):
            try:
                epoll.register(fd, mask)
            except FileExistsError:
                epoll.modify(fd, mask)
        elif mask:
            try:
                epoll.modify(fd, mask)
            except FileNotFoundError:
                epoll.register(fd, mask)
            except OSError as exc:
                # Dropping one direction of an fd that was closed: the kernel
                # forgot it with the close (EBADF), as for an unregister.
                if exc.errno != errno.EBADF or (read and write) or not (old_read and old_write):
                    raise
        else:
            try:
                epoll.unregister(fd)
            except OSError as exc:
                if exc.errno not in (errno.EBADF, errno.ENOENT):
                    raise

    def poll(self, timeout: float | None) -> EventList:
        return self._epoll.poll(timeout)

    def poll_function(self) -> Callable[[float | None], EventList]:
        # The C method directly: no Python frame per iteration. It takes the
        # loop's timeouts as they are (None blocks, seconds as a float, rounded
        # up to whole milliseconds) and returns at most FD_SETSIZE-1 events.
        return self._epoll.poll

    def _close_poller(self) -> None:
        self._epoll.close()
