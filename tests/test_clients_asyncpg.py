"""asyncpg against a real PostgreSQL server, on stock asyncio (the oracle) and
on tideloop with every backend.

The server (tests/support/servers.py) listens on 127.0.0.1 and on a Unix
socket, with TLS available. The tests cover what applications do with it:
connecting both ways, queries and types, prepared statements and cursors,
COPY of several MB each way, LISTEN/NOTIFY, cancelling a running query (which
asyncpg does through a second connection), a pool shared by 50 tasks, and TLS
negotiated with ``start_tls``.
"""

from __future__ import annotations

import asyncio
import decimal
import errno
import hashlib
import io
import os
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from .support import certs
from .support.servers import Postgres, import_or_unavailable, postgres_server
from .support.streams import Loop, run

asyncpg = import_or_unavailable("asyncpg")

pytestmark = pytest.mark.timeout(60)

ROWS = 60_000  # the COPY tests move ~6 MB each way


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


async def _connect(pg: Postgres, **kwargs: Any) -> Any:
    options = {"host": pg.host, "port": pg.port, "user": pg.user, "database": pg.database}
    options["ssl"] = False
    return await asyncpg.connect(**{**options, **kwargs})


async def _uses_tls(conn: Any) -> bool:
    return bool(await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))


def test_connect_over_tcp_and_unix_socket(loop: Loop, postgres: Postgres) -> None:
    async def main() -> None:
        tcp = await _connect(postgres)
        unix = await _connect(postgres, host=postgres.socket_dir)
        try:
            assert await tcp.fetchval("SELECT inet_client_addr()::text") == "127.0.0.1/32"
            # Over a Unix socket the server sees no client address.
            assert await unix.fetchval("SELECT inet_client_addr()") is None
            assert not await _uses_tls(tcp)
            assert await tcp.fetchval("SELECT current_user") == "postgres"
            assert tcp.get_server_pid() != unix.get_server_pid()
        finally:
            await tcp.close()
            await unix.close()
        assert tcp.is_closed() and unix.is_closed()

    run(loop, main())


def test_queries_types_and_transactions(loop: Loop, postgres: Postgres) -> None:
    async def main() -> None:
        conn = await _connect(postgres)
        try:
            row = await conn.fetchrow(
                "SELECT 1::int AS i, 'tide'::text AS t, '\\x0001ff'::bytea AS b,"
                " ARRAY[1, 2, 3] AS a, '{\"k\": [1, 2]}'::jsonb AS j, NULL::int AS n,"
                " 12.5::numeric AS d"
            )
            assert dict(row) == {
                "i": 1,
                "t": "tide",
                "b": b"\x00\x01\xff",
                "a": [1, 2, 3],
                "j": '{"k": [1, 2]}',
                "n": None,
                "d": decimal.Decimal("12.5"),
            }
            await conn.execute("CREATE TEMP TABLE t (id int PRIMARY KEY, name text)")
            await conn.executemany(
                "INSERT INTO t VALUES ($1, $2)", [(i, f"n{i}") for i in range(500)]
            )
            assert await conn.fetchval("SELECT count(*) FROM t") == 500
            # A failed transaction rolls back and the connection stays usable.
            with pytest.raises(asyncpg.UniqueViolationError):
                async with conn.transaction():
                    await conn.execute("INSERT INTO t VALUES (1000, 'x')")
                    await conn.execute("INSERT INTO t VALUES (1, 'duplicate')")
            assert await conn.fetchval("SELECT count(*) FROM t") == 500
            # A result larger than the socket buffers.
            rows = await conn.fetch("SELECT g, repeat('x', 100) FROM generate_series(1, 50000) g")
            assert len(rows) == 50000 and rows[-1][0] == 50000
        finally:
            await conn.close()

    run(loop, main())


def test_prepared_statements_and_cursor(loop: Loop, postgres: Postgres) -> None:
    async def main() -> None:
        conn = await _connect(postgres)
        try:
            stmt = await conn.prepare("SELECT $1::int * $2::int AS product")
            assert [a.name for a in stmt.get_attributes()] == ["product"]
            assert [await stmt.fetchval(i, 3) for i in range(5)] == [0, 3, 6, 9, 12]
            big = await conn.prepare("SELECT g FROM generate_series(1, $1::int) g")
            total = 0
            async with conn.transaction():
                async for record in big.cursor(20_000, prefetch=1000):
                    total += record[0]
            assert total == 20_000 * 20_001 // 2
        finally:
            await conn.close()

    run(loop, main())


