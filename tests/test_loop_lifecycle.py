"""Oracle tests of the loop life cycle: run_forever, run_until_complete, stop,
close, the running-loop bookkeeping, async generator hooks, executor shutdown,
repr, ``__del__`` and the asyncio.Runner / asyncio.run entry points.

Every test runs on stock asyncio and on tideloop (each backend) through the
``loop`` / ``loop_factory`` fixtures and asserts asyncio's observable results.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import inspect
import logging
import os
import signal
import sys
import threading
import warnings
import weakref
from typing import Any

import pytest

from .conftest import ErrorLog, LoopFactory
from .support.clock import FakeClock


def _env_debug() -> bool:
    # What asyncio.coroutines._is_debug_mode() computes: a fresh loop starts in
    # debug mode under -X dev or PYTHONASYNCIODEBUG (the suite is also run with
    # PYTHONASYNCIODEBUG=1).
    return bool(
        sys.flags.dev_mode
        or (not sys.flags.ignore_environment and os.environ.get("PYTHONASYNCIODEBUG"))
    )


def _open_fds() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError:  # pragma: no cover - not Linux
        return set()


async def _value(v: Any) -> Any:
    return v


def _factory_type(factory: LoopFactory) -> type:
    lp = factory()
    lp.close()
    return type(lp)


# --------------------------------------------------------------------------
# initial state, run_until_complete, run_forever, stop
# --------------------------------------------------------------------------


def test_initial_state(loop: asyncio.AbstractEventLoop) -> None:
    assert isinstance(loop, asyncio.AbstractEventLoop)
    assert loop.is_running() is False
    assert loop.is_closed() is False
    assert loop.get_debug() is _env_debug()


def test_run_until_complete_coroutine_result(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.run_until_complete(_value(42)) == 42
    assert loop.is_running() is False
    # The loop can be run again.
    assert loop.run_until_complete(_value("again")) == "again"


def test_run_until_complete_future(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_awaitable_object(loop: asyncio.AbstractEventLoop) -> None:
    class Awaitable:
        def __await__(self):  # type: ignore[no-untyped-def]
            return _value(7).__await__()

    assert loop.run_until_complete(Awaitable()) == 7


def test_run_until_complete_exception_propagates(loop: asyncio.AbstractEventLoop) -> None:
    exc = ValueError("boom")

    async def fail() -> None:
        raise exc

    with pytest.raises(ValueError) as info:
        loop.run_until_complete(fail())
    assert info.value is exc
    assert loop.is_running() is False


def test_run_until_complete_not_awaitable(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError) as info:
        loop.run_until_complete(1)  # type: ignore[arg-type]
    assert str(info.value) == "An asyncio.Future, a coroutine or an awaitable is required"


def test_run_until_complete_future_of_other_loop(
    loop: asyncio.AbstractEventLoop, loop_factory: LoopFactory
) -> None:
    other = loop_factory()
    try:
        fut = other.create_future()
        with pytest.raises(ValueError) as info:
            loop.run_until_complete(fut)
        assert str(info.value) == (
            "The future belongs to a different loop than the one specified as the loop argument"
        )
    finally:
        other.close()


def test_run_until_complete_system_exit_propagates(loop: asyncio.AbstractEventLoop) -> None:
    # BaseExceptions escape from the task step, through the loop, to the caller,
    # and leave the loop in a usable state.
    async def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit) as info:
        loop.run_until_complete(leave())
    assert info.value.code == 3
    assert loop.is_running() is False
    assert asyncio._get_running_loop() is None
    assert loop.run_until_complete(_value(1)) == 1


def test_keyboard_interrupt_from_callback_propagates(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[str] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    loop.call_soon(ran.append, "after")
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert loop.is_running() is False
    # The callback queued behind the interrupting one was not lost.
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == ["after"]


def test_run_forever_until_stop_from_callback(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []
    loop.call_soon(calls.append, "a")
    loop.call_soon(loop.stop)
    # stop() lets the current iteration finish: 'b' is already queued.
    loop.call_soon(calls.append, "b")
    loop.run_forever()
    assert calls == ["a", "b"]
    assert loop.is_running() is False


def test_stop_before_run_forever_runs_one_iteration(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []

    def first() -> None:
        calls.append("first")
        loop.call_soon(calls.append, "second")

    loop.call_soon(first)
    loop.stop()
    loop.run_forever()
    # Only the callbacks ready when the iteration began ran.
    assert calls == ["first"]
    loop.stop()
    loop.run_forever()
    assert calls == ["first", "second"]


def test_stop_before_run_forever_with_nothing_scheduled(loop: asyncio.AbstractEventLoop) -> None:
    loop.stop()
    loop.run_forever()  # returns at once
    assert loop.is_running() is False
    # The stop request was consumed: the next run needs its own stop.
    calls: list[int] = []
    loop.call_soon(calls.append, 1)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == [1]


def test_stop_twice_is_one_stop(loop: asyncio.AbstractEventLoop) -> None:
    loop.stop()
    loop.stop()
    loop.run_forever()
    calls: list[int] = []
    loop.call_soon(calls.append, 1)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == [1]


def test_is_running_inside(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[bool] = []
    loop.call_soon(lambda: seen.append(loop.is_running()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [True]
    assert loop.is_running() is False


def test_event_loop_stopped_before_future_completed(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError) as info:
        loop.run_until_complete(fut)
    assert str(info.value) == "Event loop stopped before Future completed."
    assert not fut.done()
    # The future can still complete on a later run.
    loop.call_soon(fut.set_result, 5)
    assert loop.run_until_complete(fut) == 5


def test_event_loop_stopped_before_task_completed(loop: asyncio.AbstractEventLoop) -> None:
    release = loop.create_future()

    async def stops_loop() -> str:
        loop.stop()
        await release
        return "finished"

    task = loop.create_task(stops_loop())
    with pytest.raises(RuntimeError) as info:
        loop.run_until_complete(task)
    assert str(info.value) == "Event loop stopped before Future completed."
    release.set_result(None)
    assert loop.run_until_complete(task) == "finished"


# --------------------------------------------------------------------------
# close
# --------------------------------------------------------------------------


def test_close(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    assert loop.is_closed() is True
    assert loop.is_running() is False
    loop.close()  # closing twice is allowed
    assert loop.is_closed() is True


def test_close_while_running(loop: asyncio.AbstractEventLoop) -> None:
    async def try_close() -> str:
        try:
            loop.close()
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    assert loop.run_until_complete(try_close()) == "Cannot close a running event loop"
    assert loop.is_closed() is False


def test_close_drops_pending_callbacks(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[int] = []
    loop.call_soon(calls.append, 1)
    loop.call_later(0, calls.append, 2)
    loop.close()
    assert calls == []


def test_run_forever_on_closed_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    with pytest.raises(RuntimeError) as info:
        loop.run_forever()
    assert str(info.value) == "Event loop is closed"


def test_run_until_complete_on_closed_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    coro = _value(1)
    try:
        with pytest.raises(RuntimeError) as info:
            loop.run_until_complete(coro)
        assert str(info.value) == "Event loop is closed"
    finally:
        coro.close()


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda lp: lp.call_soon(print), id="call_soon"),
        pytest.param(lambda lp: lp.call_later(1, print), id="call_later"),
        pytest.param(lambda lp: lp.call_at(1, print), id="call_at"),
        pytest.param(lambda lp: lp.call_soon_threadsafe(print), id="call_soon_threadsafe"),
        pytest.param(lambda lp: lp.run_in_executor(None, print), id="run_in_executor"),
    ],
)
def test_scheduling_on_closed_loop(loop: asyncio.AbstractEventLoop, call: Any) -> None:
    loop.close()
    with pytest.raises(RuntimeError) as info:
        call(loop)
    assert str(info.value) == "Event loop is closed"


def test_create_task_on_closed_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    coro = _value(1)
    try:
        with pytest.raises(RuntimeError) as info:
            loop.create_task(coro)
        assert str(info.value) == "Event loop is closed"
    finally:
        coro.close()


def test_create_future_on_closed_loop(loop: asyncio.AbstractEventLoop) -> None:
    # create_future does not check for a closed loop in asyncio.
    loop.close()
    fut = loop.create_future()
    assert fut.get_loop() is loop
    assert not fut.done()


# --------------------------------------------------------------------------
# nested runs and the running-loop registry
# --------------------------------------------------------------------------


def test_nested_run_until_complete(loop: asyncio.AbstractEventLoop) -> None:
    async def nested() -> str:
        inner = _value(1)
        try:
            loop.run_until_complete(inner)
        except RuntimeError as exc:
            return str(exc)
        finally:
            inner.close()
        return "no error"

    assert loop.run_until_complete(nested()) == "This event loop is already running"


def _asyncio_refused_run_forever_tears_down() -> bool:
    """CPython gh-130145 (3.13.0-3.13.2): run_forever() calls its setup inside
    the try whose finally cleans up, so a refused nested run unregisters the
    running loop."""
    source = inspect.getsource(asyncio.BaseEventLoop.run_forever)
    if "self._run_forever_setup()" not in source:
        return False  # 3.11: no setup method, checks before the try
    return source.index("try:") < source.index("self._run_forever_setup()")


def test_nested_run_forever(
    loop: asyncio.AbstractEventLoop, loop_kind: str, request: pytest.FixtureRequest
) -> None:
    if loop_kind == "asyncio" and _asyncio_refused_run_forever_tears_down():
        reason = "CPython gh-130145: a refused nested run_forever() unregisters the running loop"
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))

    async def nested() -> tuple[str, bool, bool]:
        try:
            loop.run_forever()
        except RuntimeError as exc:
            message = str(exc)
        else:
            message = "no error"
        # The refused run leaves the current one intact.
        await asyncio.sleep(0)
        return message, loop.is_running(), asyncio.get_running_loop() is loop

    assert loop.run_until_complete(nested()) == ("This event loop is already running", True, True)
    assert loop.is_running() is False


def test_run_while_another_loop_runs(
    loop: asyncio.AbstractEventLoop, loop_factory: LoopFactory
) -> None:
    other = loop_factory()

    async def nested() -> list[str]:
        messages = []
        inner = _value(1)
        try:
            other.run_until_complete(inner)
        except RuntimeError as exc:
            messages.append(str(exc))
        finally:
            inner.close()
        try:
            other.run_forever()
        except RuntimeError as exc:
            messages.append(str(exc))
        return messages

    try:
        assert (
            loop.run_until_complete(nested())
            == ["Cannot run the event loop while another loop is running"] * 2
        )
        assert other.is_running() is False
    finally:
        other.close()


def test_stock_loop_refuses_to_run_inside(loop: asyncio.AbstractEventLoop) -> None:
    # Works across implementations: the running loop is published through
    # asyncio's own registry, which a stock loop consults.
    stock = asyncio.new_event_loop()

    async def nested() -> str:
        try:
            stock.run_forever()
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    try:
        assert loop.run_until_complete(nested()) == (
            "Cannot run the event loop while another loop is running"
        )
    finally:
        stock.close()


def test_loop_refuses_to_run_inside_stock_loop(loop: asyncio.AbstractEventLoop) -> None:
    stock = asyncio.new_event_loop()

    async def nested() -> str:
        try:
            loop.run_forever()
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    try:
        assert stock.run_until_complete(nested()) == (
            "Cannot run the event loop while another loop is running"
        )
    finally:
        stock.close()


def test_running_loop_and_current_task(loop: asyncio.AbstractEventLoop) -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        seen["running"] = asyncio.get_running_loop()
        seen["event_loop"] = asyncio.get_event_loop()
        seen["current"] = asyncio.current_task()
        seen["current_explicit"] = asyncio.current_task(loop)
        seen["all_tasks"] = asyncio.all_tasks()

    task = loop.create_task(main())
    loop.run_until_complete(task)
    assert seen["running"] is loop
    assert seen["event_loop"] is loop
    assert seen["current"] is task
    assert seen["current_explicit"] is task
    assert seen["all_tasks"] == {task}
    assert asyncio._get_running_loop() is None


def test_running_loop_in_plain_callback(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[Any] = []

    def cb() -> None:
        seen.append(asyncio.get_running_loop())
        seen.append(asyncio.current_task())
        seen.append(asyncio.current_task(loop))

    loop.call_soon(cb)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [loop, None, None]


def test_no_running_loop_outside(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(_value(None))
    with pytest.raises(RuntimeError) as info:
        asyncio.get_running_loop()
    assert str(info.value) == "no running event loop"
    assert asyncio.current_task(loop) is None


def test_running_loop_restored_after_exception(loop: asyncio.AbstractEventLoop) -> None:
    def fail() -> None:
        raise KeyboardInterrupt

    loop.call_soon(fail)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert asyncio._get_running_loop() is None
    assert loop.is_running() is False


def test_run_in_another_thread(loop_factory: LoopFactory) -> None:
    # A loop created in one thread can be run in another (once), and the
    # running-loop registry is per thread.
    lp = loop_factory()
    result: dict[str, Any] = {}

    def runner() -> None:
        async def main() -> tuple[bool, int]:
            return asyncio.get_running_loop() is lp, threading.get_ident()

        result["value"] = lp.run_until_complete(main())
        result["ident"] = threading.get_ident()

    try:
        t = threading.Thread(target=runner)
        t.start()
        t.join(30)
        assert result["value"] == (True, result["ident"])
        assert asyncio._get_running_loop() is None
    finally:
        lp.close()


# --------------------------------------------------------------------------
# async generators
# --------------------------------------------------------------------------


def test_asyncgen_hooks_installed_while_running_and_restored(
    loop: asyncio.AbstractEventLoop,
) -> None:
    def firstiter(agen: Any) -> None:
        pass

    def finalizer(agen: Any) -> None:
        pass

    saved = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    try:
        inside: list[Any] = []

        async def main() -> None:
            inside.append(sys.get_asyncgen_hooks())

        loop.run_until_complete(main())
        hooks = inside[0]
        assert hooks.firstiter is not None and hooks.firstiter is not firstiter
        assert hooks.finalizer is not None and hooks.finalizer is not finalizer
        after = sys.get_asyncgen_hooks()
        assert after.firstiter is firstiter
        assert after.finalizer is finalizer
    finally:
        sys.set_asyncgen_hooks(*saved)


def test_shutdown_asyncgens_closes_suspended_generators(loop: asyncio.AbstractEventLoop) -> None:
    events: list[str] = []

    async def agen(name: str):  # type: ignore[no-untyped-def]
        try:
            yield 1
            yield 2
        finally:
            # Closed on the loop, in a task.
            events.append(f"{name} closed running={asyncio.get_running_loop() is loop}")

    gens = [agen("a"), agen("b")]

    async def main() -> None:
        for g in gens:
            assert await g.__anext__() == 1

    loop.run_until_complete(main())
    assert events == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert sorted(events) == ["a closed running=True", "b closed running=True"]
    # A second call finds nothing to do.
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert len(events) == 2


def test_shutdown_asyncgens_error_goes_to_exception_handler(
    loop: asyncio.AbstractEventLoop, errors: ErrorLog
) -> None:
    exc = ZeroDivisionError("in finally")

    async def agen():  # type: ignore[no-untyped-def]
        try:
            yield 1
        finally:
            raise exc

    g = agen()

    async def main() -> None:
        await g.__anext__()

    loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    [ctx] = errors.take()
    assert set(ctx) == {"message", "exception", "asyncgen"}
    assert ctx["message"] == f"an error occurred during closing of asynchronous generator {g!r}"
    assert ctx["exception"] is exc
    assert ctx["asyncgen"] is g


def test_asyncgen_first_iterated_after_shutdown_warns(loop: asyncio.AbstractEventLoop) -> None:
    async def agen():  # type: ignore[no-untyped-def]
        yield 1

    loop.run_until_complete(loop.shutdown_asyncgens())
    g = agen()

    async def main() -> list[int]:
        return [x async for x in g]

    with pytest.warns(ResourceWarning) as record:
        assert loop.run_until_complete(main()) == [1]
    [w] = [w for w in record if issubclass(w.category, ResourceWarning)]
    assert str(w.message) == (
        f"asynchronous generator {g!r} was scheduled after loop.shutdown_asyncgens() call"
    )
    assert w.source is loop


def test_asyncgen_finalized_through_loop_hook(loop: asyncio.AbstractEventLoop) -> None:
    # Dropping a suspended async generator while the loop runs makes the loop
    # schedule its aclose() as a task (the 'finalizer' hook).
    closed = loop.create_future()

    async def agen():  # type: ignore[no-untyped-def]
        try:
            yield 1
            yield 2
        finally:
            closed.set_result(
                (asyncio.get_running_loop() is loop, asyncio.current_task() is not None)
            )

    async def main() -> tuple[bool, bool]:
        g = agen()
        assert await g.__anext__() == 1
        del g
        gc.collect()
        return await closed

    assert loop.run_until_complete(main()) == (True, True)


def test_asyncgen_finalizer_task_uses_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    created: list[str] = []

    def factory(lp: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(type(coro).__name__)
        return asyncio.Task(coro, loop=lp, **kwargs)

    closed = loop.create_future()

    async def agen():  # type: ignore[no-untyped-def]
        try:
            yield 1
        finally:
            closed.set_result(None)

    async def main() -> None:
        g = agen()
        await g.__anext__()
        del g
        gc.collect()
        await closed

    loop.set_task_factory(factory)
    loop.run_until_complete(main())
    # main() itself, then the generator's aclose() awaitable.
    assert created == ["coroutine", "async_generator_athrow"]


# --------------------------------------------------------------------------
# shutdown_default_executor
# --------------------------------------------------------------------------


def test_shutdown_default_executor_without_executor(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.run_until_complete(loop.shutdown_default_executor()) is None
    with pytest.raises(RuntimeError) as info:
        loop.run_in_executor(None, print)
    assert str(info.value) == "Executor shutdown has been called"


def test_shutdown_default_executor_joins_threads(loop: asyncio.AbstractEventLoop) -> None:
    idents: list[int] = []

    def job() -> threading.Thread:
        idents.append(threading.get_ident())
        return threading.current_thread()

    thread = loop.run_until_complete(loop.run_in_executor(None, job))
    assert thread.is_alive()
    assert loop.run_until_complete(loop.shutdown_default_executor()) is None
    assert not thread.is_alive()
    with pytest.raises(RuntimeError) as info:
        loop.run_in_executor(None, job)
    assert str(info.value) == "Executor shutdown has been called"


def test_shutdown_default_executor_waits_for_running_job(loop: asyncio.AbstractEventLoop) -> None:
    started = threading.Event()
    release = threading.Event()
    done: list[str] = []

    def job() -> None:
        started.set()
        release.wait(30)
        done.append("job")

    async def main() -> None:
        fut = loop.run_in_executor(None, job)
        await loop.run_in_executor(None, started.wait, 30)
        shutdown = loop.create_task(loop.shutdown_default_executor())
        await asyncio.sleep(0)
        assert not shutdown.done()
        release.set()
        await shutdown
        assert done == ["job"]
        await fut

    loop.run_until_complete(main())


@pytest.mark.skipif(sys.version_info < (3, 12), reason="timeout= added in Python 3.12")
def test_shutdown_default_executor_timeout_argument_fast_path(
    loop: asyncio.AbstractEventLoop,
) -> None:
    loop.run_until_complete(loop.run_in_executor(None, int))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loop.run_until_complete(loop.shutdown_default_executor(timeout=30)) is None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="timeout= added in Python 3.12")
def test_shutdown_default_executor_timeout_expires(
    loop: asyncio.AbstractEventLoop, fake_clock: FakeClock
) -> None:
    # A job that outlives the timeout. Python 3.12.3+ and 3.13 (gh-111358,
    # listed in the 3.12.3 changelog) stop waiting after `timeout` seconds and
    # warn; 3.12.0-3.12.2 awaited the executor's full shutdown before applying
    # the timeout to a thread join, so they wait for the job and never warn.
    # The job is released by a loop timer that fires long after the timeout.
    # Both are loop timers: the fake clock moves 10 ms per loop iteration.
    release = threading.Event()
    started = threading.Event()

    def job() -> None:
        started.set()
        release.wait(30)

    async def main() -> tuple[list[warnings.WarningMessage], bool]:
        fut = loop.run_in_executor(None, job)
        await loop.run_in_executor(None, started.wait, 30)
        loop.call_later(1.0, release.set)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            await fake_clock.advance_until(loop.shutdown_default_executor(timeout=0.05), 0.01)
        released_before_return = release.is_set()
        release.set()
        await fut
        return record, released_before_return

    record, released_before_return = loop.run_until_complete(main())
    if sys.version_info >= (3, 12, 3):
        assert released_before_return is False
        assert [(w.category, str(w.message)) for w in record] == [
            (
                RuntimeWarning,
                "The executor did not finishing joining its threads within 0.05 seconds.",
            )
        ]
    else:
        assert released_before_return is True
        assert record == []


def test_close_shuts_down_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(executor)
    assert loop.run_until_complete(loop.run_in_executor(None, int, "5")) == 5
    loop.close()
    with pytest.raises(RuntimeError) as info:
        executor.submit(int)
    assert str(info.value) == "cannot schedule new futures after shutdown"
    executor.shutdown(wait=True)


def test_close_does_not_wait_for_executor_jobs(loop: asyncio.AbstractEventLoop) -> None:
    started = threading.Event()
    release = threading.Event()

    def job() -> None:
        started.set()
        release.wait(30)

    loop.run_in_executor(None, job)
    assert started.wait(30)
    try:
        loop.close()  # shuts the default executor down with wait=False
        assert release.is_set() is False
        assert loop.is_closed()
    finally:
        release.set()


def test_close_logs_in_debug_mode(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(True)
    caplog.set_level(logging.DEBUG, logger="asyncio")
    loop.close()
    records = [r for r in caplog.records if r.name == "asyncio"]
    # asyncio logs ('Close %r', loop): formatted lazily, so it reads closed=True.
    assert [(r.levelno, r.msg, r.args) for r in records] == [(logging.DEBUG, "Close %r", (loop,))]
    assert records[0].getMessage() == (
        f"Close <{type(loop).__name__} running=False closed=True debug=True>"
    )
    caplog.clear()
    loop.close()  # already closed: nothing logged
    assert [r for r in caplog.records if r.name == "asyncio"] == []


def test_set_debug_while_running_toggles_origin_tracking(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(False)
    outside = sys.get_coroutine_origin_tracking_depth()

    async def main() -> list[int]:
        depths = [sys.get_coroutine_origin_tracking_depth()]
        loop.set_debug(True)  # applied through call_soon_threadsafe
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        depths.append(sys.get_coroutine_origin_tracking_depth())
        loop.set_debug(False)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        depths.append(sys.get_coroutine_origin_tracking_depth())
        return depths

    assert loop.run_until_complete(main()) == [outside, 10, outside]
    assert sys.get_coroutine_origin_tracking_depth() == outside


def test_run_until_complete_uses_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    created: list[Any] = []

    def factory(lp: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=lp, **kwargs)
        created.append(task)
        return task

    loop.set_task_factory(factory)
    assert loop.run_until_complete(_value("x")) == "x"
    assert len(created) == 1
    assert created[0].result() == "x"


def test_asyncgen_dropped_after_loop_closed(loop_factory: LoopFactory) -> None:
    # The finalizer hook of a closed loop does nothing (no error, no task).
    lp = loop_factory()
    finalized: list[str] = []

    async def agen():  # type: ignore[no-untyped-def]
        try:
            yield 1
            yield 2
        finally:
            finalized.append("finally")

    gens = [agen()]

    async def main() -> None:
        await gens[0].__anext__()

    lp.run_until_complete(main())
    lp.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gens.clear()
        gc.collect()
    assert finalized == []


# --------------------------------------------------------------------------
# repr, __del__
# --------------------------------------------------------------------------


def test_repr(loop: asyncio.AbstractEventLoop) -> None:
    name = type(loop).__name__
    loop.set_debug(False)
    assert repr(loop) == f"<{name} running=False closed=False debug=False>"
    inside: list[str] = []
    loop.call_soon(lambda: inside.append(repr(loop)))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert inside == [f"<{name} running=True closed=False debug=False>"]
    loop.set_debug(True)
    assert repr(loop) == f"<{name} running=False closed=False debug=True>"
    loop.close()
    assert repr(loop) == f"<{name} running=False closed=True debug=True>"


def test_del_unclosed_loop_warns_and_closes(loop_factory: LoopFactory) -> None:
    before = _open_fds()
    lp = loop_factory()
    lp.set_debug(False)
    lp.run_until_complete(_value(None))
    expected = f"unclosed event loop <{type(lp).__name__} running=False closed=False debug=False>"
    loop_type = type(lp)
    with pytest.warns(ResourceWarning) as record:
        del lp
        gc.collect()
    messages = [
        (str(w.message), type(w.source)) for w in record if issubclass(w.category, ResourceWarning)
    ]
    assert messages == [(expected, loop_type)]
    # __del__ closed the loop: its file descriptors are released.
    assert _open_fds() - before == set()


def test_del_closed_loop_is_silent(loop_factory: LoopFactory) -> None:
    lp = loop_factory()
    ref = weakref.ref(lp)
    lp.close()
    gc.collect()  # earlier tests' garbage is not this test's business
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        del lp
        gc.collect()
    assert ref() is None, "the loop was not collected: nothing was checked"
    assert [(w.category, str(w.message)) for w in record] == []


# --------------------------------------------------------------------------
# asyncio.Runner and asyncio.run
# --------------------------------------------------------------------------


def test_runner_with_loop_factory(loop_factory: LoopFactory) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def main(x: int) -> int:
        seen.append(asyncio.get_running_loop())
        return x * 2

    expected_type = _factory_type(loop_factory)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        lp = runner.get_loop()
        assert type(lp) is expected_type
        assert runner.run(main(1)) == 2
        assert runner.run(main(2)) == 4
        assert seen == [lp, lp]
        assert lp.is_closed() is False
    assert lp.is_closed() is True


def test_runner_debug_flag(loop_factory: LoopFactory) -> None:
    async def main() -> bool:
        return asyncio.get_running_loop().get_debug()

    with asyncio.Runner(debug=True, loop_factory=loop_factory) as runner:
        assert runner.run(main()) is True
    with asyncio.Runner(debug=False, loop_factory=loop_factory) as runner:
        assert runner.run(main()) is False


def test_runner_close_runs_shutdowns(loop_factory: LoopFactory) -> None:
    events: list[str] = []

    async def agen():  # type: ignore[no-untyped-def]
        try:
            yield 1
        finally:
            events.append("agen closed")

    gen = agen()

    async def main() -> None:
        await gen.__anext__()
        await asyncio.get_running_loop().run_in_executor(None, events.append, "executor job")

    async def pending() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("task cancelled")
            raise

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
        runner.get_loop().create_task(pending())
        runner.run(asyncio.sleep(0))
    assert events == ["executor job", "task cancelled", "agen closed"]


def test_runner_sigint_cancels_main_task(loop_factory: LoopFactory) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Runner only installs its SIGINT handler in the main thread")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("Runner only installs its SIGINT handler over the default one")

    async def main() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.Event().wait()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run(main())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.skipif(sys.version_info < (3, 12), reason="loop_factory= added in Python 3.12")
def test_asyncio_run_with_loop_factory(loop_factory: LoopFactory) -> None:
    seen: list[asyncio.AbstractEventLoop] = []
    expected_type = _factory_type(loop_factory)

    async def main() -> str:
        lp = asyncio.get_running_loop()
        seen.append(lp)
        return "result"

    assert asyncio.run(main(), loop_factory=loop_factory) == "result"  # type: ignore[call-arg]
    assert type(seen[0]) is expected_type
    assert seen[0].is_closed() is True


@pytest.mark.skipif(sys.version_info < (3, 12), reason="loop_factory= added in Python 3.12")
def test_asyncio_run_exception_and_debug(loop_factory: LoopFactory) -> None:
    async def main() -> None:
        assert asyncio.get_running_loop().get_debug() is True
        raise LookupError("from main")

    with pytest.raises(LookupError, match="from main"):
        asyncio.run(main(), debug=True, loop_factory=loop_factory)  # type: ignore[call-arg]


def test_asyncio_run_refuses_inside_running_loop(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> str:
        inner = _value(1)
        try:
            asyncio.run(inner)
        except RuntimeError as exc:
            return str(exc)
        finally:
            inner.close()
        return "no error"

    assert loop.run_until_complete(main()) == (
        "asyncio.run() cannot be called from a running event loop"
    )
