"""kqueue(2) backend for BSD and macOS (not exercised on Linux CI).

kqueue keeps one filter per direction, so adding or dropping a direction is
one change for that filter only. EV_EOF and EV_ERROR map to both directions,
as an error or hang-up does on the other backends.
"""

from __future__ import annotations

import select
from typing import Any

from ._base import IN_BIT, OUT_BIT, Backend, EventList

MAX_EVENTS = 1024
_HUP_BIT = 0x010  # any bit outside IN/OUT wakes both directions


class KqueueBackend(Backend):  # pragma: no cover - not on Linux
    name = "kqueue"

    def __init__(self) -> None:
        super().__init__()
        self._kq: Any = select.kqueue()  # type: ignore[attr-defined,unused-ignore]
        self._change(self._waker.read_fd, True, True)

    def fileno(self) -> int:
        return int(self._kq.fileno())

    def _change(self, fd: int, read: bool, add: bool) -> None:
        kq = select  # the names only exist on BSD/macOS
        flt = kq.KQ_FILTER_READ if read else kq.KQ_FILTER_WRITE  # type: ignore[attr-defined,unused-ignore]
        flags = kq.KQ_EV_ADD if add else kq.KQ_EV_DELETE  # type: ignore[attr-defined,unused-ignore]
        kev = kq.kevent(fd, filter=flt, flags=flags)  # type: ignore[attr-defined,unused-ignore]
        try:
            self._kq.control([kev], 0, 0)
        except OSError:
            if add:
                raise

    def _register(self, fd: int, read: bool, write: bool, old_read: bool, old_write: bool) -> None:
        if read != old_read:
            self._change(fd, True, read)
        if write != old_write:
            self._change(fd, False, write)

    def poll(self, timeout: float | None) -> EventList:
        kq = select
        nfds = len(self._readers) + len(self._writers) + 1
        out: EventList = []
        for kev in self._kq.control(None, min(nfds, MAX_EVENTS), timeout):
            mask = IN_BIT if kev.filter == kq.KQ_FILTER_READ else OUT_BIT  # type: ignore[attr-defined,unused-ignore]
            if kev.flags & (kq.KQ_EV_EOF | kq.KQ_EV_ERROR):  # type: ignore[attr-defined,unused-ignore]
                mask |= _HUP_BIT
            out.append((kev.ident, mask))
        return out

    def _close_poller(self) -> None:
        self._kq.close()
