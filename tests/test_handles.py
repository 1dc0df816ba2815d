"""The scheduler's pieces (``tideloop._handles``): Handle, TimerHandle and
TimerHeap, tested on their own.

The handles must be indistinguishable from asyncio's (class checks, repr,
comparisons, cancel); the heap must pop timers by deadline, FIFO among equal
deadlines, count cancelled timers and compact by asyncio's rule.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import operator
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tideloop
from tideloop._handles import (
    MIN_CANCELLED_TIMER_HANDLES_FRACTION,
    MIN_SCHEDULED_TIMER_HANDLES,
    Handle,
    TimerHandle,
    TimerHeap,
)

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")


def _plain(*args: Any) -> None:
    pass


class _Obj:
    def method(self, *args: Any) -> None:
        pass


_CALLBACKS = [
    pytest.param(_plain, (1, "s"), id="function"),
    pytest.param(functools.partial(_plain, 1, k="v"), ("x",), id="partial"),
    pytest.param(_Obj().method, (4,), id="bound-method"),
    pytest.param(print, ("p",), id="builtin"),
    pytest.param(_plain, ("x" * 100, list(range(50))), id="long-args"),
]


@pytest.fixture
def loops() -> Iterator[tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]]:
    """A tideloop loop and a stock asyncio loop, closed afterwards."""
    tl, aio = tideloop.new_event_loop(), asyncio.new_event_loop()
    try:
        yield tl, aio
    finally:
        tl.close()
        aio.close()


class HeapLoop:
    """The loop methods a handle calls, wired to a TimerHeap as LoopCore's are:
    ``get_debug`` (cancel, repr) and ``_timer_handle_cancelled``."""

    def __init__(self, heap: TimerHeap) -> None:
        self.heap = heap

    def get_debug(self) -> bool:
        return False

    def _timer_handle_cancelled(self, handle: TimerHandle) -> None:
        self.heap.on_cancel(handle)


_serial = itertools.count()


def _timer(heap: TimerHeap, when: float) -> TimerHandle:
    # Distinct arguments: TimerHandle's == compares deadline, callback and
    # arguments, and the order checks below must tell equal deadlines apart.
    loop = cast(asyncio.AbstractEventLoop, HeapLoop(heap))
    return TimerHandle(when, _plain, (next(_serial),), loop, None)


def _popped(heap: TimerHeap, end_time: float) -> list[TimerHandle]:
    out: list[TimerHandle] = []
    heap.pop_due(end_time, out.append)
    return out


# -- Handle and TimerHandle ----------------------------------------------------------


def test_handles_are_asyncio_handles(
    loops: tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop],
) -> None:
    tl, _ = loops
    h = Handle(_plain, (), tl, None)
    t = TimerHandle(1.0, _plain, (), tl, None)
    assert isinstance(h, asyncio.Handle) and not isinstance(h, asyncio.TimerHandle)
    assert isinstance(t, asyncio.TimerHandle) and isinstance(t, asyncio.Handle)
    # Lean like asyncio's: slots, no instance dict.
    ref = asyncio.Handle(_plain, (), tl)
    assert hasattr(h, "__dict__") is hasattr(ref, "__dict__") is False
    assert type(h).__name__ == "Handle" and type(t).__name__ == "TimerHandle"


def test_handle_cancel(loops: tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]) -> None:
    tl, _ = loops
    calls: list[int] = []
    h = Handle(calls.append, (1,), tl, None)
    assert h.cancelled() is False
    h._run()
    assert calls == [1]
    h.cancel()
    assert h.cancelled() is True
    h.cancel()  # idempotent
    assert h.cancelled() is True
    # Outside debug mode cancel() drops the callback and its arguments.
    assert (h._callback, h._args) == (None, None)  # type: ignore[attr-defined]


def test_handle_runs_in_its_context(
    loops: tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop],
) -> None:
    tl, _ = loops
    seen: list[str] = []
    token = var.set("at creation")
    try:
        h = Handle(lambda: seen.append(var.get()), (), tl, None)
    finally:
        var.reset(token)
    ctx = contextvars.copy_context()
    ctx.run(var.set, "explicit")
    h2 = Handle(lambda: seen.append(var.get()), (), tl, ctx)
    h._run()
    h2._run()
    assert seen == ["at creation", "explicit"]


def test_timer_handle_cancel_tells_the_loop_once() -> None:
    heap = TimerHeap()
    t = _timer(heap, 5.0)
    heap.push(t)
    t.cancel()
    t.cancel()
    assert t.cancelled() is True
    assert (heap.cancelled, heap.cancelled_total) == (1, 1)
    assert t.when() == 5.0  # the deadline stays readable


@pytest.mark.parametrize(("cb", "args"), _CALLBACKS)
def test_repr_matches_asyncio(
    loops: tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop],
    cb: Callable[..., object],
    args: tuple[Any, ...],
) -> None:
    tl, _ = loops
    tl.set_debug(False)
    pairs: list[tuple[asyncio.Handle, asyncio.Handle]] = [
        (Handle(cb, args, tl, None), asyncio.Handle(cb, args, tl)),
        (TimerHandle(12.5, cb, args, tl, None), asyncio.TimerHandle(12.5, cb, args, tl)),
    ]
    for ours, ref in pairs:
        assert repr(ours) == repr(ref)
        ours.cancel()
        ref.cancel()
        assert repr(ours) == repr(ref)
    assert repr(pairs[0][0]) == "<Handle cancelled>"
    assert repr(pairs[1][0]) == "<TimerHandle cancelled when=12.5>"


def _schedule_both(
    lp: asyncio.AbstractEventLoop, cb: Callable[..., object], args: tuple[Any, ...]
) -> tuple[asyncio.Handle, asyncio.TimerHandle]:
    # One call site for both loops: in debug mode each handle names it.
    return lp.call_soon(cb, *args), lp.call_at(77.5, cb, *args)


@pytest.mark.parametrize(("cb", "args"), _CALLBACKS)
def test_repr_matches_asyncio_in_debug_mode(
    loops: tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop],
    cb: Callable[..., object],
    args: tuple[Any, ...],
) -> None:
    # A handle made directly has no creation stack (the loop records it, as
    # asyncio's handle constructor does in debug mode): compare handles made
    # by each loop.
    tl, aio = loops
    tl.set_debug(True)
    aio.set_debug(True)
    ours = _schedule_both(tl, cb, args)
    refs = _schedule_both(aio, cb, args)
    for h, ref in zip(ours, refs, strict=True):
        assert " created at " in repr(ref)
        assert repr(h) == repr(ref)
        h.cancel()
        ref.cancel()
        # Debug mode keeps the text on cancel.
        assert repr(h) == repr(ref)
        assert repr(h).startswith(f"<{type(ref).__name__} cancelled ")


_OPS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param((1.0, _plain, (1,)), (2.0, _plain, (1,)), id="earlier"),
        pytest.param((2.0, _plain, (1,)), (1.0, _plain, (1,)), id="later"),
        pytest.param((1.0, _plain, (1,)), (1.0, _plain, (1,)), id="equal"),
        pytest.param((1.0, _plain, (1,)), (1.0, _plain, (2,)), id="same-when-other-args"),
        pytest.param((1.0, _plain, ()), (1.0, print, ()), id="same-when-other-callback"),
    ],
)
def test_timer_handle_comparisons_match_asyncio(
    loops: tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop],
    a: tuple[float, Callable[..., object], tuple[Any, ...]],
    b: tuple[float, Callable[..., object], tuple[Any, ...]],
) -> None:
    tl, _ = loops
    ours = [TimerHandle(w, cb, args, tl, None) for w, cb, args in (a, b)]
    refs = [asyncio.TimerHandle(w, cb, args, tl) for w, cb, args in (a, b)]
    for op in _OPS:
        assert op(ours[0], ours[1]) == op(refs[0], refs[1]), op.__name__
        # And across the two classes, both ways.
        assert op(ours[0], refs[1]) == op(refs[0], refs[1]), op.__name__
        assert op(refs[0], ours[1]) == op(refs[0], refs[1]), op.__name__
    assert [h.when() for h in ours] == [a[0], b[0]]
    assert hash(ours[0]) == hash(refs[0]) == hash(a[0])
    # A cancelled timer is not equal to a live one with the same deadline.
    if a == b:
        ours[0].cancel()
        refs[0].cancel()
        assert (ours[0] == ours[1]) is (refs[0] == refs[1]) is False
    for h in ours + refs:
        h.cancel()


def test_timer_handle_compared_with_other_types(
    loops: tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop],
) -> None:
    tl, _ = loops
    t = TimerHandle(1.0, _plain, (), tl, None)
    assert (t == 1.0) is False
    assert (t != Handle(_plain, (), tl, None)) is True
    with pytest.raises(TypeError):
        t < 2.0  # noqa: B015
    assert sorted([TimerHandle(3.0, _plain, (), tl, None), t])[0] is t


# -- TimerHeap ----------------------------------------------------------------------------


def test_pop_due_in_deadline_order_fifo_among_equals() -> None:
    heap = TimerHeap()
    deadlines = [5.0, 1.0, 3.0, 1.0, 5.0, 2.0, 1.0, 3.0]
    timers = [_timer(heap, when) for when in deadlines]
    for t in timers:
        heap.push(t)
    assert len(heap) == len(timers)
    expected = sorted(timers, key=lambda t: (t.when(), timers.index(t)))
    assert _popped(heap, float("inf")) == expected
    assert len(heap) == 0


def test_pop_due_stops_at_end_time() -> None:
    heap = TimerHeap()
    timers = {when: _timer(heap, when) for when in (1.0, 2.0, 3.0, 4.0)}
    for t in timers.values():
        heap.push(t)
    assert _popped(heap, 1.0) == []  # a deadline equal to end_time is not due
    assert _popped(heap, 2.5) == [timers[1.0], timers[2.0]]
    assert heap.heap[0][0] == 3.0  # the next deadline, as the loop reads it
    assert _popped(heap, 3.0 + 1e-9) == [timers[3.0]]
    assert _popped(heap, 100.0) == [timers[4.0]]
    assert _popped(heap, 100.0) == []


def test_scheduled_flag_follows_membership() -> None:
    heap = TimerHeap()
    a, b, c = (_timer(heap, w) for w in (1.0, 2.0, 3.0))
    assert not (a._scheduled or b._scheduled or c._scheduled)  # type: ignore[attr-defined]
    for t in (a, b, c):
        heap.push(t)
    assert a._scheduled and b._scheduled and c._scheduled  # type: ignore[attr-defined]
    _popped(heap, 1.5)
    assert (a._scheduled, b._scheduled, c._scheduled) == (False, True, True)  # type: ignore[attr-defined]
    b.cancel()
    heap.prune()
    assert (b._scheduled, c._scheduled) == (False, True)  # type: ignore[attr-defined]
    heap.clear()
    assert c._scheduled is False  # type: ignore[attr-defined]


def test_cancel_is_counted_only_while_scheduled() -> None:
    heap = TimerHeap()
    never_pushed = _timer(heap, 1.0)
    popped = _timer(heap, 1.0)
    waiting = _timer(heap, 9.0)
    heap.push(popped)
    heap.push(waiting)
    assert _popped(heap, 2.0) == [popped]
    never_pushed.cancel()
    popped.cancel()
    assert (heap.cancelled, heap.cancelled_total) == (0, 0)
    waiting.cancel()
    assert (heap.cancelled, heap.cancelled_total) == (1, 1)


def test_cancelled_timers_are_dropped_when_due() -> None:
    heap = TimerHeap()
    timers = [_timer(heap, float(w)) for w in range(6)]
    for t in timers:
        heap.push(t)
    for t in timers[1::2]:
        t.cancel()
    assert heap.cancelled == 3
    assert _popped(heap, 10.0) == timers[0::2]
    assert heap.cancelled == 0
    assert heap.cancelled_total == 3
    assert all(not t._scheduled for t in timers)  # type: ignore[attr-defined]


def test_prune_drops_cancelled_timers_from_the_head_only() -> None:
    heap = TimerHeap()
    timers = [_timer(heap, float(w)) for w in range(5)]
    for t in timers:
        heap.push(t)
    for i in (0, 1, 3):
        timers[i].cancel()
    assert heap.cancelled == 3
    heap.prune()
    # 0 and 1 led the heap; 3 sits behind the live timer 2.
    assert len(heap) == 3
    assert heap.cancelled == 1
    assert heap.heap[0][2] is timers[2]
    assert [t._scheduled for t in timers] == [False, False, True, True, True]  # type: ignore[attr-defined]
    heap.prune()  # the head is live: nothing to do
    assert len(heap) == 3
    assert _popped(heap, 10.0) == [timers[2], timers[4]]
    assert heap.cancelled == 0


@pytest.mark.parametrize(
    ("count", "cancelled", "compacted"),
    [
        # asyncio's rule: more than 100 scheduled and more than half cancelled.
        (MIN_SCHEDULED_TIMER_HANDLES, MIN_SCHEDULED_TIMER_HANDLES - 1, False),
        (MIN_SCHEDULED_TIMER_HANDLES + 1, 51, True),
        (MIN_SCHEDULED_TIMER_HANDLES + 2, 51, False),  # exactly half: kept
        (1000, 501, True),
        (1000, 500, False),
    ],
)
def test_prune_compacts_by_asyncios_rule(count: int, cancelled: int, compacted: bool) -> None:
    assert (MIN_SCHEDULED_TIMER_HANDLES, MIN_CANCELLED_TIMER_HANDLES_FRACTION) == (100, 0.5)
    heap = TimerHeap()
    # The live timer comes first, so that pruning the head alone drops nothing.
    timers = [_timer(heap, float(w)) for w in range(count)]
    for t in timers:
        heap.push(t)
    doomed = timers[-cancelled:]
    for t in doomed:
        t.cancel()
    heap.prune()
    if compacted:
        assert len(heap) == count - cancelled
        assert heap.cancelled == 0
        assert all(not t._scheduled for t in doomed)  # type: ignore[attr-defined]
    else:
        assert len(heap) == count
        assert heap.cancelled == cancelled
        assert all(t._scheduled for t in doomed)  # type: ignore[attr-defined]
    assert heap.cancelled_total == cancelled
    # Either way the live timers come out in order, the cancelled ones never.
    assert _popped(heap, float("inf")) == timers[: count - cancelled]


def test_compaction_keeps_the_list_object() -> None:
    # The run loop holds ``heap.heap`` across prune(): it is rebuilt in place.
    heap = TimerHeap()
    timers = [_timer(heap, float(w)) for w in range(200)]
    for t in timers:
        heap.push(t)
    held = heap.heap
    for t in timers[:150]:
        t.cancel()
    heap.prune()
    assert heap.heap is held
    assert len(held) == 50


def test_clear() -> None:
    heap = TimerHeap()
    timers = [_timer(heap, float(w)) for w in range(5)]
    for t in timers:
        heap.push(t)
    timers[2].cancel()
    held = heap.heap
    heap.clear()
    assert len(heap) == 0 and heap.heap is held
    assert heap.cancelled == 0
    assert all(not t._scheduled for t in timers)  # type: ignore[attr-defined]
    # Cancelling after clear() is not counted as a timer in the heap.
    timers[0].cancel()
    assert heap.cancelled == 0


# -- the heap against a reference model ------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 30)),
        st.tuples(st.just("cancel"), st.integers(0, 10_000)),
        st.tuples(st.just("pop_due"), st.integers(0, 35)),
        st.tuples(st.just("prune"), st.just(0)),
        st.tuples(st.just("cancel_many"), st.integers(2, 4)),
    ),
    max_size=400,
)


@settings(max_examples=200, deadline=None)
@given(ops=_ops, bulk=st.integers(0, 150), keep_every=st.integers(1, 4))
def test_heap_matches_a_sorted_model(
    ops: list[tuple[str, int]], bulk: int, keep_every: int
) -> None:
    # ``bulk`` timers pushed first, all but every ``keep_every``-th of them
    # cancelled, make the compaction rule fire in many runs.
    heap = TimerHeap()
    made: list[TimerHandle] = []
    order: dict[int, int] = {}  # id(handle) -> push order
    model: list[TimerHandle] = []  # what the heap should hold
    counted = 0  # the cancellations the heap should have counted

    def push(when: float) -> None:
        t = _timer(heap, when)
        made.append(t)
        order[id(t)] = len(order)
        heap.push(t)
        model.append(t)

    for i in range(bulk):
        push(float(i % 61))
    for i, t in enumerate(made):
        if i % keep_every:
            counted += 1
            t.cancel()
    for op, arg in [("prune", 0), *ops, ("pop_due", 100)]:
        if op == "push":
            push(float(arg))
        elif op == "cancel" and made:
            t = made[arg % len(made)]
            # Counted only the first time, and only while in the heap.
            counted += not t.cancelled() and any(t is m for m in model)
            t.cancel()
        elif op == "cancel_many":
            # Every arg-th timer in the heap: cancelled ones soon dominate.
            for t in model[::arg]:
                counted += not t.cancelled()
                t.cancel()
        elif op == "pop_due":
            due = sorted(
                (t for t in model if t.when() < arg), key=lambda t: (t.when(), order[id(t)])
            )
            assert _popped(heap, float(arg)) == [t for t in due if not t.cancelled()]
            model = [t for t in model if t.when() >= arg]
        elif op == "prune":
            heap.prune()
            kept = [t for t in model if t._scheduled]  # type: ignore[attr-defined]
            # Only cancelled timers went, and the head is live.
            assert all(t.cancelled() for t in model if not any(t is k for k in kept))
            model = kept
            assert not heap.heap or not heap.heap[0][2].cancelled()
        # Invariants after every operation.
        assert len(heap) == len(model)
        assert {id(e[2]) for e in heap.heap} == {id(t) for t in model}
        assert heap.cancelled == sum(t.cancelled() for t in model)
        in_heap = {id(t) for t in model}
        assert all(t._scheduled == (id(t) in in_heap) for t in made)  # type: ignore[attr-defined]
    assert len(heap) == 0
    assert heap.cancelled_total == counted
