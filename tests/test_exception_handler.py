"""Oracle tests of the loop's exception handler: set/get, the default
handler's log record, errors inside handlers, and the context a custom
handler runs in.

Log records are compared with those stock asyncio writes for the same
context, and with the concrete text asyncio documents.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

from .conftest import ErrorLog

var: contextvars.ContextVar[str] = contextvars.ContextVar("eh_var", default="default")


def _raised(exc: BaseException) -> BaseException:
    """Return exc with a traceback, as the loop usually hands it over."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def _asyncio_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "asyncio"]


def _log_of(
    loop: asyncio.AbstractEventLoop,
    caplog: pytest.LogCaptureFixture,
    action: Callable[[asyncio.AbstractEventLoop], None],
) -> list[logging.LogRecord]:
    caplog.clear()
    action(loop)
    records = _asyncio_records(caplog)
    caplog.clear()
    return records


def _same_as_stock(
    loop: asyncio.AbstractEventLoop,
    caplog: pytest.LogCaptureFixture,
    action: Callable[[asyncio.AbstractEventLoop], None],
) -> list[logging.LogRecord]:
    """Run action on loop and on a stock asyncio loop; the asyncio log records
    must agree in logger, level, text and exception. Returns loop's records."""
    stock = asyncio.new_event_loop()
    try:
        stock.set_debug(loop.get_debug())
        expected = _log_of(stock, caplog, action)
    finally:
        stock.close()
    got = _log_of(loop, caplog, action)

    def summary(records: list[logging.LogRecord]) -> list[tuple[Any, ...]]:
        return [
            (
                r.name,
                r.levelno,
                r.getMessage(),
                r.exc_info[0] if r.exc_info else None,
                repr(r.exc_info[1]) if r.exc_info else None,
            )
            for r in records
        ]

    assert summary(got) == summary(expected)
    return got


# --------------------------------------------------------------------------
# set / get
# --------------------------------------------------------------------------


