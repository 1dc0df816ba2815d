"""select(2) backend: the last resort, limited to FD_SETSIZE descriptors.

select(2) fails as a whole with EBADF when any watched fd was closed
(``selectors.SelectSelector`` lets that error out of the loop). Like epoll,
which forgets closed fds, we drop the closed numbers from the sets (keeping
their handles, so remove_reader still reports True) and poll again.
"""

from __future__ import annotations

import errno
import os
import select

from ._base import IN_BIT, OUT_BIT, Backend, EventList, check_fd_open


class SelectBackend(Backend):
    name = "select"

    def __init__(self) -> None:
        super().__init__()
        self._rset: set[int] = {self._waker.read_fd}
        self._wset: set[int] = set()

    def _register(self, fd: int, read: bool, write: bool, old_read: bool, old_write: bool) -> None:
        if not (old_read or old_write):
            check_fd_open(fd)
        if read:
            self._rset.add(fd)
        else:
            self._rset.discard(fd)
        if write:
            self._wset.add(fd)
        else:
            self._wset.discard(fd)

    def poll(self, timeout: float | None) -> EventList:
        while True:
            try:
                r, w, _ = select.select(self._rset, self._wset, [], timeout)
                break
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise
                self._drop_closed()
        if not w:
            return [(fd, IN_BIT) for fd in r]
        masks: dict[int, int] = dict.fromkeys(r, IN_BIT)
        for fd in w:
            masks[fd] = masks.get(fd, 0) | OUT_BIT
        return list(masks.items())

    def _drop_closed(self) -> None:
        for fd in list(self._rset | self._wset):
            try:
                os.fstat(fd)
            except OSError:
                self._rset.discard(fd)
                self._wset.discard(fd)

    def _close_poller(self) -> None:
        self._rset.clear()
        self._wset.clear()
