"""ShutdownPart: the loop's two shutdown coroutines, ``shutdown_asyncgens``
and ``shutdown_default_executor``.

Kept out of ``_core``, which the compiled build compiles: a coroutine
compiled by mypyc passes exceptions into what it awaits with the
``throw(type, value, traceback)`` signature, which Python 3.12+ reports as a
DeprecationWarning when a timeout cancels the wait. These run once per loop;
interpreted is right for them.
"""

from __future__ import annotations

import asyncio
import threading
import warnings

from ._core import _SHUTDOWN_TIMEOUT_BOUNDS_WAIT, LoopCore


class ShutdownPart(LoopCore):
    """The shutdown coroutines of the loop's lifecycle (see ``tideloop._loop``)."""

    async def shutdown_asyncgens(self) -> None:
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing_agens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(
            *[ag.aclose() for ag in closing_agens], return_exceptions=True
        )
        for result, agen in zip(results, closing_agens, strict=True):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": "an error occurred during closing of "
                        f"asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Shut the default executor down, waiting at most ``timeout`` seconds.

        ``timeout`` exists on Python 3.12+; it is accepted on 3.11 too (as
        ``asyncio.Runner`` of 3.12+ passes it) and behaves as on 3.13.
        """
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        future = self.create_future()
        thread = threading.Thread(target=self._do_shutdown, args=(executor, future))
        thread.start()
        if not _SHUTDOWN_TIMEOUT_BOUNDS_WAIT:
            try:
                await future
            finally:
                thread.join(timeout)
            if thread.is_alive():
                warnings.warn(
                    f"The executor did not finishing joining its threads within {timeout} seconds.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                executor.shutdown(wait=False)
            return
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            warnings.warn(
                f"The executor did not finishing joining its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        else:
            thread.join()