def test_copy_in_and_out_several_megabytes(loop: Loop, postgres: Postgres) -> None:
    lines = [f"{i}\t{f'row {i} ' * 8}\n".encode() for i in range(ROWS)]
    text = b"".join(lines)
    assert len(text) > 5_000_000

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(text), 64 * 1024):
            yield text[start : start + 64 * 1024]

    async def main() -> None:
        conn = await _connect(postgres)
        try:
            await conn.execute("CREATE TEMP TABLE c (id int, body text)")
            status = await conn.copy_to_table("c", source=chunks())
            assert status == f"COPY {ROWS}"
            out = io.BytesIO()
            status = await conn.copy_from_query("SELECT * FROM c ORDER BY id", output=out)
            assert status == f"COPY {ROWS}"
            assert out.getvalue() == text
            # Binary COPY of records, then back through a coroutine sink.
            await conn.execute("CREATE TEMP TABLE r (id int, payload bytea)")
            blob = bytes(range(256)) * 40
            await conn.copy_records_to_table(
                "r", records=((i, blob) for i in range(600)), columns=["id", "payload"]
            )
            received = bytearray()

            async def sink(data: bytes) -> None:
                received.extend(data)

            await conn.copy_from_table("r", output=sink, format="binary")
            assert len(received) > 600 * len(blob)
            assert await conn.fetchval("SELECT sum(length(payload)) FROM r") == 600 * len(blob)
        finally:
            await conn.close()

    run(loop, main(), timeout=45)


def test_listen_notify(loop: Loop, postgres: Postgres) -> None:
    channel = f"ch_{uuid.uuid4().hex}"

    async def main() -> None:
        listener = await _connect(postgres)
        notifier = await _connect(postgres, host=postgres.socket_dir)
        try:
            got: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()

            def on_notify(_conn: Any, pid: int, chan: str, payload: str) -> None:
                got.put_nowait((pid, chan, payload))

            await listener.add_listener(channel, on_notify)
            for i in range(20):
                await notifier.execute(f"NOTIFY {channel}, 'message {i}'")
            async with notifier.transaction():  # delivered at commit, in order
                await notifier.execute("SELECT pg_notify($1, 'in a transaction')", channel)
                await notifier.execute("SELECT pg_notify($1, 'x' || repeat('y', 7000))", channel)
            received = [await got.get() for _ in range(22)]
            assert {pid for pid, _, _ in received} == {notifier.get_server_pid()}
            assert {chan for _, chan, _ in received} == {channel}
            payloads = [payload for _, _, payload in received]
            assert payloads == [f"message {i}" for i in range(20)] + [
                "in a transaction",
                "x" + "y" * 7000,
            ]
            # Once removed, the listener hears nothing more (the query after the
            # NOTIFY returns after any notification sent before it).
            await listener.remove_listener(channel, on_notify)
            await notifier.execute(f"NOTIFY {channel}, 'unheard'")
            await listener.fetchval("SELECT 1")
            assert got.empty()
        finally:
            await listener.close()
            await notifier.close()

    run(loop, main())


@pytest.mark.parametrize("how", ["asyncpg-timeout", "task-cancel"])
def test_cancel_running_query(loop: Loop, postgres: Postgres, how: str) -> None:
    async def main() -> None:
        conn = await _connect(postgres)
        observer = await _connect(postgres)
        try:
            started = loop.time()
            if how == "asyncpg-timeout":
                with pytest.raises(asyncio.TimeoutError):
                    await conn.fetchval("SELECT pg_sleep(30)", timeout=0.2)
            else:
                task = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(30)"))
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(task, 0.2)
                assert task.cancelled()
            # The connection works again at once: the server cancelled the sleep.
            assert await conn.fetchval("SELECT 42") == 42
            assert loop.time() - started < 15
            still_sleeping = await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE pid = $1 AND query LIKE '%pg_sleep(30)%' AND state = 'active'",
                conn.get_server_pid(),
            )
            assert still_sleeping == 0
        finally:
            await conn.close()
            await observer.close()

    run(loop, main(), timeout=30)


