"""redis-py's asyncio client (``redis.asyncio``) against a real Redis server,
on stock asyncio (the oracle) and on tideloop with every backend.

The server (tests/support/servers.py) listens on 127.0.0.1 and on a Unix
socket. The tests cover commands (values of several MB included), pipelines
and transactions, pub/sub, blocking pops (served, timed out by the server,
and cancelled by a client-side timeout) and 50 clients at once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .support.servers import Redis, import_or_unavailable, redis_server
from .support.streams import Loop, run

import_or_unavailable("redis")
from redis import asyncio as aioredis  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[Redis]:
    with redis_server() as server:
        yield server


@pytest.fixture
def key() -> str:
    """A key prefix of this test's own (the server is shared by the session)."""
    return f"tl:{uuid.uuid4().hex}:"


def _client(srv: Redis, *, unix: bool = False, **kwargs: Any) -> Any:
    if unix:
        return aioredis.Redis(unix_socket_path=srv.unix_socket, **kwargs)
    return aioredis.Redis(host=srv.host, port=srv.port, **kwargs)


async def _wait_blocked_clients(r: Any, count: int) -> None:
    """Wait until the server counts ``count`` clients blocked in a pop."""
    while (await r.info("clients"))["blocked_clients"] != count:
        await asyncio.sleep(0.005)  # the interval of the check, not a wait for an event


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
def test_commands(loop: Loop, redis_srv: Redis, key: str, unix: bool) -> None:
    big = os.urandom(4 * 1024 * 1024 + 3)

    async def main() -> None:
        r = _client(redis_srv, unix=unix)
        try:
            assert await r.ping() is True
            assert await r.set(key + "s", "tide") is True
            assert await r.get(key + "s") == b"tide"
            assert await r.incrby(key + "n", 41) == 41
            assert await r.incr(key + "n") == 42
            await r.hset(key + "h", mapping={"a": "1", "b": "2"})
            assert await r.hgetall(key + "h") == {b"a": b"1", b"b": b"2"}
            assert await r.rpush(key + "l", *range(5)) == 5
            assert await r.lrange(key + "l", 0, -1) == [b"0", b"1", b"2", b"3", b"4"]
            assert await r.expire(key + "s", 100) is True
            assert 0 < await r.ttl(key + "s") <= 100
            assert await r.get(key + "missing") is None
            # A value of several MB each way.
            assert await r.set(key + "big", big) is True
            assert await r.get(key + "big") == big
            assert await r.strlen(key + "big") == len(big)
            with pytest.raises(aioredis.ResponseError, match="WRONGTYPE"):
                await r.lpush(key + "h", "x")
            assert await r.delete(key + "s", key + "n", key + "h", key + "l", key + "big") == 5
        finally:
            await r.aclose()

    run(loop, main())


def test_pipelines_and_transactions(loop: Loop, redis_srv: Redis, key: str) -> None:
    async def main() -> None:
        r = _client(redis_srv, decode_responses=True)
        try:
            async with r.pipeline(transaction=False) as pipe:
                for i in range(500):
                    pipe.set(f"{key}{i}", i)
                for i in range(500):
                    pipe.get(f"{key}{i}")
                results = await pipe.execute()
            assert results[:500] == [True] * 500
            assert results[500:] == [str(i) for i in range(500)]
            async with r.pipeline(transaction=True) as pipe:
                pipe.incr(key + "counter").incr(key + "counter").get(key + "counter")
                assert await pipe.execute() == [1, 2, "2"]
            # WATCH: a transaction whose watched key changed is not applied.
            other = _client(redis_srv, unix=True)
            try:
                async with r.pipeline(transaction=True) as pipe:
                    await pipe.watch(key + "counter")
                    await other.set(key + "counter", 100)
                    pipe.multi()
                    pipe.set(key + "counter", 0)
                    with pytest.raises(aioredis.WatchError):
                        await pipe.execute()
                assert await r.get(key + "counter") == "100"
            finally:
                await other.aclose()
            assert await r.delete(*[f"{key}{i}" for i in range(500)], key + "counter") == 501
        finally:
            await r.aclose()

    run(loop, main())


