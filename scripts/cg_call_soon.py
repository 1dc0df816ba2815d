"""Instructions per call_soon under callgrind (docs/architecture.md, "The
compiled build: choice of compiler").

    valgrind --tool=callgrind python scripts/cg_call_soon.py tideloop|asyncio|uvloop N

N calls to ``loop.call_soon`` in batches of 1 000, each batch run by one
``run_forever()`` (``stop`` queued last). Run it for two N (20 000 and
120 000) and divide the difference of the totals by the difference of N:
the cost of one ``call_soon`` plus running its handle, without start-up.
"""

from __future__ import annotations

import asyncio
import sys


def main() -> None:
    kind, n = sys.argv[1], int(sys.argv[2])
    if kind == "tideloop":
        import tideloop

        loop = tideloop.new_event_loop()
    elif kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    def callback() -> None:
        pass

    call_soon = loop.call_soon
    stop = loop.stop
    for _ in range(n // 1000):
        for _ in range(1000):
            call_soon(callback)
        call_soon(stop)
        loop.run_forever()
    loop.close()


if __name__ == "__main__":
    main()
