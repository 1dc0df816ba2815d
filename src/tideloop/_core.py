"""LoopCore: lifecycle, the run loop, callbacks, timers, readers and writers,
executors and name resolution. The part of ``EventLoop`` every other part
stands on (see ``tideloop._loop`` for the whole chain).

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

Timers live in a ``TimerHeap`` (_handles). The clock is read through
``self.time()`` so code that patches ``loop.time`` moves the timers, as it
does on asyncio.

One handle runner (``_run_handles``) runs every callback; debug mode wraps it
(``_run_handles_debug`` times each call through it) rather than copying it.
I/O goes through ``LoopIO`` (_io), the one interface transports and servers
use; the backend only polls and names the handles of ready fds.

Must not import the parts above it (they import this one) nor the transports.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import itertools
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeVar, TypeVarTuple, Unpack

from ._backends import make_backend
from ._errors import ErrorsPart
from ._handles import (
    Handle,
    TimerHandle,
    TimerHeap,
    caller_stack,
    format_handle,
    is_own_frame,
    set_result_unless_cancelled,
)
from ._io import LoopIO
from ._metrics import LoopMetrics, Meter, metrics_enabled_by_default
from ._native import mypyc_attr

if TYPE_CHECKING:
    from ._clock import VirtualClock

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

logger = logging.getLogger("asyncio")

MAXIMUM_SELECT_TIMEOUT_S: Final = 24 * 3600.0
DEBUG_STACK_DEPTH: Final = 10
_monotonic = time.monotonic
# Bound at import: __del__ may run during interpreter shutdown.
_warn = warnings.warn
_new_handle = object.__new__
# Handles built without calling __init__ where that is allowed: a pure Python
# Handle (a native one refuses object.__new__, and needs no such trick).
_BARE_HANDLES: Final = Handle.__new__ is object.__new__
_islice = itertools.islice
_iter = iter
# gh-111358 (3.12.3): shutdown_default_executor's timeout bounds the wait for
# the executor; 3.12.0-3.12.2 wait for the jobs and only bound the join.
_SHUTDOWN_TIMEOUT_BOUNDS_WAIT = sys.version_info >= (3, 12, 3) or sys.version_info < (3, 12)

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


@mypyc_attr(allow_interpreted_subclasses=True)
class LoopCore(ErrorsPart):
    """The loop's core; ``EventLoop`` is this plus the parts above it."""

    def __init__(
        self,
        *,
        backend: str | None = None,
        clock: VirtualClock | None = None,
        metrics: bool | None = None,
    ) -> None:
        super().__init__()
        # Closed until construction completes: a loop whose backend could not
        # be made has nothing to close and must not warn from __del__.
        self._closed = True
        self._thread_id: int | None = None
        self._stopping = False
        # Holds our Handle and TimerHandle.
        # Only our own handles: typed, the compiled run loop reads their
        # fields directly (a foreign handle is wrapped by _add_callback).
        self._ready: deque[Handle] = deque()
        # Bound once: loaded as a field and called (compiled: no method lookup
        # per call_soon; interpreted: a specialised attribute load).
        self._ready_append: Callable[[Handle], None] = self._ready.append
        self._timers = TimerHeap()
        self._backend = make_backend(backend)
        self._io = LoopIO(self, self._backend, self._ready)
        # asyncio's name for the fd -> transport map; tests and libraries
        # read it (DESIGN.md 5a). LoopIO owns it.
        self._transports = self._io.transports
        # The backend's two per-iteration calls, bound once.
        self._poll: Callable[[float | None], list[tuple[int, int]]] = (
            self._backend.poll_function()
        )
        self._collect = self._backend.collect
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._clock_resolution = time.get_clock_info("monotonic").resolution
        self._debug = False
        self.set_debug(_is_debug_mode())
        self.slow_callback_duration = 0.1
        self._current_handle: Any = None  # asyncio.Handle or ours
        self._task_factory: Any = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth: int | None = None
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._executor_shutdown_called = False
        self._old_agen_hooks: Any = None
        self._callbacks_run = 0
        self._slow_callbacks = 0
        self._polls = 0
        self._poll_seconds = 0.0
        self._run_seconds = 0.0
        self._run_started = 0.0
        # Opt-in: a virtual clock (loop time and the waits in the backend's
        # poll follow it; it replaces attributes on this instance) and
        # metrics (the run loop picks the metered handle runner).
        self._meter: Meter | None = None
        if metrics is None:
            metrics = metrics_enabled_by_default()
        if metrics:
            self._meter = Meter(self)
        if clock is not None:
            self.time = clock.time  # type: ignore[method-assign]
            self._poll = clock._attach(self, self._poll, self._backend.wakeup)
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
            task: asyncio.Task[_T] = asyncio.Task(coro, loop=self, name=name, context=context)  # type: ignore[arg-type]  # 3.12+: coroutines only
            tb = task._source_traceback  # type: ignore[attr-defined]
            if tb and is_own_frame(tb[-1].filename):
                del tb[-1]  # create_task's own frame (none when compiled)
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
        self._io.running = True
        self._run_started = _monotonic()

    def _run_forever_cleanup(self) -> None:
        self._run_seconds += _monotonic() - self._run_started
        self._stopping = False
        self._thread_id = None
        self._io.running = False
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
            while True:
                # Called through the class, here and for the run loop's other
                # own methods: a direct call in the compiled build (a method
                # call on self is a Python-level lookup there, since the
                # loop's upper parts are Python subclasses).
                LoopCore._run_once(self)
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
        self._timers.clear()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        self._backend.close()

    def __del__(self) -> None:
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

    def _do_shutdown(
        self, executor: concurrent.futures.ThreadPoolExecutor, future: asyncio.Future[None]
    ) -> None:
        try:
            executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(set_result_unless_cancelled, future, None)
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
    ) -> asyncio.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if _BARE_HANDLES:
            # The pure build: Handle's fields set here rather than by
            # Handle(...), no __init__ frame for the loop's most frequent
            # allocation (futures call this).
            handle = _new_handle(Handle)
            handle._context = contextvars.copy_context() if context is None else context
            handle._loop = self
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._repr = None
            handle._source_traceback = None
        else:
            # Compiled: a direct call of the native constructor.
            handle = Handle(callback, args, self, context)
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
            handle._source_traceback = caller_stack(1, 2)  # type: ignore[assignment]
        append = self._ready_append
        append(handle)
        return handle  # type: ignore[return-value]  # an asyncio.Handle to isinstance: _handles.HANDLE_CLASS

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = Handle(callback, args, self, context)
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
            handle._source_traceback = caller_stack(1, 2)  # type: ignore[assignment]
        self._ready.append(handle)
        self._backend.wakeup()
        return handle  # type: ignore[return-value]  # an asyncio.Handle to isinstance: _handles.HANDLE_CLASS

    def call_later(
        self,
        delay: float | None,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        return LoopCore._call_at(self, self.time() + delay, callback, args, context, 3)  # type: ignore[return-value]  # see call_soon

    def call_at(
        self,
        when: float | None,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return LoopCore._call_at(self, when, callback, args, context, 2)  # type: ignore[return-value]  # an asyncio.Handle to isinstance: _handles.HANDLE_CLASS

    def _call_at(
        self,
        when: float | None,
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
        self._timers.push(timer)
        return timer

    def _timer_handle_cancelled(self, handle: Any) -> None:
        """Called by TimerHandle.cancel(): count it, compact later."""
        self._timers.on_cancel(handle)

    def _add_callback(self, handle: Any) -> None:
        if isinstance(handle, Handle):
            if not handle._cancelled:
                self._ready.append(handle)
        elif not handle._cancelled:
            # Another loop's kind of handle (asyncio's): run it by its own _run.
            self._ready.append(Handle(handle._run, (), self, handle._context))

    def _add_callback_signalsafe(self, handle: Any) -> None:
        self._add_callback(handle)
        self._backend.wakeup()

    def _write_to_self(self) -> None:
        """asyncio's name for the self-wakeup; some libraries call it."""
        self._backend.wakeup()

    # -- the run loop ------------------------------------------------------------

    def _run_once(self) -> None:
        timers = self._timers
        heap = timers.heap
        ready = self._ready
        if heap:
            timers.prune()

        if ready or self._stopping:
            timeout: float | None = 0
        elif heap:
            timeout = heap[0][0] - self.time()
            if timeout > MAXIMUM_SELECT_TIMEOUT_S:
                timeout = MAXIMUM_SELECT_TIMEOUT_S
            elif timeout < 0:
                timeout = 0
        else:
            timeout = None

        # self._poll and self._collect hold bound methods of the backend:
        # loaded as attributes, not called as methods (a method lookup that
        # finds an instance attribute stays unspecialized in CPython 3.11
        # and searches the class chain: measured +250 instructions).
        poll = self._poll
        collect = self._collect
        self._polls += 1
        t0 = _monotonic()
        events = poll(timeout)
        self._poll_seconds += _monotonic() - t0
        todo: Iterable[Handle]
        if events and not ready:
            # Nothing was queued before or during the poll: this iteration
            # runs exactly the I/O handles, then the expired timers. Collect
            # them in a list of our own and run it (no trip through the ready
            # queue: measured -250 instructions per echoed message).
            todo = []
            collect(events, todo.append)
            if heap:
                timers.pop_due(self.time() + self._clock_resolution, todo.append)
            ntodo = len(todo)
        else:
            if events:
                collect(events, ready.append)
            if heap:
                timers.pop_due(self.time() + self._clock_resolution, ready.append)
            # What is queued now: popped one at a time (other threads append
            # meanwhile; what they and these callbacks add runs next time).
            ntodo = len(ready)
            if ntodo == 1:
                # The usual count when callbacks chain (a future's done
                # callback waking a task): no islice to set up.
                todo = (ready.popleft(),)
            else:
                todo = _islice(_iter(ready.popleft, None), ntodo)
        events = None  # type: ignore[assignment]  # break cycles on error
        if ntodo:
            self._callbacks_run += ntodo
            if self._debug:
                self._run_handles_debug(todo)
            elif self._meter is not None:
                self._run_handles_metered(todo)
            else:
                LoopCore._run_handles(self, todo)
            # A callback's exception traceback keeps the frames it ran under
            # (and their locals as they are at exit) alive through f_back:
            # hold no handle here once done, or the task it would run stays
            # alive in a cycle, and asyncio's "exception was never
            # retrieved" report waits for the garbage collector.
            todo = None  # type: ignore[assignment]
        if self._io.flush_queue:
            LoopCore._flush_writes(self)

    def _flush_writes(self) -> None:
        """Send what transports wrote during this iteration, one syscall each."""
        queue = self._io.flush_queue
        # The same list object: transports append to it. Flushing may run
        # protocol callbacks that write to other transports; iteration picks
        # those up.
        for transport in queue:
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

    def _run_handles(self, handles: Iterable[Handle]) -> None:
        """Run ``handles`` in order, skipping cancelled ones: the one handle
        runner. A callback's exception goes to the exception handler, except
        SystemExit and KeyboardInterrupt, which stop the loop (handles not yet
        taken from the ready queue stay queued, as in asyncio)."""
        for handle in handles:
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
                if type(handles) is list:
                    self._requeue_after(handles, handle)
                raise
            except BaseException as exc:
                self._report_callback_error(handle, exc)
        handle = args = handles = None  # type: ignore[assignment]  # see _run_once

    def _requeue_after(self, handles: list[Handle], handle: Handle) -> None:
        """The loop is stopping on SystemExit/KeyboardInterrupt: the handles
        of this iteration after ``handle`` go back to the front of the ready
        queue, as asyncio leaves them queued."""
        for index, item in enumerate(handles):
            if item is handle:
                self._ready.extendleft(reversed(handles[index + 1 :]))
                return

    def _run_handles_metered(self, handles: Iterable[Handle]) -> None:
        """Metrics on (``new_event_loop(metrics=True)``): ``_run_handles``
        one handle at a time, recording each timer's lag (its deadline to
        now) and each callback's duration (slow callbacks) in the meter."""
        meter = self._meter
        assert meter is not None
        clock = _monotonic
        run = LoopCore._run_handles
        for handle in handles:
            if handle._cancelled:
                continue
            if type(handle) is TimerHandle:
                meter.record_lag(self.time() - handle._when)
            # Read before the call: a handle cancelled while it runs forgets them.
            callback = handle._callback
            args = handle._args
            t0 = clock()
            try:
                run(self, (handle,))
            except (SystemExit, KeyboardInterrupt):
                if type(handles) is list:
                    self._requeue_after(handles, handle)
                raise
            meter.record_callback(handle, callback, args, clock() - t0)
        handle = callback = args = handles = None  # type: ignore[assignment]  # see _run_once

    def _run_handles_debug(self, handles: Iterable[Handle]) -> None:
        """Debug mode: ``_run_handles`` one handle at a time, timing each and
        logging slow ones, with ``_current_handle`` set as asyncio does."""
        for handle in handles:
            if handle._cancelled:
                continue
            self._current_handle = handle
            try:
                t0 = self.time()
                try:
                    if self._meter is not None:
                        self._run_handles_metered((handle,))
                    else:
                        LoopCore._run_handles(self, (handle,))
                except (SystemExit, KeyboardInterrupt):
                    if type(handles) is list:
                        self._requeue_after(handles, handle)
                    raise
                dt = self.time() - t0
                if dt >= self.slow_callback_duration:
                    self._slow_callbacks += 1
                    logger.warning("Executing %s took %.3f seconds", format_handle(handle), dt)
            finally:
                self._current_handle = None
        # An exception kept by a handler references this frame: drop the
        # last handle so it does not keep a task (and its error) alive.
        handle = handles = None  # type: ignore[assignment]

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

    # -- readers and writers --------------------------------------------------------

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                # Same message as selectors' _fileobj_to_fd.
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = self._io.transport_of(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    def _add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> Handle:
        self._check_closed()
        return self._io.watch_fileobj(fd, Handle(callback, args, self, None), write=False)

    def _add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> Handle:
        self._check_closed()
        return self._io.watch_fileobj(fd, Handle(callback, args, self, None), write=True)

    def _remove_reader(self, fd: Any) -> bool:
        return self._io.stop_reading(fd)

    def _remove_writer(self, fd: Any) -> bool:
        return self._io.stop_writing(fd)

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

    # -- introspection -------------------------------------------------------------

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
        timers = self._timers
        run_seconds = self._run_seconds
        if self._thread_id is not None:
            run_seconds += _monotonic() - self._run_started
        info.update(
            callbacks_run=self._callbacks_run,
            polls=self._polls,
            poll_seconds=self._poll_seconds,
            ready=len(self._ready),
            timers_scheduled=timers.seq,
            timers_cancelled=timers.cancelled_total,
            timers_pending=len(timers) - timers.cancelled,
            timers_cancelled_pending=timers.cancelled,
            slow_callbacks=self._slow_callbacks,
            run_seconds=run_seconds,
        )
        return info