def test_pubsub(loop: Loop, redis_srv: Redis, key: str) -> None:
    async def main() -> None:
        publisher = _client(redis_srv, decode_responses=True)
        subscriber = _client(redis_srv, unix=True, decode_responses=True)
        pubsub = subscriber.pubsub()
        try:
            await pubsub.subscribe(key + "news")
            await pubsub.psubscribe(key + "p.*")
            confirmations = [await pubsub.get_message(timeout=10) for _ in range(2)]
            assert [(m["type"], m["channel"]) for m in confirmations] == [
                ("subscribe", key + "news"),
                ("psubscribe", key + "p.*"),
            ]
            for i in range(50):
                assert await publisher.publish(key + "news", f"item {i}") == 1
            assert await publisher.publish(key + "p.x", "by pattern") == 1
            assert await publisher.publish(key + "elsewhere", "unheard") == 0
            messages = []
            async for message in pubsub.listen():
                messages.append(message)
                if len(messages) == 51:
                    break
            assert [m["data"] for m in messages] == [f"item {i}" for i in range(50)] + [
                "by pattern"
            ]
            assert messages[-1]["type"] == "pmessage"
            assert messages[-1]["pattern"] == key + "p.*"
            await pubsub.unsubscribe(key + "news")
            await pubsub.punsubscribe()
            kinds = {(await pubsub.get_message(timeout=10))["type"] for _ in range(2)}
            assert kinds == {"unsubscribe", "punsubscribe"}
            assert await publisher.publish(key + "news", "after") == 0
        finally:
            await pubsub.aclose()
            await subscriber.aclose()
            await publisher.aclose()

    run(loop, main())


def test_blocking_pops(loop: Loop, redis_srv: Redis, key: str) -> None:
    async def main() -> None:
        r = _client(redis_srv)
        pusher = _client(redis_srv, unix=True)
        try:
            # Timed out by the server.
            assert await r.blpop([key + "empty"], timeout=0.05) is None
            # Cancelled by a client-side timeout while blocked: the client closes
            # that connection, and the server forgets the blocked pop.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.blpop([key + "never"], timeout=0), 0.2)
            await _wait_blocked_clients(pusher, 0)
            assert await r.ping() is True
            # Served: a pop blocked until another client pushes.
            waiting = asyncio.ensure_future(r.blpop([key + "a", key + "b"], timeout=0))
            await _wait_blocked_clients(pusher, 1)
            assert await pusher.rpush(key + "b", "first", "second") == 2
            assert await waiting == (key.encode() + b"b", b"first")
            assert await r.lrange(key + "b", 0, -1) == [b"second"]
            assert await r.delete(key + "b") == 1
        finally:
            await r.aclose()
            await pusher.aclose()

    run(loop, main())


def test_50_concurrent_clients(loop: Loop, redis_srv: Redis, key: str) -> None:
    async def main() -> None:
        clients = [_client(redis_srv, unix=i % 2 == 1) for i in range(50)]
        try:

            async def one(i: int, r: Any) -> list[Any]:
                for _ in range(5):
                    await r.incr(key + "hits")
                async with r.pipeline(transaction=True) as pipe:
                    pipe.rpush(key + "seen", i).set(f"{key}own{i}", i * i).get(f"{key}own{i}")
                    return list(await pipe.execute())

            results = await asyncio.gather(*(one(i, r) for i, r in enumerate(clients)))
            assert [res[2] for res in results] == [str(i * i).encode() for i in range(50)]
            r = clients[0]
            assert await r.get(key + "hits") == b"250"
            assert sorted(int(x) for x in await r.lrange(key + "seen", 0, -1)) == list(range(50))
            assert len(await r.client_list()) >= 50  # each client holds its connection
            await r.delete(key + "hits", key + "seen", *[f"{key}own{i}" for i in range(50)])
        finally:
            await asyncio.gather(*(r.aclose() for r in clients))

    run(loop, main())


def test_server_closes_an_idle_connection(loop: Loop, redis_srv: Redis, key: str) -> None:
    async def main() -> None:
        r = _client(redis_srv, single_connection_client=True)
        admin = _client(redis_srv, unix=True)
        try:
            first_id = await r.client_id()
            assert await admin.client_kill_filter(_id=first_id) == 1
            # The next command finds the connection closed by the server, and
            # redis-py's default retry reconnects and runs it.
            assert await r.set(key, "after reconnect") is True
            assert await r.client_id() != first_id
            assert await admin.get(key) == b"after reconnect"
            await admin.delete(key)
        finally:
            await r.aclose()
            await admin.aclose()

    run(loop, main())
