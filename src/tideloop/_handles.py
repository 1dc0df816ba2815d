"""Callback handles: what call_soon/call_later return and the ready queue holds.

``Handle``/``TimerHandle`` behave as asyncio's (same fields, ``_when``
included, same reprs and ordering) and pass ``isinstance(h,
asyncio.TimerHandle)``, but are classes of their own: native classes with
fixed fields in the compiled build (see HANDLE_CLASS). Their ``__init__``
makes no per-handle ``get_debug()`` call: the loop fills
``_source_traceback`` itself in debug mode.

``TimerHeap`` is the loop's timer queue: a heap of ``(when, seq, handle)``
tuples (tuple comparison runs in C; ``seq`` keeps timers with equal deadlines
in FIFO order). Cancelling is O(1): the handle is only counted, and the heap
is compacted lazily by asyncio's rule.

Invariants:
- a handle in the loop's ready queue or timer heap is never mutated except by
  ``cancel()``; the loop checks ``_cancelled`` before running it;
- ``TimerHandle._scheduled`` is True exactly while the handle sits in a
  ``TimerHeap`` (which uses it to count cancelled timers);
- ``TimerHeap.cancelled`` counts the cancelled handles still in the heap.

Must not import the loop module (the loop imports this one).
"""

from __future__ import annotations

import asyncio
import asyncio.events  # mypyc: import the module of the Python base classes
import contextvars
import functools
import heapq
import inspect
import os
import reprlib
import sys
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Final

DEBUG_STACK_DEPTH: Final = 10
# asyncio's compaction rule: rebuild the heap when more than this many timers
# are scheduled and more than this fraction of them are cancelled.
MIN_SCHEDULED_TIMER_HANDLES: Final = 100
MIN_CANCELLED_TIMER_HANDLES_FRACTION: Final = 0.5

_heappush = heapq.heappush
# Final: a C constant in the compiled build, not a module attribute lookup.
_copy_context: Final = contextvars.copy_context
_heappop = heapq.heappop


# What ``isinstance`` sees. The handles below are native classes in the
# compiled build, and a native class cannot extend asyncio.Handle (its
# __slots__ fix a memory layout of their own). So the handles are not
# asyncio.Handle subclasses; their ``__class__`` names these two Python
# classes instead, which are, and ``isinstance(h, asyncio.Handle)`` /
# ``isinstance(t, asyncio.TimerHandle)`` hold as for asyncio's handles
# (isinstance consults ``__class__`` when the type itself does not match, as
# it does for mock objects). ``type(h)`` is the real class.
HANDLE_CLASS: Final[type] = type(
    "Handle", (asyncio.Handle,), {"__slots__": (), "__module__": __name__, "__doc__": None}
)
TIMER_HANDLE_CLASS: Final[type] = type(
    "TimerHandle",
    (asyncio.TimerHandle,),
    {"__slots__": (), "__module__": __name__, "__doc__": None},
)


