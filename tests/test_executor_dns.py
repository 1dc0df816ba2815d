"""Oracle tests of run_in_executor, the default executor, getaddrinfo and
getnameinfo.

Name resolution is compared with socket.getaddrinfo / socket.getnameinfo
called directly: results (including the enum types of family and type) and
errors (type and args) must be identical. Only numeric hosts and 'localhost'
(from /etc/hosts) are used, so no test touches DNS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import socket
import threading
from typing import Any

import pytest

# --------------------------------------------------------------------------
# run_in_executor
# --------------------------------------------------------------------------


def test_run_in_executor_result(loop: asyncio.AbstractEventLoop) -> None:
    def job(a: int, b: int) -> tuple[int, bool]:
        return a + b, threading.current_thread() is threading.main_thread()

    fut = loop.run_in_executor(None, job, 2, 3)
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    assert loop.run_until_complete(fut) == (5, False)


def test_default_executor_thread_names(loop: asyncio.AbstractEventLoop) -> None:
    name = loop.run_until_complete(
        loop.run_in_executor(None, lambda: threading.current_thread().name)
    )
    # asyncio's default ThreadPoolExecutor uses thread_name_prefix='asyncio'.
    assert name.startswith("asyncio_"), name
    loop.run_until_complete(loop.shutdown_default_executor())


def test_default_executor_created_lazily(loop: asyncio.AbstractEventLoop) -> None:
    before = set(threading.enumerate())

    async def nothing() -> None:
        await asyncio.sleep(0)

    loop.run_until_complete(nothing())
    assert set(threading.enumerate()) - before == set()
    loop.run_until_complete(loop.run_in_executor(None, int))
    new = set(threading.enumerate()) - before
    assert new and all(t.name.startswith("asyncio_") for t in new)
    loop.run_until_complete(loop.shutdown_default_executor())
    assert not any(t.is_alive() for t in new)


def test_run_in_executor_exception(loop: asyncio.AbstractEventLoop) -> None:
    exc = LookupError("from thread")

    def job() -> None:
        raise exc

    with pytest.raises(LookupError) as info:
        loop.run_until_complete(loop.run_in_executor(None, job))
    assert info.value is exc


def test_run_in_custom_executor(loop: asyncio.AbstractEventLoop) -> None:
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="custom") as ex:
        name = loop.run_until_complete(
            loop.run_in_executor(ex, lambda: threading.current_thread().name)
        )
        assert name.startswith("custom_")
    # The default executor was never created.


def test_set_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    ex = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine")
    loop.set_default_executor(ex)
    name = loop.run_until_complete(
        loop.run_in_executor(None, lambda: threading.current_thread().name)
    )
    assert name.startswith("mine_")
    loop.run_until_complete(loop.shutdown_default_executor())
    # shutdown_default_executor shut down the executor we gave it.
    with pytest.raises(RuntimeError, match=r"^cannot schedule new futures after shutdown$"):
        ex.submit(int)


class _NotAThreadPool(concurrent.futures.Executor):
    pass


@pytest.mark.parametrize(
    "bad",
    [_NotAThreadPool(), object(), None],
    ids=["Executor-subclass", "object", "None"],
)
def test_set_default_executor_type_error(loop: asyncio.AbstractEventLoop, bad: Any) -> None:
    # Python 3.11-3.13 all raise (the DeprecationWarning-only period ended in 3.11).
    with pytest.raises(TypeError) as info:
        loop.set_default_executor(bad)
    assert str(info.value) == "executor must be ThreadPoolExecutor instance"


def test_run_in_executor_after_shutdown(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(loop.run_in_executor(None, int))
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError) as info:
        loop.run_in_executor(None, int)
    assert str(info.value) == "Executor shutdown has been called"
    # An explicit executor is still accepted.
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        assert loop.run_until_complete(loop.run_in_executor(ex, int, "7")) == 7


def test_run_in_executor_after_shutdown_without_default(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError) as info:
        loop.run_in_executor(None, int)
    assert str(info.value) == "Executor shutdown has been called"


def test_run_in_executor_closed_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        with pytest.raises(RuntimeError) as info:
            loop.run_in_executor(ex, int)
    assert str(info.value) == "Event loop is closed"


def test_run_in_executor_debug_checks(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)

    async def coro_fn() -> None:
        pass

    with pytest.raises(TypeError) as info:
        loop.run_in_executor(None, coro_fn)
    assert str(info.value) == "coroutines cannot be used with run_in_executor()"
    with pytest.raises(TypeError) as info:
        loop.run_in_executor(None, 1)  # type: ignore[arg-type]
    assert str(info.value) == "a callable object was expected by run_in_executor(), got 1"


def test_cancel_run_in_executor_future(loop: asyncio.AbstractEventLoop) -> None:
    started = threading.Event()
    release = threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        started.set()
        release.wait(30)

    with concurrent.futures.ThreadPoolExecutor(1) as ex:

        async def main() -> None:
            first = loop.run_in_executor(ex, blocker)
            await loop.run_in_executor(None, started.wait, 30)
            second = loop.run_in_executor(ex, ran.append, "second")
            second.cancel()
            await asyncio.sleep(0)
            assert second.cancelled()
            release.set()
            await first

        loop.run_until_complete(main())
    # The queued job was cancelled in the executor too.
    assert ran == []


# --------------------------------------------------------------------------
# getaddrinfo
# --------------------------------------------------------------------------


def _outcome_sync(host: Any, port: Any, **kw: Any) -> tuple[Any, ...]:
    try:
        res = socket.getaddrinfo(host, port, **kw)
    except Exception as exc:
        return ("error", type(exc), exc.args)
    return ("ok", res, [tuple(type(x) for x in item[:2]) for item in res])


async def _outcome_loop(
    loop: asyncio.AbstractEventLoop, host: Any, port: Any, **kw: Any
) -> tuple[Any, ...]:
    try:
        res = await loop.getaddrinfo(host, port, **kw)
    except Exception as exc:
        return ("error", type(exc), exc.args)
    return ("ok", res, [tuple(type(x) for x in item[:2]) for item in res])


_HOSTS = [
    "127.0.0.1",
    "::1",
    "0.0.0.0",
    "::",
    "::ffff:127.0.0.1",
    "fe80::1%lo",
    "203.0.113.7",
    b"127.0.0.1",
    None,
]


def _combos(families: list[int]) -> list[dict[str, Any]]:
    ports = [80, "80", None, b"80", 0, "http"]
    types = [0, socket.SOCK_STREAM, socket.SOCK_DGRAM]
    protos = [0, socket.IPPROTO_TCP, socket.IPPROTO_UDP]
    flag_sets = [
        0,
        socket.AI_NUMERICHOST,
        socket.AI_PASSIVE,
        socket.AI_CANONNAME,
        socket.AI_NUMERICSERV,
        socket.AI_V4MAPPED | socket.AI_ALL,
    ]
    return [
        dict(port=port, family=family, type=type_, proto=proto, flags=flags)
        for port, family, type_, proto, flags in itertools.product(
            ports, families, types, protos, flag_sets
        )
    ]


def _check_against_socket(
    loop: asyncio.AbstractEventLoop, host: Any, combos: list[dict[str, Any]]
) -> None:
    async def main() -> list[tuple[Any, ...]]:
        results = []
        for i in range(0, len(combos), 64):
            batch = combos[i : i + 64]
            results += await asyncio.gather(
                *[
                    _outcome_loop(
                        loop,
                        host,
                        c["port"],
                        family=c["family"],
                        type=c["type"],
                        proto=c["proto"],
                        flags=c["flags"],
                    )
                    for c in batch
                ]
            )
        return results

    got = loop.run_until_complete(main())
    mismatches = []
    for c, g in zip(combos, got, strict=True):
        expected = _outcome_sync(
            host, c["port"], family=c["family"], type=c["type"], proto=c["proto"], flags=c["flags"]
        )
        if g != expected:
            mismatches.append((c, expected, g))
    assert mismatches == [], f"{len(mismatches)} mismatches, first: {mismatches[:3]}"


@pytest.mark.parametrize("host", _HOSTS, ids=[repr(h) for h in _HOSTS])
def test_getaddrinfo_matches_socket(loop: asyncio.AbstractEventLoop, host: Any) -> None:
    _check_against_socket(loop, host, _combos([0, socket.AF_INET, socket.AF_INET6]))


def test_getaddrinfo_localhost_matches_socket(loop: asyncio.AbstractEventLoop) -> None:
    # Only AF_INET: /etc/hosts may lack an IPv6 'localhost' entry, and an
    # AF_INET6 lookup would then go to DNS.
    _check_against_socket(loop, "localhost", _combos([socket.AF_INET]))


@pytest.mark.parametrize(
    ("host", "port", "kw"),
    [
        ("127.0.0.1", "nosuchservice-xyz", {}),
        ("not-numeric", 80, {"flags": socket.AI_NUMERICHOST}),
        (123, 80, {}),
        ("127.0.0.1", 1.5, {}),
        ("::1", 80, {"family": socket.AF_INET, "flags": socket.AI_NUMERICHOST}),
        ("127.0.0.1", 80, {"family": 12345}),
        ("127.0.0.1", -1, {}),
        ("127.0.0.1", 70000, {}),
        ("127.0.0.1", 80, {"type": 12345}),
        (None, None, {}),
        ("", 80, {}),
        ("127.0.0.1\x00", 80, {}),
        ("::1%lo", 80, {"type": socket.SOCK_STREAM}),
        ("1.2.3", 80, {"flags": socket.AI_NUMERICHOST}),
        ("127.0.0.1", 80, {"family": socket.AF_UNIX}),
        ("127.0.0.1", 80, {"type": socket.SOCK_STREAM, "proto": socket.IPPROTO_UDP}),
    ],
)
def test_getaddrinfo_edge_cases_match_socket(
    loop: asyncio.AbstractEventLoop, host: Any, port: Any, kw: dict[str, Any]
) -> None:
    got = loop.run_until_complete(_outcome_loop(loop, host, port, **kw))
    assert got == _outcome_sync(host, port, **kw)


def test_getaddrinfo_error_type(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(socket.gaierror) as info:
        loop.run_until_complete(loop.getaddrinfo("not-numeric", 80, flags=socket.AI_NUMERICHOST))
    assert info.value.errno == socket.EAI_NONAME


def test_getaddrinfo_positional_only_host_port(loop: asyncio.AbstractEventLoop) -> None:
    # family/type/proto/flags are keyword-only in asyncio.
    coro_fn = loop.getaddrinfo
    with pytest.raises(TypeError):
        coro_fn("127.0.0.1", 80, socket.AF_INET)  # type: ignore[misc]


def test_getaddrinfo_after_executor_shutdown(loop: asyncio.AbstractEventLoop) -> None:
    # asyncio resolves through the default executor, even for numeric hosts.
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError) as info:
        loop.run_until_complete(loop.getaddrinfo("127.0.0.1", 80))
    assert str(info.value) == "Executor shutdown has been called"


def test_getaddrinfo_suspends_and_can_be_cancelled(loop: asyncio.AbstractEventLoop) -> None:
    # asyncio always resolves in the executor, even an IP literal, so the
    # calling task suspends and can be cancelled while waiting.
    async def main() -> tuple[bool, bool]:
        task = loop.create_task(loop.getaddrinfo("127.0.0.1", 80))
        await asyncio.sleep(0)  # the task has run its first step
        done_after_first_step = task.done()
        cancelled = task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return done_after_first_step, cancelled

    assert loop.run_until_complete(main()) == (False, True)
    loop.run_until_complete(loop.shutdown_default_executor())


# --------------------------------------------------------------------------
# getnameinfo
# --------------------------------------------------------------------------


def _name_outcome_sync(sockaddr: Any, flags: Any) -> tuple[Any, ...]:
    try:
        return ("ok", socket.getnameinfo(sockaddr, flags))
    except Exception as exc:
        return ("error", type(exc), exc.args)


async def _name_outcome_loop(
    loop: asyncio.AbstractEventLoop, sockaddr: Any, flags: Any
) -> tuple[Any, ...]:
    try:
        return ("ok", await loop.getnameinfo(sockaddr, flags))
    except Exception as exc:
        return ("error", type(exc), exc.args)


_NUMERIC = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV


@pytest.mark.parametrize(
    ("sockaddr", "flags"),
    [
        (("127.0.0.1", 80), _NUMERIC),
        (("127.0.0.1", 80), 0),
        (("::1", 8080, 0, 0), _NUMERIC),
        (("::1", 80), _NUMERIC),
        (("fe80::1", 80, 0, 1), _NUMERIC),
        (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_DGRAM),
        (("127.0.0.1",), 0),
        ("x", 0),
        (("127.0.0.1", 80), "x"),
        (("127.0.0.1", 80, 0, 0), 0),
        (("nothost", 80), 0),
    ],
)
def test_getnameinfo_matches_socket(
    loop: asyncio.AbstractEventLoop, sockaddr: Any, flags: Any
) -> None:
    got = loop.run_until_complete(_name_outcome_loop(loop, sockaddr, flags))
    assert got == _name_outcome_sync(sockaddr, flags)


def test_getnameinfo_default_flags(loop: asyncio.AbstractEventLoop) -> None:
    got = loop.run_until_complete(loop.getnameinfo(("127.0.0.1", 80)))
    assert got == socket.getnameinfo(("127.0.0.1", 80), 0)
