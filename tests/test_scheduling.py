"""Oracle tests of callback scheduling: call_soon / call_later / call_at /
call_soon_threadsafe, handles, contexts, ordering, debug-mode checks, the
clock, futures, tasks and task factories.

Every test runs on stock asyncio and on tideloop (each backend) and asserts
asyncio's observable behaviour.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import json
import logging
import os
import random
import re
import reprlib
import subprocess
import sys
import threading
import time
import weakref
from typing import Any
from unittest import mock

import pytest

from .conftest import ErrorLog
from .support.blocking import wait_until_blocked_in_poll
from .support.clock import FakeClock

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")


def _cb_text(func: Any, args: tuple[Any, ...], debug: bool) -> str:
    """asyncio's format_helpers._format_callback_source for a plain function.

    Python 3.13 stopped showing callback arguments outside debug mode (they
    may hold secrets), so the text depends on the version and the loop's debug
    flag.
    """
    if sys.version_info >= (3, 13) and not debug:
        shown = "()"
    else:
        shown = "(" + ", ".join(reprlib.repr(a) for a in args) + ")"
    code = func.__code__
    return f"{func.__qualname__}{shown} at {code.co_filename}:{code.co_firstlineno}"


def _run_once(loop: asyncio.AbstractEventLoop) -> None:
    loop.call_soon(loop.stop)
    loop.run_forever()


def _noop(*args: Any) -> None:
    pass


# --------------------------------------------------------------------------
# call_soon
# --------------------------------------------------------------------------


def test_call_soon_fifo_and_args(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[tuple[Any, ...]] = []

    def cb(*args: Any) -> None:
        calls.append(args)

    for i in range(100):
        loop.call_soon(cb, i, str(i))
    loop.call_soon(cb)
    _run_once(loop)
    assert calls == [(i, str(i)) for i in range(100)] + [()]


def test_call_soon_from_callback_runs_next_iteration(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []

    def first() -> None:
        calls.append("first")
        loop.call_soon(calls.append, "nested")

    loop.call_soon(first)
    loop.call_soon(calls.append, "second")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == ["first", "second"]
    _run_once(loop)
    assert calls == ["first", "second", "nested"]


def test_call_soon_returns_handle(loop: asyncio.AbstractEventLoop) -> None:
    h = loop.call_soon(_noop)
    assert isinstance(h, asyncio.Handle)
    assert not isinstance(h, asyncio.TimerHandle)
    assert h.cancelled() is False


def test_handle_repr(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(False)

    def cb(a: Any, b: Any) -> None:
        pass

    h = loop.call_soon(cb, 1, "x")
    assert repr(h) == f"<Handle {_cb_text(cb, (1, 'x'), False)}>"
    h.cancel()
    # Cancelling outside debug mode drops the callback and its arguments.
    assert repr(h) == "<Handle cancelled>"


def test_handle_repr_debug(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)

    def cb(a: Any) -> None:
        pass

    line = sys._getframe().f_lineno + 1
    h = loop.call_soon(cb, 1)
    created = f"created at {__file__}:{line}"
    assert repr(h) == f"<Handle {_cb_text(cb, (1,), True)} {created}>"
    h.cancel()
    # In debug mode the representation is kept on cancel.
    assert repr(h) == f"<Handle cancelled {_cb_text(cb, (1,), True)} {created}>"


def test_timer_handle_repr(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(False)

    def cb(a: Any) -> None:
        pass

    h = loop.call_at(1234.5, cb, "arg")
    assert repr(h) == f"<TimerHandle when=1234.5 {_cb_text(cb, ('arg',), False)}>"
    h.cancel()
    assert repr(h) == "<TimerHandle cancelled when=1234.5>"


class _Obj:
    def method(self, x: Any) -> None:
        pass

    @classmethod
    def cmethod(cls) -> None:
        pass

    @staticmethod
    def smethod() -> None:
        pass


class _CallableNoName:
    def __call__(self, *args: Any) -> None:
        pass

    def __repr__(self) -> str:
        return "<callable instance>"


def _plain(*args: Any) -> None:
    pass


_CALLBACKS = [
    pytest.param(_plain, (1, "s"), id="function"),
    pytest.param(lambda *a: None, (2,), id="lambda"),
    pytest.param(functools.partial(_plain, 1, k="v"), ("x",), id="partial"),
    pytest.param(functools.partial(functools.partial(_plain, 1), 2), (3,), id="nested-partial"),
    pytest.param(_Obj().method, (4,), id="bound-method"),
    pytest.param(_Obj.cmethod, (), id="classmethod"),
    pytest.param(_Obj.smethod, (), id="staticmethod"),
    pytest.param(print, ("p",), id="builtin"),
    pytest.param([].append, (5,), id="builtin-method"),
    pytest.param(_CallableNoName(), (6,), id="callable-instance"),
    pytest.param(_Obj, (), id="class"),
    pytest.param(_plain, ("x" * 100, list(range(50))), id="long-args"),
]


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
@pytest.mark.parametrize(("cb", "args"), _CALLBACKS)
def test_handle_repr_matches_asyncio_handle(
    loop: asyncio.AbstractEventLoop, cb: Any, args: tuple[Any, ...], debug: bool
) -> None:
    # asyncio.Handle / asyncio.TimerHandle built for the same callback give the
    # text asyncio would show (format_helpers' rules for partials, methods,
    # builtins, long arguments). In debug mode both also name their creation
    # line, so both are created on the same line.
    loop.set_debug(debug)
    h, ref = loop.call_soon(cb, *args), asyncio.Handle(cb, args, loop)  # type: ignore[arg-type]
    assert repr(h) == repr(ref)
    t, tref = (
        loop.call_at(77.5, cb, *args),
        asyncio.TimerHandle(77.5, cb, args, loop),  # type: ignore[arg-type]
    )
    if debug:
        # created on different lines of the statement: compare without them.
        assert repr(t).split(" created at ")[0] == repr(tref).split(" created at ")[0]
    else:
        assert repr(t) == repr(tref)
    for handle in (h, ref, t, tref):
        handle.cancel()
    assert repr(h) == repr(ref)


class _Raiser:
    def method(self, *args: Any) -> None:
        raise RuntimeError("method")

    def __call__(self, *args: Any) -> None:
        raise RuntimeError("instance")

    def __repr__(self) -> str:
        return "<raiser>"


class _RaisingInit:
    def __init__(self, *args: Any) -> None:
        raise RuntimeError("init")


def _raise(*args: Any) -> None:
    raise RuntimeError("function")


_RAISING_CALLBACKS = [
    pytest.param(_raise, (1, "s"), id="function"),
    pytest.param(functools.partial(_raise, 1, k="v"), ("x",), id="partial"),
    pytest.param(functools.partial(functools.partial(_raise, 1), 2), (3,), id="nested-partial"),
    pytest.param(_Raiser().method, (4,), id="bound-method"),
    pytest.param(int, ("not a number",), id="builtin-type"),
    pytest.param([].pop, (), id="builtin-method"),
    pytest.param(_Raiser(), (6,), id="callable-instance"),
    pytest.param(_RaisingInit, (7,), id="class"),
    pytest.param(_raise, ("x" * 100, list(range(50))), id="long-args"),
]


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
@pytest.mark.parametrize(("cb", "args"), _RAISING_CALLBACKS)
def test_callback_error_message_matches_asyncio(
    loop: asyncio.AbstractEventLoop,
    errors: ErrorLog,
    cb: Any,
    args: tuple[Any, ...],
    debug: bool,
) -> None:
    # asyncio.Handle._run formats the message with the same helper as the
    # handle's repr: 'Exception in callback ' + the repr's callback part.
    loop.set_debug(debug)
    ref = asyncio.Handle(cb, args, loop)  # type: ignore[arg-type]
    text = repr(ref)[len("<Handle ") : -1].split(" created at ")[0]
    ref.cancel()
    h = loop.call_soon(cb, *args)
    _run_once(loop)
    [ctx] = errors.take()
    assert ctx["message"] == f"Exception in callback {text}"
    assert ctx["handle"] is h


def test_cancel_releases_callback(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(False)

    class Callback:
        def __call__(self) -> None:
            pass

    cb = Callback()
    ref = weakref.ref(cb)
    h = loop.call_soon(cb)
    t = loop.call_later(3600, cb)
    del cb
    h.cancel()
    t.cancel()
    gc.collect()
    assert ref() is None


def test_cancel_before_run(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []
    h = loop.call_soon(calls.append, "cancelled")
    loop.call_soon(calls.append, "kept")
    h.cancel()
    h.cancel()  # idempotent
    assert h.cancelled() is True
    _run_once(loop)
    assert calls == ["kept"]


def test_cancel_from_earlier_callback_same_iteration(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []
    handles: dict[str, asyncio.Handle] = {}

    def first() -> None:
        calls.append("a")
        handles["b"].cancel()

    loop.call_soon(first)
    handles["b"] = loop.call_soon(calls.append, "b")
    t = loop.call_later(0, calls.append, "timer")
    loop.call_soon(t.cancel)
    _run_once(loop)
    # Both cancelled before their turn in the same iteration: neither ran.
    assert calls == ["a"]


# --------------------------------------------------------------------------
# contexts
# --------------------------------------------------------------------------


def test_callback_runs_in_copy_of_current_context(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[str] = []

    def cb() -> None:
        seen.append(var.get())
        var.set("changed in callback")

    token = var.set("outer")
    try:
        loop.call_soon(cb)
        loop.call_later(0, cb)
        loop.call_soon_threadsafe(cb)
    finally:
        var.reset(token)
    _run_once(loop)
    assert seen == ["outer", "outer", "outer"]
    assert var.get() == "default"


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at", "call_soon_threadsafe"])
def test_explicit_context(loop: asyncio.AbstractEventLoop, method: str) -> None:
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    seen: list[str] = []

    def cb(arg: str) -> None:
        seen.append(f"{arg}:{var.get()}")
        var.set(f"set by {arg}")

    if method == "call_soon":
        h = loop.call_soon(cb, "x", context=ctx)
    elif method == "call_later":
        h = loop.call_later(0, cb, "x", context=ctx)
    elif method == "call_at":
        h = loop.call_at(loop.time(), cb, "x", context=ctx)
    else:
        h = loop.call_soon_threadsafe(cb, "x", context=ctx)
    if sys.version_info >= (3, 12):  # Handle.get_context() is new in 3.12
        assert h.get_context() is ctx
    loop.run_until_complete(asyncio.sleep(0))
    _run_once(loop)
    assert seen == ["x:in ctx"]
    assert ctx[var] == "set by x"
    assert var.get() == "default"


# --------------------------------------------------------------------------
# timers
# --------------------------------------------------------------------------


def test_call_later_returns_timer_handle(loop: asyncio.AbstractEventLoop) -> None:
    before = loop.time()
    h = loop.call_later(10, _noop)
    after = loop.time()
    assert isinstance(h, asyncio.TimerHandle)
    assert isinstance(h, asyncio.Handle)
    assert before + 10 <= h.when() <= after + 10
    h2 = loop.call_at(1000.25, _noop)
    assert isinstance(h2, asyncio.TimerHandle)
    assert h2.when() == 1000.25
    h.cancel()
    h2.cancel()
    assert h.cancelled() and h2.cancelled()


def test_timer_handle_ordering_and_hash(loop: asyncio.AbstractEventLoop) -> None:
    a = loop.call_at(10.0, _noop)
    b = loop.call_at(20.0, _noop)
    assert a < b and b > a and a <= b and b >= a
    assert sorted([b, a]) == [a, b]
    assert hash(a) == hash(10.0)
    a.cancel()
    b.cancel()


def test_delay_none(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError) as info:
        loop.call_later(None, _noop)  # type: ignore[arg-type]
    assert str(info.value) == "delay must not be None"


def test_when_none(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError) as info:
        loop.call_at(None, _noop)  # type: ignore[arg-type]
    assert str(info.value) == "when cannot be None"


def test_none_checks_precede_closed_check(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    with pytest.raises(TypeError, match=r"^delay must not be None$"):
        loop.call_later(None, _noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^when cannot be None$"):
        loop.call_at(None, _noop)  # type: ignore[arg-type]


def test_timers_fire_in_time_order(loop: asyncio.AbstractEventLoop, fake_clock: FakeClock) -> None:
    fired: list[int] = []
    base = loop.time()
    offsets = list(range(20))
    random.Random(7).shuffle(offsets)
    for k in offsets:
        loop.call_at(base + k * 0.002, fired.append, k)
    for k in range(20):
        # Just before its deadline a timer has not fired; at it, it has,
        # after every earlier one.
        if k:
            fake_clock.set(base + k * 0.002 - 0.001)
            _run_once(loop)
            assert fired == list(range(k))
        fake_clock.set(base + k * 0.002)
        _run_once(loop)
        assert fired == list(range(k + 1))


def test_timers_due_together_fire_in_time_order(
    loop: asyncio.AbstractEventLoop, fake_clock: FakeClock
) -> None:
    fired: list[int] = []
    base = loop.time()
    offsets = list(range(20))
    random.Random(7).shuffle(offsets)
    for k in offsets:
        loop.call_at(base + k * 0.002, fired.append, k)
    fake_clock.advance(1.0)
    _run_once(loop)  # all due in one iteration
    assert fired == list(range(20))


def test_equal_deadlines_fire_together(
    loop: asyncio.AbstractEventLoop, fake_clock: FakeClock, is_tideloop: bool
) -> None:
    fired: list[int] = []
    when = loop.time() + 5
    for k in range(10):
        loop.call_at(when, fired.append, k)
        loop.call_later(5, fired.append, 10 + k)  # the same deadline
    fake_clock.advance(4.999)
    _run_once(loop)
    assert fired == []
    fake_clock.advance(0.001)
    _run_once(loop)
    in_order = [k for pair in zip(range(10), range(10, 20), strict=True) for k in pair]
    if is_tideloop:
        # tideloop keeps timers with equal deadlines in scheduling order.
        assert fired == in_order
    else:
        # asyncio's heap compares deadlines only: equal ones come out in
        # heap order, not in scheduling order.
        assert sorted(fired) == sorted(in_order)
        assert fired != in_order


def test_past_timers_fire_in_time_order(loop: asyncio.AbstractEventLoop) -> None:
    fired: list[int] = []
    base = loop.time() - 100
    offsets = list(range(50))
    random.Random(3).shuffle(offsets)
    for k in offsets:
        loop.call_at(base + k, fired.append, k)
    _run_once(loop)
    assert fired == list(range(50))


def test_call_later_zero_and_negative_run_after_ready_callbacks(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # asyncio runs, in one iteration, the callbacks that were ready, then the
    # timers that have come due.
    calls: list[str] = []

    def x() -> None:
        calls.append("x")
        loop.call_soon(calls.append, "y")

    loop.call_later(-5, calls.append, "negative")
    loop.call_later(0, calls.append, "zero")
    loop.call_soon(x)
    loop.call_soon(calls.append, "soon")
    _run_once(loop)
    assert calls == ["x", "soon", "negative", "zero"]
    _run_once(loop)
    assert calls == ["x", "soon", "negative", "zero", "y"]


def test_call_later_waits(loop: asyncio.AbstractEventLoop) -> None:
    # On the real clock: the loop sleeps in its poll until the timer is due.
    fut = loop.create_future()
    start = loop.time()
    loop.call_later(0.05, lambda: fut.set_result(loop.time()))
    fired_at = loop.run_until_complete(fut)
    assert fired_at - start >= 0.05 - 0.002  # clock resolution slack
    assert fired_at - start < 5


def test_timer_callback_args(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[tuple[Any, ...]] = []
    loop.call_later(0, lambda *a: calls.append(a), 1, "two", None)
    loop.call_at(loop.time(), lambda *a: calls.append(a), 3)
    _run_once(loop)
    assert calls == [(1, "two", None), (3,)]


def test_many_timers_mostly_cancelled(
    loop: asyncio.AbstractEventLoop, fake_clock: FakeClock
) -> None:
    # Debug mode captures a stack per handle: ~10x slower and not under test.
    loop.set_debug(False)
    n = 100_000
    rng = random.Random(12345)
    base = loop.time() + 0.02
    order = list(range(n))
    rng.shuffle(order)
    fired: list[int] = []
    handles = {k: loop.call_at(base + 0.02 * k / n, fired.append, k) for k in order}
    keep = set(rng.sample(range(n), n // 10))
    for k, h in handles.items():
        if k not in keep:
            h.cancel()
    del handles
    _run_once(loop)  # nothing due yet: the cancelled timers are pruned
    assert fired == []
    fake_clock.set(base + 0.01)  # the first half of the deadlines
    _run_once(loop)
    assert fired == sorted(k for k in keep if base + 0.02 * k / n <= base + 0.01)
    fake_clock.set(base + 0.02)
    _run_once(loop)
    assert fired == sorted(keep)


def test_cancel_after_timer_fired(loop: asyncio.AbstractEventLoop, fake_clock: FakeClock) -> None:
    fired: list[int] = []
    handles = [loop.call_later(i * 1e-6, fired.append, i) for i in range(100)]
    fake_clock.advance(1e-3)
    _run_once(loop)
    assert fired == list(range(100))
    for h in handles:
        h.cancel()  # already ran: only marks the handle
        assert h.cancelled()
    # The loop's bookkeeping of cancelled timers is still right: new timers
    # fire, in order.
    fired.clear()
    base = loop.time()
    for i in reversed(range(100)):
        loop.call_at(base + 1 + i * 1e-4, fired.append, i)
    _run_once(loop)
    assert fired == []
    fake_clock.advance(1 + 99e-4 + 1e-6)
    _run_once(loop)
    assert fired == list(range(100))


def test_cancelled_timer_does_not_keep_loop_busy(
    loop: asyncio.AbstractEventLoop, fake_clock: FakeClock
) -> None:
    fired: list[str] = []
    h = loop.call_later(0.01, fired.append, "cancelled")
    h.cancel()
    loop.call_later(0.03, fired.append, "kept")
    fake_clock.advance(0.02)  # past the cancelled timer's deadline
    _run_once(loop)
    assert fired == []
    fake_clock.advance(0.01)
    _run_once(loop)
    assert fired == ["kept"]


# --------------------------------------------------------------------------
# timeouts, on the fake clock
# --------------------------------------------------------------------------


def _started(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
    """A task that has run its first step (and so scheduled its timers)."""
    task = loop.create_task(coro)
    _run_once(loop)
    assert not task.done()
    return task


def test_sleep_ends_at_its_deadline(loop: asyncio.AbstractEventLoop, fake_clock: FakeClock) -> None:
    task = _started(loop, asyncio.sleep(10, result="slept"))
    fake_clock.advance(9.999)
    _run_once(loop)
    assert not task.done()
    fake_clock.advance(0.001)
    assert loop.run_until_complete(task) == "slept"


def test_wait_for_times_out_at_its_deadline(
    loop: asyncio.AbstractEventLoop, fake_clock: FakeClock
) -> None:
    inner = loop.create_future()
    task = _started(loop, asyncio.wait_for(inner, 5))
    fake_clock.advance(4.999)
    _run_once(loop)
    assert not task.done()
    fake_clock.advance(0.001)
    with pytest.raises(TimeoutError):
        loop.run_until_complete(task)
    assert inner.cancelled()


def test_wait_for_result_before_its_deadline(
    loop: asyncio.AbstractEventLoop, fake_clock: FakeClock
) -> None:
    inner = loop.create_future()
    task = _started(loop, asyncio.wait_for(inner, 5))
    fake_clock.advance(4.999)
    _run_once(loop)
    inner.set_result("in time")
    assert loop.run_until_complete(task) == "in time"
    # The timeout's timer went with it: moving past the deadline changes nothing.
    fake_clock.advance(10)
    _run_once(loop)
    assert task.result() == "in time"


def test_timeout_context_rescheduled(
    loop: asyncio.AbstractEventLoop, fake_clock: FakeClock
) -> None:
    seen: list[float | None] = []

    async def main() -> None:
        async with asyncio.timeout(5) as cm:
            seen.append(cm.when())
            cm.reschedule(loop.time() + 10)
            seen.append(cm.when())
            await loop.create_future()

    start = loop.time()
    task = _started(loop, main())
    assert seen == [start + 5, start + 10]
    fake_clock.advance(9.999)  # past the first deadline, before the second
    _run_once(loop)
    assert not task.done()
    fake_clock.advance(0.001)
    with pytest.raises(TimeoutError):
        loop.run_until_complete(task)


def test_timeouts_expire_in_deadline_order(
    loop: asyncio.AbstractEventLoop, fake_clock: FakeClock
) -> None:
    expired: list[int] = []

    async def waiter(k: int, seconds: float) -> None:
        try:
            await asyncio.wait_for(loop.create_future(), seconds)
        except TimeoutError:
            expired.append(k)

    deadlines = [3.0, 1.0, 2.0, 5.0, 4.0]
    tasks = [loop.create_task(waiter(k, d)) for k, d in enumerate(deadlines)]
    _run_once(loop)
    for step in range(1, 6):
        fake_clock.advance(1.0)
        for _ in range(5):  # timeout, cancellation, TimeoutError: a few iterations
            _run_once(loop)
        assert expired == sorted(range(5), key=lambda k: deadlines[k])[:step]
    loop.run_until_complete(asyncio.gather(*tasks))


# --------------------------------------------------------------------------
# the clock
# --------------------------------------------------------------------------


def test_time_is_monotonic_clock(loop: asyncio.AbstractEventLoop) -> None:
    samples = [loop.time() for _ in range(1000)]
    assert samples == sorted(samples)
    assert isinstance(samples[0], float)
    # asyncio's clock is time.monotonic(); libraries compare the two.
    assert abs(loop.time() - time.monotonic()) < 1.0


def test_patched_time_sets_when(loop: asyncio.AbstractEventLoop) -> None:
    with mock.patch.object(loop, "time", return_value=1000.0):
        h = loop.call_later(5, _noop)
    assert h.when() == 1005.0
    h.cancel()


def test_patched_time_fires_timers(loop: asyncio.AbstractEventLoop) -> None:
    fired = loop.create_future()
    base = loop.time()
    loop.call_later(3600, fired.set_result, "fired")
    start = time.monotonic()
    with mock.patch.object(loop, "time", return_value=base + 7200):
        assert loop.run_until_complete(fired) == "fired"
    assert time.monotonic() - start < 30


def test_patched_time_ends_sleep(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> str:
        task = loop.create_task(asyncio.sleep(3600, result="slept"))
        await asyncio.sleep(0)  # the sleep's timer is now scheduled
        with mock.patch.object(loop, "time", return_value=loop.time() + 7200):
            return await task

    start = time.monotonic()
    assert loop.run_until_complete(main()) == "slept"
    assert time.monotonic() - start < 30


# --------------------------------------------------------------------------
# call_soon_threadsafe
# --------------------------------------------------------------------------


def test_call_soon_threadsafe_wakes_blocked_loop(loop: asyncio.AbstractEventLoop) -> None:
    # No timers are scheduled: the loop blocks in its poll with no timeout
    # until the other thread writes to the waker.
    fut = loop.create_future()
    threads: list[threading.Thread] = []

    main_tid = threading.get_native_id()

    def worker() -> None:
        # Call once the loop thread sleeps in its poll, so that the waker is
        # what wakes it.
        wait_until_blocked_in_poll(os.getpid(), main_tid)
        loop.call_soon_threadsafe(fut.set_result, threading.get_ident())

    def start() -> None:
        t = threading.Thread(target=worker)
        threads.append(t)
        t.start()

    loop.call_soon(start)
    begin = time.monotonic()
    ident = loop.run_until_complete(fut)
    assert time.monotonic() - begin < 10
    threads[0].join(10)
    assert ident == threads[0].ident


def test_call_soon_threadsafe_many_threads(loop: asyncio.AbstractEventLoop) -> None:
    n_threads, per_thread = 4, 500
    results: dict[int, list[int]] = {i: [] for i in range(n_threads)}
    done = loop.create_future()
    remaining = [n_threads * per_thread]

    def record(i: int, j: int) -> None:
        assert threading.current_thread() is threading.main_thread()
        results[i].append(j)
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set_result(None)

    barrier = threading.Barrier(n_threads)

    def worker(i: int) -> None:
        barrier.wait(10)
        for j in range(per_thread):
            loop.call_soon_threadsafe(record, i, j)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    loop.run_until_complete(done)
    for t in threads:
        t.join(10)
    # FIFO per producing thread.
    assert results == {i: list(range(per_thread)) for i in range(n_threads)}


def test_call_soon_threadsafe_returns_handle(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[int] = []
    h = loop.call_soon_threadsafe(calls.append, 1)
    assert isinstance(h, asyncio.Handle)
    h2 = loop.call_soon_threadsafe(calls.append, 2)
    h2.cancel()
    _run_once(loop)
    assert calls == [1]


# --------------------------------------------------------------------------
# errors in callbacks
# --------------------------------------------------------------------------


def _boom(*args: Any) -> None:
    raise ZeroDivisionError("callback failed")


def test_callback_exception_goes_to_handler(
    loop: asyncio.AbstractEventLoop, errors: ErrorLog
) -> None:
    loop.set_debug(False)
    calls: list[str] = []
    h = loop.call_soon(_boom, 1, "x")
    loop.call_soon(calls.append, "after")
    _run_once(loop)
    assert calls == ["after"]
    [ctx] = errors.take()
    assert set(ctx) == {"message", "exception", "handle"}
    assert ctx["message"] == f"Exception in callback {_cb_text(_boom, (1, 'x'), False)}"
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert str(ctx["exception"]) == "callback failed"
    assert ctx["handle"] is h
    # The loop keeps working.
    assert loop.run_until_complete(asyncio.sleep(0, result="ok")) == "ok"


def test_timer_callback_exception_goes_to_handler(
    loop: asyncio.AbstractEventLoop, errors: ErrorLog
) -> None:
    loop.set_debug(False)
    h = loop.call_later(0, _boom, 2)
    _run_once(loop)
    [ctx] = errors.take()
    assert set(ctx) == {"message", "exception", "handle"}
    assert ctx["message"] == f"Exception in callback {_cb_text(_boom, (2,), False)}"
    assert ctx["handle"] is h
    assert isinstance(ctx["handle"], asyncio.TimerHandle)


def test_callback_exception_debug_has_source_traceback(
    loop: asyncio.AbstractEventLoop, errors: ErrorLog
) -> None:
    loop.set_debug(True)
    line = sys._getframe().f_lineno + 1
    h = loop.call_soon(_boom, 3)
    _run_once(loop)
    [ctx] = errors.take()
    assert set(ctx) == {"message", "exception", "handle", "source_traceback"}
    assert ctx["message"] == f"Exception in callback {_cb_text(_boom, (3,), True)}"
    assert ctx["handle"] is h
    last = ctx["source_traceback"][-1]
    assert (last.filename, last.lineno, last.name) == (
        __file__,
        line,
        "test_callback_exception_debug_has_source_traceback",
    )


def _schedule(lp: asyncio.AbstractEventLoop, method: str, cb: Any) -> None:
    if method in ("call_soon", "call_soon_threadsafe"):
        getattr(lp, method)(cb)
    elif method == "call_later":
        lp.call_later(0, cb)
    else:
        lp.call_at(lp.time(), cb)


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at", "call_soon_threadsafe"])
def test_debug_source_traceback_matches_asyncio(
    loop: asyncio.AbstractEventLoop, method: str
) -> None:
    # The creation stack a handle records in debug mode (reported as the
    # context's 'source_traceback' and printed by the default handler): same
    # frames, same depth as asyncio records for the same call chain.
    def capture(lp: asyncio.AbstractEventLoop) -> list[tuple[str, int | None, str]]:
        lp.set_debug(True)
        got: list[dict[str, Any]] = []
        lp.set_exception_handler(lambda _lp, ctx: got.append(ctx))
        _schedule(lp, method, _boom)
        _run_once(lp)
        [ctx] = got
        return [(f.filename, f.lineno, f.name) for f in ctx["source_traceback"]]

    stock = asyncio.new_event_loop()
    try:
        # One call site for both loops, so the recorded frames can be equal.
        expected, got = (capture(lp) for lp in (stock, loop))
    finally:
        stock.close()
    assert got == expected
    assert expected[-1][2] == "_schedule"


def test_non_callable_outside_debug_fails_when_run(
    loop: asyncio.AbstractEventLoop, errors: ErrorLog
) -> None:
    loop.set_debug(False)
    h = loop.call_soon(1)  # type: ignore[arg-type]
    _run_once(loop)
    [ctx] = errors.take()
    assert ctx["message"] == "Exception in callback 1()"
    assert isinstance(ctx["exception"], TypeError)
    assert str(ctx["exception"]) == "'int' object is not callable"
    assert ctx["handle"] is h


def test_base_exception_in_callback_propagates(loop: asyncio.AbstractEventLoop) -> None:
    def interrupt() -> None:
        raise SystemExit("bye")

    loop.call_soon(interrupt)
    with pytest.raises(SystemExit, match=r"^bye$"):
        loop.run_forever()
    assert loop.is_running() is False


# --------------------------------------------------------------------------
# debug mode
# --------------------------------------------------------------------------


def test_set_get_debug(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False
    assert loop.slow_callback_duration == 0.1  # type: ignore[attr-defined]


def test_debug_enables_coroutine_origin_tracking(loop: asyncio.AbstractEventLoop) -> None:
    async def depth() -> int:
        return sys.get_coroutine_origin_tracking_depth()

    outside = sys.get_coroutine_origin_tracking_depth()
    loop.set_debug(True)
    assert loop.run_until_complete(depth()) == 10  # asyncio.constants.DEBUG_STACK_DEPTH
    assert sys.get_coroutine_origin_tracking_depth() == outside
    loop.set_debug(False)
    assert loop.run_until_complete(depth()) == outside


def _coro_fn_for_checks() -> Any:
    async def coro_fn() -> None:
        pass

    return coro_fn


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("call_soon", "call_soon"),
        ("call_later", "call_at"),  # call_later delegates to call_at, whose name appears
        ("call_at", "call_at"),
        ("call_soon_threadsafe", "call_soon_threadsafe"),
    ],
)
def test_debug_rejects_coroutines_and_non_callables(
    loop: asyncio.AbstractEventLoop, method: str, name: str
) -> None:
    loop.set_debug(True)

    def call(cb: Any) -> Any:
        if method in ("call_soon", "call_soon_threadsafe"):
            return getattr(loop, method)(cb)
        return getattr(loop, method)(1, cb)

    coro_fn = _coro_fn_for_checks()
    with pytest.raises(TypeError) as info:
        call(coro_fn)
    assert str(info.value) == f"coroutines cannot be used with {name}()"
    coro = coro_fn()
    try:
        with pytest.raises(TypeError) as info:
            call(coro)
        assert str(info.value) == f"coroutines cannot be used with {name}()"
    finally:
        coro.close()
    with pytest.raises(TypeError) as info:
        call(123)
    assert str(info.value) == f"a callable object was expected by {name}(), got 123"
    with pytest.raises(TypeError) as info:
        call("text")
    assert str(info.value) == f"a callable object was expected by {name}(), got 'text'"


def test_debug_check_thread(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)
    outcome: dict[str, str] = {}
    fut = loop.create_future()
    msg = "Non-thread-safe operation invoked on an event loop other than the current one"

    def worker() -> None:
        for name, call in [
            ("call_soon", lambda: loop.call_soon(_noop)),
            ("call_later", lambda: loop.call_later(0, _noop)),
            ("call_at", lambda: loop.call_at(0, _noop)),
        ]:
            try:
                call()
            except RuntimeError as exc:
                outcome[name] = str(exc)
            else:
                outcome[name] = "no error"
        loop.call_soon_threadsafe(fut.set_result, None)

    thread = threading.Thread(target=worker)
    loop.call_soon(thread.start)
    loop.run_until_complete(fut)
    thread.join(10)
    assert outcome == {"call_soon": msg, "call_later": msg, "call_at": msg}


def test_debug_other_thread_allowed_when_not_running(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)
    calls: list[str] = []
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            loop.call_soon(calls.append, "from thread")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert failures == []
    _run_once(loop)
    assert calls == ["from thread"]


def test_slow_callback_logged(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01  # type: ignore[attr-defined]

    def busy() -> None:
        # Burns CPU on purpose: a slow callback is the behaviour under test.
        end = time.monotonic() + 0.05
        while time.monotonic() < end:
            pass

    caplog.set_level(logging.WARNING, logger="asyncio")
    line = sys._getframe().f_lineno + 1
    loop.call_soon(busy)
    loop.call_soon(_noop)  # fast: not logged
    _run_once(loop)
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1, [r.getMessage() for r in records]
    [record] = records
    assert record.levelno == logging.WARNING
    code = busy.__code__
    expected = re.escape(
        f"Executing <Handle {busy.__qualname__}() at {code.co_filename}:{code.co_firstlineno}"
        f" created at {__file__}:{line}> took "
    )
    message = record.getMessage()
    assert re.fullmatch(expected + r"(\d+\.\d{3}) seconds", message), message
    took = float(message.rsplit(" ", 2)[1])
    assert 0.05 <= took < 10


def test_slow_task_step_logged_as_task(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01  # type: ignore[attr-defined]

    async def slow() -> None:
        end = time.monotonic() + 0.05
        while time.monotonic() < end:
            pass

    caplog.set_level(logging.WARNING, logger="asyncio")
    task = loop.create_task(slow(), name="slow-task")
    loop.run_until_complete(task)
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert len(messages) == 1, messages
    assert re.fullmatch(
        r"Executing <Task (pending|finished) name='slow-task' coro=<.*slow\(\).*> "
        r"took \d+\.\d{3} seconds",
        messages[0],
        flags=re.S,
    ), messages[0]


def test_fast_callbacks_not_logged_in_debug(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(True)
    caplog.set_level(logging.WARNING, logger="asyncio")
    for _ in range(10):
        loop.call_soon(_noop)
    _run_once(loop)
    assert [r for r in caplog.records if r.name == "asyncio"] == []


_DEBUG_PROBE = """
import asyncio, json, sys
sys.path[:0] = json.loads(sys.argv[2])
kind = sys.argv[1]
if kind == "asyncio":
    lp = asyncio.new_event_loop()
