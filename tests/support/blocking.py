"""Wait until a thread sleeps inside the event loop's poll (Linux /proc).

Signal tests need to know that the target thread is blocked in epoll_wait,
poll or select before they signal it, or they test a race instead of a
behaviour. The kernel names the function a sleeping thread waits in
(``/proc/PID/task/TID/wchan``): ``do_epoll_wait``, ``do_sys_poll``,
``do_select``. A thread waiting for the GIL sleeps in a futex instead.
"""

from __future__ import annotations

import time

_POLL_WAITS = ("epoll", "poll", "select")


def wait_until_blocked_in_poll(pid: int, tid: int, timeout: float = 20.0) -> None:
    path = f"/proc/{pid}/task/{tid}/wchan"
    deadline = time.monotonic() + timeout
    while True:
        with open(path) as f:
            wchan = f.read()
        if any(name in wchan for name in _POLL_WAITS):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"thread {tid} never blocked in a poll (wchan {wchan!r})")
        time.sleep(0.0005)  # polling interval of the condition above, not a wait for it