def test_get_set_exception_handler(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None

    def handler(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        pass

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


@pytest.mark.parametrize("bad", [1, "handler", object()])
def test_set_exception_handler_not_callable(loop: asyncio.AbstractEventLoop, bad: Any) -> None:
    before = loop.get_exception_handler()
    with pytest.raises(TypeError) as info:
        loop.set_exception_handler(bad)
    assert str(info.value) == f"A callable object or None is expected, got {bad!r}"
    assert loop.get_exception_handler() is before


def test_custom_handler_receives_loop_and_same_context(loop: asyncio.AbstractEventLoop) -> None:
    received: list[tuple[Any, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: received.append((lp, ctx)))
    ctx = {"message": "hello", "custom": 1}
    assert loop.call_exception_handler(ctx) is None
    assert len(received) == 1
    assert received[0][0] is loop
    assert received[0][1] is ctx
    assert ctx == {"message": "hello", "custom": 1}


def test_handler_called_for_callback_error(
    loop: asyncio.AbstractEventLoop, errors: ErrorLog
) -> None:
    def fail() -> None:
        raise KeyError("k")

    loop.call_soon(fail)
    loop.call_soon(loop.stop)
    loop.run_forever()
    [ctx] = errors.take()
    assert ctx["message"].startswith("Exception in callback ")
    assert isinstance(ctx["exception"], KeyError)


def test_task_exception_never_retrieved(loop: asyncio.AbstractEventLoop, errors: ErrorLog) -> None:
    # asyncio.Task reports through loop.call_exception_handler when it is
    # destroyed with an unretrieved exception.
    loop.set_debug(False)
    exc = ValueError("never retrieved")

    async def fail() -> None:
        raise exc

    task = loop.create_task(fail())
    loop.call_soon(loop.stop)
    loop.run_forever()  # the task's only step runs in this iteration
    assert task.done()
    del task
    gc.collect()
    [ctx] = errors.take()
    assert set(ctx) == {"message", "exception", "future"}
    assert ctx["message"] == "Task exception was never retrieved"
    assert ctx["exception"] is exc


@pytest.mark.parametrize("debug", [False, True], ids=["", "debug"])
@pytest.mark.parametrize("woken_by", ["call_soon", "io"])
def test_failed_task_reported_without_garbage_collection(
    loop: asyncio.AbstractEventLoop, errors: ErrorLog, debug: bool, woken_by: str
) -> None:
    # A dropped task that failed is reported as soon as its last step's
    # handle is gone, before the next callback runs: the loop's frames that
    # the traceback keeps alive (f_back) must not hold that handle.
    loop.set_debug(debug)
    sock_a, sock_b = socket.socketpair()

    async def fail() -> None:
        if woken_by == "io":
            reader, writer = await asyncio.open_connection(sock=sock_a)
            try:
                await reader.readexactly(1)
            finally:
                writer.close()
        raise ValueError("never retrieved")

    async def main() -> None:
        task = asyncio.ensure_future(fail())
        del task
        await asyncio.sleep(0)
        if woken_by == "io":
            sock_b.send(b"x")
            for _ in range(100):  # the step that fails runs from the poll
                if errors:
                    break
                await asyncio.sleep(0)
            assert errors
        else:
            await asyncio.sleep(0)
            assert errors  # the failed step ran in the iteration before

    gc.disable()
    try:
        with sock_a, sock_b:
            loop.run_until_complete(main())
    finally:
        gc.enable()
    [ctx] = [c for c in errors.take() if c["message"] == "Task exception was never retrieved"]
    assert str(ctx["exception"]) == "never retrieved"


# --------------------------------------------------------------------------
# the default handler's log record
# --------------------------------------------------------------------------


def test_default_handler_log_format(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(False)
    loop.set_exception_handler(None)
    exc = _raised(RuntimeError("bad thing"))
    ctx = {"message": "Something bad", "exception": exc, "zeta": 1, "alpha": "a", "mid": [1, 2]}
    records = _same_as_stock(loop, caplog, lambda lp: lp.call_exception_handler(dict(ctx)))
    [record] = records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "Something bad\nalpha: 'a'\nmid: [1, 2]\nzeta: 1"
    assert record.exc_info is not None and record.exc_info is not False
    assert record.exc_info[0] is RuntimeError
    assert record.exc_info[1] is exc
    assert record.exc_info[2] is exc.__traceback__


def test_default_handler_called_directly(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(False)
    exc = _raised(OSError(5, "io"))
    [record] = _same_as_stock(
        loop,
        caplog,
        lambda lp: lp.default_exception_handler({"message": "direct", "exception": exc}),
    )
    assert record.getMessage() == "direct"
    assert record.exc_info[1] is exc  # type: ignore[index]


@pytest.mark.parametrize("message", [None, ""])
def test_default_handler_default_message(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture, message: str | None
) -> None:
    loop.set_debug(False)
    loop.set_exception_handler(None)
    ctx: dict[str, Any] = {"key": "value"}
    if message is not None:
        ctx["message"] = message
    [record] = _same_as_stock(loop, caplog, lambda lp: lp.call_exception_handler(dict(ctx)))
    assert record.getMessage() == "Unhandled exception in event loop\nkey: 'value'"
    assert not record.exc_info


def test_default_handler_without_exception(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(False)
    loop.set_exception_handler(None)
    [record] = _same_as_stock(
        loop, caplog, lambda lp: lp.call_exception_handler({"message": "only a message"})
    )
    assert record.getMessage() == "only a message"
    assert record.levelno == logging.ERROR
    assert not record.exc_info


def test_default_handler_source_traceback(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(False)
    loop.set_exception_handler(None)
    stack = traceback.extract_stack()
    ctx = {"message": "with tb", "source_traceback": stack, "b": 2}
    [record] = _same_as_stock(loop, caplog, lambda lp: lp.call_exception_handler(dict(ctx)))
    tb = "".join(traceback.format_list(stack)).rstrip()
    assert record.getMessage() == (
        f"with tb\nb: 2\nsource_traceback: Object created at (most recent call last):\n{tb}"
    )


def test_default_handler_adds_handle_traceback_in_debug(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    # In debug mode, reporting from inside a callback names where the running
    # handle was created (and adds that key to the caller's context dict).
    loop.set_debug(True)
    loop.set_exception_handler(None)
    contexts: list[dict[str, Any]] = []

    def report() -> None:
        ctx = {"message": "from callback"}
        contexts.append(ctx)
        loop.call_exception_handler(ctx)

    caplog.set_level(logging.ERROR, logger="asyncio")
    line = sys._getframe().f_lineno + 1
    loop.call_soon(report)
    loop.call_soon(loop.stop)
    loop.run_forever()
    [ctx] = contexts
    assert set(ctx) == {"message", "handle_traceback"}
    last = ctx["handle_traceback"][-1]
    assert (last.filename, last.lineno) == (__file__, line)
    [record] = _asyncio_records(caplog)
    tb = "".join(traceback.format_list(ctx["handle_traceback"])).rstrip()
    assert record.getMessage() == (
        f"from callback\nhandle_traceback: Handle created at (most recent call last):\n{tb}"
    )


def test_default_handler_logs_callback_error(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(False)
    loop.set_exception_handler(None)
    caplog.set_level(logging.ERROR, logger="asyncio")

    def fail() -> None:
        raise ArithmeticError("in callback")

    h = loop.call_soon(fail)
    loop.call_soon(loop.stop)
    loop.run_forever()
    [record] = _asyncio_records(caplog)
    code = fail.__code__
    assert record.getMessage() == (
        f"Exception in callback {fail.__qualname__}() at {code.co_filename}:"
        f"{code.co_firstlineno}\nhandle: {h!r}"
    )
    assert record.exc_info[0] is ArithmeticError  # type: ignore[index]


# --------------------------------------------------------------------------
# errors inside handlers
# --------------------------------------------------------------------------


def test_handler_raising_is_logged(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(False)
    bug = ValueError("handler bug")

    def handler(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        raise bug

    def action(lp: asyncio.AbstractEventLoop) -> None:
        lp.set_exception_handler(handler)
        lp.call_exception_handler({"message": "original", "n": 1})

    [record] = _same_as_stock(loop, caplog, action)
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "Unhandled error in exception handler\ncontext: {'message': 'original', 'n': 1}"
    )
    assert record.exc_info[1] is bug  # type: ignore[index]


def test_handler_raising_during_callback_error(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(False)
    caplog.set_level(logging.ERROR, logger="asyncio")

    def handler(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        raise ValueError("handler bug")

    def fail() -> None:
        raise KeyError("original")

    loop.set_exception_handler(handler)
    ran: list[str] = []
    loop.call_soon(fail)
    loop.call_soon(ran.append, "after")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == ["after"]
    [record] = _asyncio_records(caplog)
    assert record.getMessage().startswith(
        "Unhandled error in exception handler\ncontext: {'message': 'Exception in callback "
    )
    assert isinstance(record.exc_info[1], ValueError)  # type: ignore[index]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_handler_base_exception_propagates(
    loop: asyncio.AbstractEventLoop, exc_type: type[BaseException]
) -> None:
    def handler(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        raise exc_type

    loop.set_exception_handler(handler)
    with pytest.raises(exc_type):
        loop.call_exception_handler({"message": "m"})


def test_overridden_default_handler_failing(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_exception_handler(None)

    def action(lp: asyncio.AbstractEventLoop) -> None:
        with mock.patch.object(lp, "default_exception_handler", side_effect=LookupError("dh")):
            lp.call_exception_handler({"message": "m"})

    [record] = _same_as_stock(loop, caplog, action)
    assert record.getMessage() == "Exception in default exception handler"
    assert isinstance(record.exc_info[1], LookupError)  # type: ignore[index]


def test_custom_and_default_handler_failing(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        raise ValueError("custom")

    def action(lp: asyncio.AbstractEventLoop) -> None:
        lp.set_exception_handler(handler)
        with mock.patch.object(lp, "default_exception_handler", side_effect=LookupError("dh")):
            lp.call_exception_handler({"message": "m"})

    [record] = _same_as_stock(loop, caplog, action)
    assert record.getMessage() == (
        "Exception in default exception handler while handling an unexpected error "
        "in custom exception handler"
    )
    assert isinstance(record.exc_info[1], LookupError)  # type: ignore[index]


def test_custom_handler_can_defer_to_default(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(False)

    def handler(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        lp.default_exception_handler({**ctx, "extra": True})

    def action(lp: asyncio.AbstractEventLoop) -> None:
        lp.set_exception_handler(handler)
        lp.call_exception_handler({"message": "deferred"})

    [record] = _same_as_stock(loop, caplog, action)
    assert record.getMessage() == "deferred\nextra: True"


# --------------------------------------------------------------------------
# the context a custom handler runs in
# --------------------------------------------------------------------------


def test_handler_context_for_callback_error(loop: asyncio.AbstractEventLoop) -> None:
    # Python 3.12 made call_exception_handler run a custom handler inside the
    # context of the failing handle/task; 3.11 runs it in the loop's context.
    seen: list[str] = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(var.get()))
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")

    def fail() -> None:
        raise RuntimeError("x")

    loop.call_soon(fail, context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()
    expected = "inner" if sys.version_info >= (3, 12) else "default"
    assert seen == [expected]


def test_handler_context_for_task_error(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[tuple[str, str]] = []
    loop.set_exception_handler(lambda lp, c: seen.append((c["message"], var.get())))
    ctx = contextvars.copy_context()
    ctx.run(var.set, "task ctx")

    async def fail() -> None:
        raise RuntimeError("task")

    task = loop.create_task(fail(), context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()  # the task's only step runs in this iteration
    assert task.done()
    del task
    gc.collect()
    expected = "task ctx" if sys.version_info >= (3, 12) else "default"
    assert seen == [("Task exception was never retrieved", expected)]