def test_pool_under_50_concurrent_tasks(loop: Loop, postgres: Postgres) -> None:
    async def main() -> None:
        pool = await asyncpg.create_pool(
            host=postgres.host,
            port=postgres.port,
            user=postgres.user,
            database=postgres.database,
            ssl=False,
            min_size=2,
            max_size=10,
        )
        try:
            in_use = 0
            peak = 0

            async def worker(i: int) -> tuple[int, int]:
                nonlocal in_use, peak
                async with pool.acquire() as conn:
                    in_use += 1
                    peak = max(peak, in_use)
                    try:
                        async with conn.transaction():
                            await conn.execute("SELECT pg_sleep(0.01)")
                            value = await conn.fetchval("SELECT $1::int * 2", i)
                        return value, conn.get_server_pid()
                    finally:
                        in_use -= 1

            results = await asyncio.gather(*(worker(i) for i in range(50)))
            assert [value for value, _ in results] == [i * 2 for i in range(50)]
            assert 2 <= peak <= 10  # tasks share the pool, which bounds them
            assert 1 < len({pid for _, pid in results}) <= 10
            assert pool.get_size() <= 10
        finally:
            await asyncio.wait_for(pool.close(), 10)

    run(loop, main(), timeout=45)


def test_tls_with_certificate_verification(loop: Loop, postgres: Postgres) -> None:
    async def main() -> None:
        conn = await _connect(postgres, ssl=certs.client_context())
        try:
            assert await _uses_tls(conn)
            version = await conn.fetchval(
                "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            assert version in ("TLSv1.2", "TLSv1.3")
            rows = await conn.fetch("SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
            assert len(rows) == 20000
            out = io.BytesIO()
            await conn.copy_from_query("SELECT repeat('z', 1000) FROM generate_series(1, 3000)",
                                       output=out)
            assert len(out.getvalue()) == 3000 * 1001
            # A running query cancelled over TLS; the connection works after it.
            with pytest.raises(asyncio.TimeoutError):
                await conn.fetchval("SELECT pg_sleep(30)", timeout=0.2)
            assert await conn.fetchval("SELECT 7") == 7
            # The server ending the TLS connection reaches the client.
            terminated: asyncio.Future[None] = loop.create_future()
            conn.add_termination_listener(lambda _conn: terminated.set_result(None))
            admin = await _connect(postgres, host=postgres.socket_dir)
            try:
                await admin.fetchval("SELECT pg_terminate_backend($1)", conn.get_server_pid())
            finally:
                await admin.close()
            await terminated
            assert conn.is_closed()
        finally:
            await conn.close()
        # A server whose certificate the client's CA did not issue is refused.
        with pytest.raises(ssl.SSLCertVerificationError):
            await _connect(postgres, ssl=certs.other_client_context())

    run(loop, main())


def test_large_parameters_and_results(loop: Loop, postgres: Postgres) -> None:
    blob = os.urandom(6 * 1024 * 1024 + 1)

    async def main() -> None:
        conn = await _connect(postgres, host=postgres.socket_dir)
        try:
            # A 6 MB parameter out and the same value back, both ways at once.
            digest, echoed = await conn.fetchrow("SELECT md5($1::bytea), $1::bytea", blob)
            assert digest == hashlib.md5(blob).hexdigest()
            assert echoed == blob
        finally:
            await conn.close()

    run(loop, main())


def test_server_terminates_the_connection(loop: Loop, postgres: Postgres) -> None:
    async def main() -> None:
        victim = await _connect(postgres)
        admin = await _connect(postgres, host=postgres.socket_dir)
        try:
            terminated: asyncio.Future[None] = loop.create_future()
            victim.add_termination_listener(lambda _conn: terminated.set_result(None))
            assert await admin.fetchval(
                "SELECT pg_terminate_backend($1)", victim.get_server_pid()
            )
            # The server's goodbye (an error, then EOF) arrives while the client is idle.
            await terminated
            assert victim.is_closed()
            with pytest.raises(asyncpg.InterfaceError, match="connection is closed"):
                await victim.fetchval("SELECT 1")
        finally:
            await victim.close()
            await admin.close()

    run(loop, main())


def test_connect_errors(loop: Loop, postgres: Postgres) -> None:
    async def main() -> None:
        # Nothing listens on the port: the loop's connection error reaches the caller.
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            with pytest.raises(ConnectionRefusedError) as info:
                await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", ssl=False)
            assert info.value.errno == errno.ECONNREFUSED
            # A listener that accepts and never answers: asyncpg's connect timeout.
            sock.listen(1)
            with pytest.raises(asyncio.TimeoutError):
                await asyncpg.connect(
                    host="127.0.0.1", port=port, user="postgres", ssl=False, timeout=0.3
                )
        # An unknown database: the server's error, then a clean close.
        with pytest.raises(asyncpg.InvalidCatalogNameError, match="does not exist"):
            await _connect(postgres, database="no_such_database")

    run(loop, main())