class Handle:
    """Object returned by callback registration methods (asyncio.Handle's
    behaviour, as a native class: see HANDLE_CLASS)."""

    # Ignored by mypyc (its classes have fixed fields); in the pure build the
    # same fixed fields, no instance dict.
    __slots__ = (
        "_args",
        "_callback",
        "_cancelled",
        "_context",
        "_loop",
        "_repr",
        "_source_traceback",
    )

    _callback: Any
    _args: Any
    _cancelled: bool
    _loop: Any
    _source_traceback: Any
    _repr: str | None
    _context: Any

    def __init__(
        self,
        callback: Callable[..., object],
        args: Sequence[Any],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None = None,
    ) -> None:
        self._context = _copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return HANDLE_CLASS

    def _repr_info(self) -> list[str]:
        info = [self._kind()]
        if self._cancelled:
            info.append("cancelled")
        if self._callback is not None:
            info.append(format_callback_source(self._callback, self._args, self._loop.get_debug()))
        if self._source_traceback:
            frame = self._source_traceback[-1]
            info.append(f"created at {frame[0]}:{frame[1]}")
        return info

    def _kind(self) -> str:
        return "Handle"

    def __repr__(self) -> str:
        if self._repr is not None:
            return self._repr
        return "<{}>".format(" ".join(self._repr_info()))

    def get_context(self) -> contextvars.Context:
        return self._context  # type: ignore[no-any-return]

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            if self._loop.get_debug():
                # Keep a representation in debug mode: the slow-callback
                # warning names the callback after it is dropped below.
                self._repr = repr(self)
            self._callback = None
            self._args = None

    def cancelled(self) -> bool:
        return self._cancelled

    def _run(self) -> None:
        try:
            self._context.run(self._callback, *self._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            cb = format_callback_source(self._callback, self._args, self._loop.get_debug())
            context: dict[str, Any] = {
                "message": f"Exception in callback {cb}",
                "exception": exc,
                "handle": self,
            }
            if self._source_traceback:
                context["source_traceback"] = self._source_traceback
            self._loop.call_exception_handler(context)


class TimerHandle(Handle):
    """Object returned by timed callback registration methods
    (asyncio.TimerHandle's behaviour: see TIMER_HANDLE_CLASS)."""

    __slots__ = ("_scheduled", "_when")

    _when: float
    _scheduled: bool

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: Sequence[Any],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None = None,
    ) -> None:
        self._context = _copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        self._scheduled = False

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return TIMER_HANDLE_CLASS

    def _kind(self) -> str:
        return "TimerHandle"

    def _repr_info(self) -> list[str]:
        info = super()._repr_info()
        info.insert(2 if self._cancelled else 1, f"when={self._when}")
        return info

    def __hash__(self) -> int:
        return hash(self._when)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, asyncio.TimerHandle):
            o: Any = other
            return bool(self._when < o._when)
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, asyncio.TimerHandle):
            o: Any = other
            return bool(self._when < o._when or self.__eq__(other))
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, asyncio.TimerHandle):
            o: Any = other
            return bool(self._when > o._when)
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, asyncio.TimerHandle):
            o: Any = other
            return bool(self._when > o._when or self.__eq__(other))
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, asyncio.TimerHandle):
            o: Any = other
            return bool(
                self._when == o._when
                and self._callback == o._callback
                and self._args == o._args
                and self._cancelled == o._cancelled
            )
        return NotImplemented

    def cancel(self) -> None:
        if not self._cancelled:
            self._loop._timer_handle_cancelled(self)
        super().cancel()

    def when(self) -> float:
        """Return a scheduled callback time.

        The time is an absolute timestamp, using the same time
        reference as loop.time().
        """
        return self._when


TimerEntry = tuple[float, int, TimerHandle]


class TimerHeap:
    """The loop's timers, ordered by deadline (see the module docstring)."""

    __slots__ = ("cancelled", "cancelled_total", "heap", "seq")

    def __init__(self) -> None:
        # Read directly by the run loop: is anything scheduled, and when is
        # the first deadline (``heap[0][0]``).
        self.heap: list[TimerEntry] = []
        self.seq = 0  # timers ever pushed
        self.cancelled = 0  # cancelled handles still in the heap
        self.cancelled_total = 0

    def __len__(self) -> int:
        return len(self.heap)

    def push(self, timer: TimerHandle) -> None:
        seq = self.seq = self.seq + 1
        _heappush(self.heap, (timer._when, seq, timer))
        timer._scheduled = True

    def on_cancel(self, timer: Any) -> None:
        """``TimerHandle.cancel()`` (through the loop): count it, drop it later."""
        if timer._scheduled:
            self.cancelled += 1
            self.cancelled_total += 1

    def prune(self) -> None:
        """Drop cancelled timers from the head, or rebuild the heap when
        cancelled timers dominate it (asyncio's rule)."""
        heap = self.heap
        count = len(heap)
        if (
            count > MIN_SCHEDULED_TIMER_HANDLES
            and self.cancelled / count > MIN_CANCELLED_TIMER_HANDLES_FRACTION
        ):
            kept: list[TimerEntry] = []
            for entry in heap:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False
                else:
                    kept.append(entry)
            heapq.heapify(kept)
            heap[:] = kept  # in place: callers hold the list
            self.cancelled = 0
            return
        while heap and heap[0][2]._cancelled:
            self.cancelled -= 1
            _heappop(heap)[2]._scheduled = False

    def pop_due(self, end_time: float, append: Callable[[TimerHandle], object]) -> None:
        """Pass the timers due before ``end_time`` to ``append``, in deadline
        order; cancelled ones are dropped."""
        heap = self.heap
        while heap and heap[0][0] < end_time:
            timer = _heappop(heap)[2]
            timer._scheduled = False
            if timer._cancelled:
                self.cancelled -= 1
            else:
                append(timer)

    def clear(self) -> None:
        for entry in self.heap:
            entry[2]._scheduled = False
        self.heap.clear()
        self.cancelled = 0


def set_result_unless_cancelled(fut: asyncio.Future[Any], result: Any) -> None:
    """The callback that completes a waiter unless its awaiting task gave up."""
    if not fut.cancelled():
        fut.set_result(result)


def extract_stack(frame: FrameType | None) -> traceback.StackSummary:
    """The creation stack recorded on handles in debug mode (oldest first)."""
    stack = traceback.StackSummary.extract(
        traceback.walk_stack(frame), limit=DEBUG_STACK_DEPTH, lookup_lines=False
    )
    stack.reverse()
    return stack


