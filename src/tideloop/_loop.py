"""EventLoop: lifecycle, the run loop, callbacks, timers, executors, errors.

tideloop implements ``asyncio.AbstractEventLoop`` without subclassing
``asyncio.BaseEventLoop``: asyncio's public ``Future``/``Task`` (C
accelerated), ``Handle``/``TimerHandle`` and protocol classes are used as
they are; the scheduler, the I/O backends and the transports are our own.

One iteration (``_run_once``) does what asyncio's does, in the same order,
because programs depend on that order:
1. drop cancelled timers from the head of the heap (or rebuild the heap when
   cancelled timers dominate it, asyncio's rule);
2. poll the backend, with timeout 0 if callbacks are ready, else up to the
   next timer;
3. queue the handles of ready fds, then the expired timers;
4. run the callbacks that were queued when the iteration started (callbacks
   they schedule run in the next iteration, after another poll).

Timers live in a heap of ``(when, seq, handle)`` tuples: tuple comparison
runs in C, and ``seq`` keeps timers with equal deadlines in FIFO order.
Cancelling a timer is O(1) (it is only counted); the heap is compacted
lazily. The clock is read through ``self.time()`` so code that patches
``loop.time`` moves the timers, as it does on asyncio.

Must not import transport modules at import time (they import this one).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import heapq
import logging
import os
import socket
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar, TypeVarTuple, Unpack

from ._backends import make_backend
from ._clock import VirtualClock
from ._errors import ErrorsMixin
from ._handles import Handle, TimerHandle, caller_stack
from ._metrics import LoopMetrics, Meter, metrics_enabled_by_default
from ._metrics import attach as attach_meter
from ._net import NetMixin, answers_inline
from ._signals import SignalsMixin
from ._sock_api import SockAPIMixin
from ._sock_api import _check_sendfile_params as check_sendfile_params
from ._subprocess import SubprocessMixin
from ._tls import TLSMixin
from ._transports._datagram import DatagramMixin
from ._transports._pipes import PipesMixin

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

logger = logging.getLogger("asyncio")

MAXIMUM_SELECT_TIMEOUT_S = 24 * 3600.0
# asyncio's compaction rule: rebuild the heap when more than this many timers
# are scheduled and more than this fraction of them are cancelled.
MIN_SCHEDULED_TIMER_HANDLES = 100
MIN_CANCELLED_TIMER_HANDLES_FRACTION = 0.5
DEBUG_STACK_DEPTH = 10
RECV_BUFFER_BYTES = 256 * 1024
_monotonic = time.monotonic
_new_handle = object.__new__
# gh-111358 (3.12.3): shutdown_default_executor's timeout bounds the wait for
# the executor; 3.12.0-3.12.2 wait for the jobs and only bound the join.
_SHUTDOWN_TIMEOUT_BOUNDS_WAIT = sys.version_info >= (3, 12, 3) or sys.version_info < (3, 12)

_TimerEntry = tuple[float, int, TimerHandle]


def _is_debug_mode() -> bool:
    # asyncio's own rule, looked up at each call as BaseEventLoop does, so that
    # a patched asyncio.coroutines._is_debug_mode (CPython's tests) applies.
    probe = getattr(asyncio.coroutines, "_is_debug_mode", None)
    if probe is not None:
        return bool(probe())
    return sys.flags.dev_mode or (
        not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG"))
    )


def _is_coroutine_callable(obj: object) -> bool:
    return asyncio.iscoroutine(obj) or asyncio.iscoroutinefunction(obj)


def _run_until_complete_cb(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # run_forever() already stopped by letting the exception out.
            return
    fut.get_loop().stop()


def _format_handle(handle: asyncio.Handle) -> str:
    cb = handle._callback  # type: ignore[attr-defined]
    task = getattr(cb, "__self__", None)
    if isinstance(task, asyncio.Task):
        # format the task
        return repr(task)
    return str(handle)


class EventLoop(  # type: ignore[misc]
    ErrorsMixin,
    TLSMixin,
    SubprocessMixin,
    PipesMixin,
    DatagramMixin,
    NetMixin,
    SignalsMixin,
    SockAPIMixin,
    asyncio.AbstractEventLoop,
):
    """A complete asyncio event loop. Create it with ``tideloop.new_event_loop()``."""

    def __init__(
        self,
        *,
        backend: str | None = None,
        clock: VirtualClock | None = None,
        metrics: bool | None = None,
    ) -> None:
        # Closed until construction completes: a loop whose backend could not
        # be made has nothing to close and must not warn from __del__.
        self._closed = True
        self._thread_id: int | None = None
        self._stopping = False
        # Holds our Handle and TimerHandle (siblings under asyncio.Handle).
        self._ready: deque[Any] = deque()
        self._scheduled: list[_TimerEntry] = []
        self._timer_seq = 0
        self._timer_cancelled_count = 0
        self._backend = make_backend(backend, self._ready)
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._clock_resolution = time.get_clock_info("monotonic").resolution
        self._exception_handler: Callable[[Any, dict[str, Any]], object] | None = None
        self._debug = False
        self.set_debug(_is_debug_mode())
        self.slow_callback_duration = 0.1
        self._current_handle: asyncio.Handle | None = None
        self._task_factory: Any = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth: int | None = None
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._executor_shutdown_called = False
        self._old_agen_hooks: Any = None
        # fd -> transport, for asyncio's "File descriptor ... is used by
        # transport" checks in add_reader/sock_* (filled by transports).
        self._transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._callbacks_run = 0
        self._timers_cancelled = 0
        self._slow_callbacks = 0
        self._run_seconds = 0.0
        self._run_started = 0.0
        # One receive buffer for every Protocol transport of this loop.
        self._recv_buffer = bytearray(RECV_BUFFER_BYTES)
        self._recv_view = memoryview(self._recv_buffer)
        # Transports with writes to send at the end of this iteration.
        self._flush_queue: list[Any] = []
        # Servers that stopped accepting for lack of descriptors.
        self._paused_servers: set[Any] = set()
        self._unix_server_sockets: dict[socket.socket, int] = {}
        # fd -> the file object add_reader/add_writer got, if not an int.
        self._fileobjs: dict[int, Any] = {}
        self._init_signals()
        # HOOK (health): opt-in meters and a virtual clock join the loop from
        # outside the run loop, by replacing on this instance what the run loop
        # looks up on self or on the backend: _run_ready, _run_ready_debug and
        # backend.poll_and_run (_metrics.py); time and backend.poll (_clock.py).
        self._meter: Meter | None = None
        if metrics is None:
            metrics = metrics_enabled_by_default()
        if metrics:
            self._meter = attach_meter(self)
        if clock is not None:
            clock._attach(self)
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"<{self.__class__.__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    # -- futures and tasks ---------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[_T]:
        self._check_closed()
        if self._task_factory is None:
            task: asyncio.Task[_T] = asyncio.Task(coro, loop=self, name=name, context=context)
            tb = task._source_traceback  # type: ignore[attr-defined]
            if tb:
                del tb[-1]
        else:
            if context is None:
                # The legacy factory signature, as asyncio calls it.
                task = self._task_factory(self, coro)
            else:
                task = self._task_factory(self, coro, context=context)
            if name is not None:
                task.set_name(name)
        return task

    def set_task_factory(self, factory: Any) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        return self._task_factory

    # -- lifecycle -------------------------------------------------------------

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_running(self) -> None:
        if self._thread_id is not None:
            raise RuntimeError("This event loop is already running")
        if asyncio._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _check_default_executor(self) -> None:
        if self._executor_shutdown_called:
            raise RuntimeError("Executor shutdown has been called")

    def _check_thread(self) -> None:
        """Debug-mode guard: non-thread-safe calls from a foreign thread."""
        if self._thread_id is None:
            return
        if threading.get_ident() != self._thread_id:
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one"
            )

    def _check_callback(self, callback: object, method: str) -> None:
        if _is_coroutine_callable(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

    def _run_forever_setup(self) -> None:
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        self._old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
        )
        asyncio._set_running_loop(self)
        self._claim_signal_wakeup()
        self._run_started = _monotonic()

    def _run_forever_cleanup(self) -> None:
        self._run_seconds += _monotonic() - self._run_started
        self._stopping = False
        self._thread_id = None
        self._release_signal_wakeup()
        asyncio._set_running_loop(None)
        self._set_coroutine_origin_tracking(False)
        if self._old_agen_hooks is not None:
            sys.set_asyncgen_hooks(*self._old_agen_hooks)
            self._old_agen_hooks = None

    def run_forever(self) -> None:
        # Setup stays outside the try: a refused nested run must not tear
        # down the state of the run that is going on.
        self._run_forever_setup()
        try:
            run_once = self._run_once
            while True:
                run_once()
                if self._stopping:
                    break
        finally:
            self._run_forever_cleanup()

    def run_until_complete(self, future: Generator[Any, None, _T] | Awaitable[_T]) -> _T:
        self._check_closed()
        self._check_running()
        new_task = not asyncio.isfuture(future)
        fut: asyncio.Future[_T] = asyncio.ensure_future(future, loop=self)  # type: ignore[arg-type]
        if new_task:
            # The caller sees the outcome, so the task need not log it.
            fut._log_destroy_pending = False  # type: ignore[attr-defined]
        fut.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and fut.done() and not fut.cancelled():
                # Consume the exception: the caller has no handle on the task.
                fut.exception()
            raise
        finally:
            fut.remove_done_callback(_run_until_complete_cb)
        if not fut.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return fut.result()

    def stop(self) -> None:
        self._stopping = True

    def is_running(self) -> bool:
        return self._thread_id is not None

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._closed = True
        self._ready.clear()
        for entry in self._scheduled:
            entry[2]._scheduled = False
        self._scheduled.clear()
        self._timer_cancelled_count = 0
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        self._close_transports()
        self._backend.close()
        self._close_signals()

    def _close_transports(self) -> None:
        """Loop close: children still running go to reaper threads."""
        self._close_subprocesses()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning,
                source=self,
            )
        self._asyncgens.add(agen)

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

    def _do_shutdown(
        self, executor: concurrent.futures.ThreadPoolExecutor, future: asyncio.Future[None]
    ) -> None:
        try:
            executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(_set_result_unless_cancelled, future, None)
        except Exception as ex:
            if not self.is_closed() and not future.cancelled():
                self.call_soon_threadsafe(future.set_exception, ex)

    # -- scheduling ------------------------------------------------------------

    def time(self) -> float:
        return time.monotonic()

    def call_soon(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        # Handle's fields set here rather than by Handle(...): no __init__
        # frame for the loop's most frequent allocation (futures call this).
        handle = _new_handle(Handle)
        handle._context = contextvars.copy_context() if context is None else context
        handle._loop = self
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = None
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
            handle._source_traceback = caller_stack(1, 2)  # type: ignore[assignment]
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = Handle(callback, args, self, context)
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
            handle._source_traceback = caller_stack(1, 2)  # type: ignore[assignment]
        self._ready.append(handle)
        self._backend.wakeup()
        return handle

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        return self._call_at(self.time() + delay, callback, args, context, 3)

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        return self._call_at(when, callback, args, context, 2)

    def _call_at(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
        internal_frames: int,
    ) -> TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        timer = TimerHandle(when, callback, args, self, context)
        if self._debug:
            stack = caller_stack(2, internal_frames)
            timer._source_traceback = stack  # type: ignore[assignment]
        seq = self._timer_seq = self._timer_seq + 1
        heapq.heappush(self._scheduled, (when, seq, timer))
        timer._scheduled = True
        return timer

    def _timer_handle_cancelled(self, handle: TimerHandle) -> None:
        """Called by TimerHandle.cancel(): count it, compact later."""
        if handle._scheduled:
            self._timer_cancelled_count += 1
            self._timers_cancelled += 1

    def _add_callback(self, handle: asyncio.Handle) -> None:
        if not handle._cancelled:  # type: ignore[attr-defined]
            self._ready.append(handle)  # type: ignore[arg-type]

    def _add_callback_signalsafe(self, handle: asyncio.Handle) -> None:
        self._add_callback(handle)
        self._backend.wakeup()

    def _write_to_self(self) -> None:
        """asyncio's name for the self-wakeup; some libraries call it."""
        self._backend.wakeup()

    # -- the run loop ------------------------------------------------------------

    def _run_once(self) -> None:
        scheduled = self._scheduled
        ready = self._ready

        if scheduled:
            count = len(scheduled)
            if (
                count > MIN_SCHEDULED_TIMER_HANDLES
                and self._timer_cancelled_count / count > MIN_CANCELLED_TIMER_HANDLES_FRACTION
            ):
                self._compact_timers()
            else:
                while scheduled and scheduled[0][2]._cancelled:
                    self._timer_cancelled_count -= 1
                    heapq.heappop(scheduled)[2]._scheduled = False

        if ready or self._stopping:
            timeout: float | None = 0
        elif scheduled:
            timeout = scheduled[0][0] - self.time()
            if timeout > MAXIMUM_SELECT_TIMEOUT_S:
                timeout = MAXIMUM_SELECT_TIMEOUT_S
            elif timeout < 0:
                timeout = 0
        else:
            timeout = None

        backend = self._backend
        if timeout != 0 and not self._debug:
            # Nothing was ready when we started polling, so asyncio would run
            # exactly the I/O handles first in this iteration: run them
            # straight from the poll (no queue round trip), then the expired
            # timers, and leave what they scheduled for the next iteration.
            self._callbacks_run += backend.poll_and_run(timeout, self._report_callback_error)
            if scheduled or backend.queued_during_poll:
                self._run_late_arrivals(scheduled, backend.queued_during_poll)
        else:
            backend.polls += 1
            t0 = _monotonic()
            events = backend.poll(timeout)
            backend.poll_seconds += _monotonic() - t0
            if events:
                backend.dispatch(events)
            events = None  # type: ignore[assignment]  # break cycles on error
            if scheduled:
                end_time = self.time() + self._clock_resolution
                while scheduled and scheduled[0][0] < end_time:
                    timer = heapq.heappop(scheduled)[2]
                    timer._scheduled = False
                    if timer._cancelled:
                        self._timer_cancelled_count -= 1
                    else:
                        ready.append(timer)
            ntodo = len(ready)
            self._callbacks_run += ntodo
            if self._debug:
                self._run_ready_debug(ntodo)
            else:
                self._run_ready(ntodo)
        if self._flush_queue:
            self._flush_writes()

    def _run_late_arrivals(self, scheduled: list[_TimerEntry], queued_during_poll: int) -> None:
        """After the I/O handles of a direct poll: run what asyncio would run
        in the same iteration, in its order: callbacks other threads queued
        during the poll, then the expired timers. What the I/O callbacks
        scheduled stays queued for the next iteration."""
        ready = self._ready
        now: list[Any] = [ready.popleft() for _ in range(queued_during_poll)]
        if scheduled:
            end_time = self.time() + self._clock_resolution
            while scheduled and scheduled[0][0] < end_time:
                timer = heapq.heappop(scheduled)[2]
                timer._scheduled = False
                if timer._cancelled:
                    self._timer_cancelled_count -= 1
                else:
                    now.append(timer)
        if now:
            ready.extendleft(reversed(now))
            self._callbacks_run += len(now)
            self._run_ready(len(now))

    def _flush_writes(self) -> None:
        """Send what transports wrote during this iteration, one syscall each."""
        queue = self._flush_queue
        # The same list object: transports hold it. Flushing may run protocol
        # callbacks that write to other transports; iteration picks those up.
        for transport in queue:
            if transport._write_state == 1:  # still QUEUED
                try:
                    transport._flush()
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self.call_exception_handler(
                        {
                            "message": "Unhandled error while flushing a transport",
                            "exception": exc,
                            "transport": transport,
                        }
                    )
        queue.clear()

    def _on_fd_released(self) -> None:
        """A transport closed its socket: a paused server may accept again."""
        if self._paused_servers:
            for server in list(self._paused_servers):
                server._resume_accepting()

    def _run_ready(self, ntodo: int) -> None:
        ready = self._ready
        popleft = ready.popleft
        handle: Any
        for _ in range(ntodo):
            handle = popleft()
            if handle._cancelled:
                continue
            try:
                args = handle._args
                # No star-call where it can be helped: it builds a list and a
                # tuple per call (futures schedule one-argument callbacks).
                if not args:
                    handle._context.run(handle._callback)
                elif len(args) == 1:
                    handle._context.run(handle._callback, args[0])
                else:
                    handle._context.run(handle._callback, *args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._report_callback_error(handle, exc)
        handle = args = None  # break cycles on error

    def _run_ready_debug(self, ntodo: int) -> None:
        popleft = self._ready.popleft
        for _ in range(ntodo):
            handle = popleft()
            if handle._cancelled:
                continue
            self._current_handle = handle
            try:
                t0 = self.time()
                try:
                    handle._context.run(handle._callback, *handle._args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._report_callback_error(handle, exc)
                dt = self.time() - t0
                if dt >= self.slow_callback_duration:
                    self._slow_callbacks += 1
                    logger.warning("Executing %s took %.3f seconds", _format_handle(handle), dt)
            finally:
                self._current_handle = None
        # An exception kept by a handler references this frame: drop the
        # last handle so it does not keep a task (and its error) alive.
        handle = None

    def _compact_timers(self) -> None:
        kept: list[_TimerEntry] = []
        for entry in self._scheduled:
            if entry[2]._cancelled:
                entry[2]._scheduled = False
            else:
                kept.append(entry)
        heapq.heapify(kept)
        # In place: _run_once holds a reference to the list.
        self._scheduled[:] = kept
        self._timer_cancelled_count = 0

    # -- debug -------------------------------------------------------------------

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(DEBUG_STACK_DEPTH)
        else:
            saved = self._coroutine_origin_tracking_saved_depth
            sys.set_coroutine_origin_tracking_depth(saved or 0)
        self._coroutine_origin_tracking_enabled = enabled

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    # -- executors and name resolution ------------------------------------------

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[_Ts]], _T],
        *args: *_Ts,
    ) -> asyncio.Future[_T]:
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            # Only the default executor is checked, as asyncio does.
            self._check_default_executor()
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor  # type: ignore[assignment]
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: Any) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self._default_executor = executor

    def _getaddrinfo_debug(
        self, host: Any, port: Any, family: int, type: int, proto: int, flags: int
    ) -> list[Any]:
        msg_parts = [f"{host}:{port!r}"]
        if family:
            msg_parts.append(f"family={family!r}")
        if type:
            msg_parts.append(f"type={type!r}")
        if proto:
            msg_parts.append(f"proto={proto!r}")
        if flags:
            msg_parts.append(f"flags={flags!r}")
        msg = ", ".join(msg_parts)
        logger.debug("Get address info %s", msg)
        t0 = self.time()
        addrinfo = socket.getaddrinfo(host, port, family, type, proto, flags)
        dt = self.time() - t0
        msg = f"Getting address info {msg} took {dt * 1e3:.3f}ms: {addrinfo!r}"
        if dt >= self.slow_callback_duration:
            logger.info(msg)
        else:
            logger.debug(msg)
        return addrinfo

    async def getaddrinfo(  # type: ignore[override]
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        if self._debug:
            return await self.run_in_executor(
                None, self._getaddrinfo_debug, host, port, family, type, proto, flags
            )
        # Numeric hosts need no resolver: answer on the loop thread, with
        # exactly what socket.getaddrinfo returns (see _net), after the
        # checks run_in_executor would make.
        self._check_closed()
        self._check_default_executor()
        if answers_inline(host, port, flags):
            # Suspend once, as the executor round trip would: the caller can
            # still be cancelled or time out here.
            await asyncio.sleep(0)
            return socket.getaddrinfo(host, port, family, type, proto, flags)
        return await self.run_in_executor(
            None, socket.getaddrinfo, host, port, family, type, proto, flags
        )

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    # -- readers and writers --------------------------------------------------------

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                # Same message as selectors' _fileobj_to_fd.
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    def _fileobj_to_fd(self, fileobj: Any) -> int:
        if isinstance(fileobj, int):
            fd = fileobj
        else:
            try:
                fd = int(fileobj.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fileobj!r}") from None
        if fd < 0:
            raise ValueError(f"Invalid file descriptor: {fd}")
        return fd

    def _lookup_fd(self, fileobj: Any) -> int:
        """The fd to unregister: like selectors, a file object that was closed
        after registration is still found by identity."""
        try:
            return self._fileobj_to_fd(fileobj)
        except ValueError:
            for fd, obj in self._fileobjs.items():
                if obj is fileobj:
                    return fd
            raise

    def _add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> Handle:
        return self._watch(fd, Handle(callback, args, self, None), self._backend.watch_read)

    def _add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> Handle:
        return self._watch(fd, Handle(callback, args, self, None), self._backend.watch_write)

    def _remove_reader(self, fd: Any) -> bool:
        return self._unwatch(fd, self._backend.unwatch_read, self._backend.writer)

    def _remove_writer(self, fd: Any) -> bool:
        return self._unwatch(fd, self._backend.unwatch_write, self._backend.reader)

    def _watch(
        self, fd: Any, handle: Handle, watch: Callable[[int, Handle], Handle | None]
    ) -> Handle:
        self._check_closed()
        fileno = self._fileobj_to_fd(fd)
        old = watch(fileno, handle)
        if old is not None:
            old.cancel()
        if fileno is not fd:
            self._fileobjs[fileno] = fd
        return handle

    def _unwatch(
        self,
        fd: Any,
        unwatch: Callable[[int], Handle | None],
        other_direction: Callable[[int], Handle | None],
    ) -> bool:
        if self._closed:
            return False
        fileno = self._lookup_fd(fd)
        old = unwatch(fileno)
        if old is None:
            return False
        old.cancel()
        if self._fileobjs and other_direction(fileno) is None:
            self._fileobjs.pop(fileno, None)
        return True

    def add_reader(self, fd: Any, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd: Any) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd: Any, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd: Any) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    def _check_sendfile_params(self, sock: Any, file: Any, offset: Any, count: Any) -> None:
        """asyncio's parameter checks for loop.sendfile (shared with sock_sendfile)."""
        check_sendfile_params(sock, file, offset, count)

    # -- introspection -------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring, cheap enough to stay on.

        ``callbacks_run``, ``polls`` and ``events`` (I/O readiness events
        dispatched), ``timers_scheduled``/``timers_cancelled`` (totals),
        ``timers_pending`` and ``timers_cancelled_pending`` (cancelled, not yet
        dropped from the heap), ``slow_callbacks`` (debug mode measures them),
        ``backend``, and the time the loop ran: ``poll_seconds`` waiting in
        the backend, ``run_seconds`` in all (so running callbacks took the
        difference).
        """
        info = self._backend.stats()
        run_seconds = self._run_seconds
        if self._thread_id is not None:
            run_seconds += _monotonic() - self._run_started
        info.update(
            callbacks_run=self._callbacks_run,
            ready=len(self._ready),
            timers_scheduled=self._timer_seq,
            timers_cancelled=self._timers_cancelled,
            timers_pending=len(self._scheduled) - self._timer_cancelled_count,
            timers_cancelled_pending=self._timer_cancelled_count,
            slow_callbacks=self._slow_callbacks,
            run_seconds=run_seconds,
        )
        return info

    # HOOK (health): the opt-in metrics; _metrics.py holds the rest.
    def metrics(self) -> LoopMetrics:
        """Lag, busy/idle time and slow callbacks (docs/metrics.md).

        Only a loop made with ``new_event_loop(metrics=True)`` (or with
        ``TIDELOOP_METRICS=1`` in the environment) measures them; on another
        loop this raises RuntimeError.
        """
        if self._meter is None:
            raise RuntimeError(
                "metrics are off for this loop: create it with "
                "tideloop.new_event_loop(metrics=True) or set TIDELOOP_METRICS=1"
            )
        return self._meter.snapshot()


def _set_result_unless_cancelled(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


def new_event_loop(
    *,
    backend: str | None = None,
    clock: VirtualClock | None = None,
    metrics: bool | None = None,
) -> EventLoop:
    """A new tideloop event loop; usable as ``loop_factory`` for asyncio.run/Runner.

    ``backend`` picks the I/O backend; ``clock`` (a :class:`VirtualClock`)
    runs the loop's timers in virtual time; ``metrics=True`` turns on
    ``loop.metrics()`` (default: the ``TIDELOOP_METRICS`` environment variable).
    """
    # mypy sees the transport methods asyncio's stubs mark abstract; the
    # transport modules (issues 4-6) provide them.
    return EventLoop(backend=backend, clock=clock, metrics=metrics)  # type: ignore[abstract]