else:
    import tideloop
    lp = tideloop.new_event_loop(backend=kind.split("-", 1)[1])
print(lp.get_debug())
lp.close()
"""


@pytest.mark.parametrize(
    ("env_value", "flags", "expected"),
    [
        ("1", [], "True"),
        (None, [], "False"),
        ("", [], "False"),
        (None, ["-X", "dev"], "True"),
        ("1", ["-E"], "False"),  # -E: the environment is ignored
    ],
)
def test_debug_from_environment(
    loop_kind: str, env_value: str | None, flags: list[str], expected: str
) -> None:
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    env.pop("PYTHONDEVMODE", None)
    if env_value is not None:
        env["PYTHONASYNCIODEBUG"] = env_value
    out = subprocess.run(
        [sys.executable, *flags, "-c", _DEBUG_PROBE, loop_kind, json.dumps(sys.path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


# --------------------------------------------------------------------------
# futures and tasks
# --------------------------------------------------------------------------


def test_create_future(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    assert type(fut) is asyncio.Future
    assert fut.get_loop() is loop
    assert not fut.done()
    loop.call_soon(fut.set_result, 3)
    assert loop.run_until_complete(fut) == 3


def test_create_task(loop: asyncio.AbstractEventLoop) -> None:
    async def coro() -> str:
        return "result"

    task = loop.create_task(coro())
    assert type(task) is asyncio.Task
    assert task.get_loop() is loop
    assert re.fullmatch(r"Task-\d+", task.get_name())
    named = loop.create_task(coro(), name="my-name")
    assert named.get_name() == "my-name"
    assert loop.run_until_complete(task) == "result"
    assert loop.run_until_complete(named) == "result"


def test_create_task_not_a_coroutine(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError) as info:
        loop.create_task(1)  # type: ignore[arg-type]
    assert str(info.value) == "a coroutine was expected, got 1"


def test_create_task_context(loop: asyncio.AbstractEventLoop) -> None:
    ctx = contextvars.copy_context()
    ctx.run(var.set, "task ctx")

    async def coro() -> str:
        value = var.get()
        var.set("set in task")
        return value

    assert loop.run_until_complete(loop.create_task(coro(), context=ctx)) == "task ctx"
    assert ctx[var] == "set in task"
    assert var.get() == "default"


def test_create_task_debug_source_traceback(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)

    async def coro() -> None:
        pass

    line = sys._getframe().f_lineno + 1
    task = loop.create_task(coro())
    assert repr(task).endswith(f" created at {__file__}:{line}>"), repr(task)
    loop.run_until_complete(task)


def test_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[tuple[Any, ...]] = []

    def factory(lp: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        calls.append((lp, type(coro).__name__, "context" in kwargs))
        return asyncio.Task(coro, loop=lp, **kwargs)

    async def coro() -> int:
        return 9

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory
    t1 = loop.create_task(coro(), name="named")
    assert t1.get_name() == "named"
    ctx = contextvars.copy_context()
    t2 = loop.create_task(coro(), context=ctx)
    # The factory gets the context keyword only when one is given. (Which other
    # keywords it gets changed within 3.13's patch releases: not asserted.)
    assert calls == [(loop, "coroutine", False), (loop, "coroutine", True)]
    assert loop.run_until_complete(t1) == 9
    assert loop.run_until_complete(t2) == 9
    # Tasks made by asyncio helpers go through the factory too.
    assert loop.run_until_complete(asyncio.wait_for(coro(), 10)) == 9
    assert len(calls) >= 3
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    n = len(calls)
    loop.run_until_complete(loop.create_task(coro()))
    assert len(calls) == n


def test_task_factory_result_returned_as_is(loop: asyncio.AbstractEventLoop) -> None:
    class MyTask(asyncio.Task):  # type: ignore[type-arg]
        pass

    loop.set_task_factory(lambda lp, coro, **kw: MyTask(coro, loop=lp, **kw))

    async def coro() -> str:
        return "mine"

    task = loop.create_task(coro())
    assert type(task) is MyTask
    assert loop.run_until_complete(task) == "mine"


@pytest.mark.parametrize("bad", [1, "factory", object()])
def test_task_factory_must_be_callable(loop: asyncio.AbstractEventLoop, bad: Any) -> None:
    with pytest.raises(TypeError) as info:
        loop.set_task_factory(bad)
    assert str(info.value) == "task factory must be a callable or None"
    assert loop.get_task_factory() is None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are new in Python 3.12")
def test_eager_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    events: list[str] = []
    seen_tasks: list[Any] = []

    async def child() -> int:
        events.append("child start")
        seen_tasks.append(asyncio.current_task())
        await asyncio.sleep(0)
        events.append("child end")
        return 5

    async def quick() -> str:
        return "no suspension"

    async def main() -> None:
        t = loop.create_task(child(), name="eager-child")
        events.append("after create")
        assert seen_tasks == [t]
        assert t.get_name() == "eager-child"
        q = loop.create_task(quick())
        # Completed synchronously, before create_task returned.
        assert q.done() and q.result() == "no suspension"
        assert await t == 5

    loop.run_until_complete(main())
    assert events == ["child start", "after create", "child end"]