# The modules whose functions schedule handles (compiled, they make no frames),
# by the path they were imported from and by absolute path.
_OWN_FILES: Final = frozenset(
    os.path.join(here, name)
    for here in (os.path.dirname(__file__), os.path.dirname(os.path.abspath(__file__)))
    for name in ("_handles.py", "_core.py")
)


def is_own_frame(filename: str) -> bool:
    """Is ``filename`` (a frame's) one of the scheduling modules? In the
    compiled build their functions make no frames, so none is."""
    return filename in _OWN_FILES


def caller_stack(depth: int, internal_frames: int) -> traceback.StackSummary:
    """The creation stack asyncio records for a handle made ``depth`` frames up.

    asyncio extracts DEBUG_STACK_DEPTH frames starting inside its own
    scheduling methods and then deletes those ``internal_frames``; taking
    fewer frames from the caller gives the same list.
    """
    # Skip this function and the ``depth`` scheduling frames above it. In
    # the compiled build they have no Python frames: skip only frames of
    # these modules, so the stack starts at the caller in either build.
    frame: FrameType | None = sys._getframe(0)
    skip = depth + 1
    while skip and frame is not None and frame.f_code.co_filename in _OWN_FILES:
        frame = frame.f_back
        skip -= 1
    stack = traceback.StackSummary.extract(
        traceback.walk_stack(frame),
        limit=DEBUG_STACK_DEPTH - internal_frames,
        lookup_lines=False,
    )
    stack.reverse()
    return stack


# -- formatting, matching asyncio's messages ---------------------------------


def _function_source(func: object) -> tuple[str, int] | None:
    func = inspect.unwrap(func)  # type: ignore[arg-type]
    if inspect.isfunction(func):
        code = func.__code__
        return (code.co_filename, code.co_firstlineno)
    if isinstance(func, functools.partial):
        return _function_source(func.func)
    if isinstance(func, functools.partialmethod):
        return _function_source(func.func)
    return None


# Python 3.13 stopped printing callback arguments outside debug mode (they may
# hold secrets); we print what the running Python's asyncio prints.
_ARGS_ONLY_IN_DEBUG = sys.version_info >= (3, 13)


def _format_args_and_kwargs(
    args: Sequence[Any] | None, kwargs: dict[str, Any] | None, debug: bool
) -> str:
    if _ARGS_ONLY_IN_DEBUG and not debug:
        return "()"
    items: list[str] = []
    if args:
        items.extend(reprlib.repr(arg) for arg in args)
    if kwargs:
        items.extend(f"{k}={reprlib.repr(v)}" for k, v in kwargs.items())
    return "({})".format(", ".join(items))


def _format_callback(
    func: object,
    args: Sequence[Any] | None,
    kwargs: dict[str, Any] | None,
    debug: bool,
    suffix: str = "",
) -> str:
    if isinstance(func, functools.partial):
        suffix = _format_args_and_kwargs(args, kwargs, debug) + suffix
        return _format_callback(func.func, func.args, func.keywords, debug, suffix)
    func_repr: str
    if getattr(func, "__qualname__", None):
        func_repr = str(func.__qualname__)  # type: ignore[attr-defined]
    elif getattr(func, "__name__", None):
        func_repr = str(func.__name__)  # type: ignore[attr-defined]
    else:
        func_repr = repr(func)
    func_repr += _format_args_and_kwargs(args, kwargs, debug)
    if suffix:
        func_repr += suffix
    return func_repr


def format_handle(handle: Any, callback: Any = None, args: Any = None) -> str:
    """asyncio's name for a handle in its slow-callback warning: the task's
    repr for a task step, else the handle's repr.

    With ``callback`` and ``args`` as the handle held them when it started
    (the metrics' slow-callback records), a handle cancelled while it ran
    (an I/O callback that removed its own reader; cancelling clears them) is
    named by that callback rather than asyncio's bare ``<Handle cancelled>``.
    """
    named = callback is not None
    if not named:
        callback, args = handle._callback, handle._args
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        return repr(task)
    if named and handle._cancelled:
        source = format_callback_source(callback, args, handle._loop.get_debug())
        return f"<{type(handle).__name__} {source}>"
    return str(handle)


def format_callback_source(func: object, args: Sequence[Any] | None, debug: bool) -> str:
    """``func(args) at file:line`` as asyncio prints it in error messages."""
    func_repr = str(_format_callback(func, args, None, debug))
    source = _function_source(func)
    if source:
        func_repr += f" at {source[0]}:{source[1]}"
    return func_repr
