"""tideloop under blockbuster, the blocking-call guard aiohttp's test suite
runs under (src/tideloop/_blockbuster.py, docs/testing.md).

blockbuster lets asyncio's own blocking calls through by name; with
``tideloop.allow_in_blockbuster(bb)`` tideloop's counterparts pass too, and
only those: each test runs on asyncio and on tideloop with the same setup
and assertions, with the guard active for the whole test body (every module
scanned, the strictest setting).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

import tideloop

from .support.streams import Loop, run, short_tmpdir

blockbuster = pytest.importorskip("blockbuster")

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def guard() -> Iterator[Any]:
    """An active BlockBuster that knows tideloop's call sites."""
    with blockbuster.blockbuster_ctx() as bb:
        tideloop.allow_in_blockbuster(bb)
        yield bb


def test_sendfile(loop: Loop) -> None:
    """loop.sendfile() of a file larger than the socket buffers (so the
    transfer goes on from the loop's callbacks) while the peer reads."""
    content = bytes(range(256)) * (16 * 1024)  # 4 MiB
    with tempfile.TemporaryFile() as f:
        f.write(content)
        f.flush()
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        lsn.setblocking(False)

        async def main() -> None:
            tr, _ = await loop.create_connection(asyncio.Protocol, *lsn.getsockname())
            peer, _ = await loop.sock_accept(lsn)
            peer.setblocking(False)
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)

            async def read_all() -> bytes:
                buf = bytearray()
                while len(buf) < len(content):
                    data = await loop.sock_recv(peer, 256 * 1024)
                    assert data
                    buf += data
                return bytes(buf)

            reader = asyncio.ensure_future(read_all())
            assert await loop.sendfile(tr, f) == len(content)
            assert await reader == content
            tr.close()
            peer.close()
            await asyncio.sleep(0)

        with lsn, blockbuster.blockbuster_ctx() as bb:
            tideloop.allow_in_blockbuster(bb)
            run(loop, main())
        assert f.tell() == len(content)


def test_unix_server(loop: Loop) -> None:
    """create_unix_server (stale-file check, 3.13: the inode it will clean
    up), a connection, and close (3.13: the socket file removed)."""
    path = os.path.join(short_tmpdir(), "srv")

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path)
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    with blockbuster.blockbuster_ctx() as bb:
        tideloop.allow_in_blockbuster(bb)
        run(loop, main())
    assert os.path.exists(path) is (sys.version_info < (3, 13))
    if os.path.exists(path):
        os.unlink(path)
    os.rmdir(os.path.dirname(path))


def test_subprocesses(loop: Loop, guard: Any) -> None:
    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('exec')", stdout=asyncio.subprocess.PIPE
        )
        assert (await proc.communicate())[0] == b"exec\n"
        proc = await asyncio.create_subprocess_shell("echo shell", stdout=asyncio.subprocess.PIPE)
        assert (await proc.communicate())[0] == b"shell\n"

    run(loop, main())


def test_user_code_is_still_reported(loop: Loop, guard: Any) -> None:
    """The allowance covers the loop's own call sites, not the caller's."""

    async def main() -> None:
        with pytest.raises(blockbuster.BlockingError) as info:
            os.stat(".")
        assert str(info.value) == "Blocking call to os.stat"

    run(loop, main())


def test_allowance_before_activation_and_unknown_keys(loop: Loop) -> None:
    """Registering with an instance not yet active works (blockbuster keeps
    the entries), and an instance without one of the guarded functions is
    fine."""
    path = os.path.join(short_tmpdir(), "srv")
    bb = blockbuster.BlockBuster()
    del bb.functions["os.unlink"]
    tideloop.allow_in_blockbuster(bb)

    async def main() -> None:
        server = await loop.create_unix_server(asyncio.Protocol, path)
        server.close()
        await server.wait_closed()

    bb.activate()
    try:
        run(loop, main())
    finally:
        bb.deactivate()
    if os.path.exists(path):
        os.unlink(path)
    os.rmdir(os.path.dirname(path))


def test_aiohttp_file_response(loop: Loop, tmp_path: Any) -> None:
    """aiohttp's FileResponse (loop.sendfile) under the guard as aiohttp's
    own test suite sets it up (blocking calls reported from aiohttp's
    frames): the whole file arrives."""
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp import web

    data = bytes(range(256)) * (12 * 1024)  # 3 MiB
    path = tmp_path / "file.bin"
    path.write_bytes(data)

    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/file", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://{host}:{port}/file") as resp:
                    assert resp.status == 200
                    assert await resp.read() == data
        finally:
            await runner.cleanup()

    with blockbuster.blockbuster_ctx("aiohttp") as bb:
        tideloop.allow_in_blockbuster(bb)
        run(loop, main())
