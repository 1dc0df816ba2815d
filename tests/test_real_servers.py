"""Real servers and clients on the loop: aiohttp's web server and client, and
uvicorn started from its command line with ``--loop`` pointed at tideloop.

These are smoke tests of whole programs that use the loop the way
applications do (create_server with a ready socket, start_tls-free HTTP/1.1
keep-alive, chunked bodies, websockets, loop.sendfile for static files,
subprocess-free shutdown). Each aiohttp test runs on stock asyncio (the
oracle) and on tideloop with every backend, and checks the responses.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.streams import Loop, run

aiohttp = pytest.importorskip("aiohttp", reason="aiohttp is a test extra (pip install '.[test]')")
from aiohttp import web  # noqa: E402

pytestmark = pytest.mark.timeout(60)

BIG = os.urandom(3 * 1024 * 1024 + 17)  # more than every buffer's high-water mark


def _app(static: Path) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        return web.Response(text=f"hello {type(loop).__module__}")

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(body=body, headers={"X-Sha256": hashlib.sha256(body).hexdigest()})

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(50):
            await resp.write(f"chunk {i}\n".encode())
        await resp.write_eof()
        return resp

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await sock.send_str(msg.data.upper())
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await sock.send_bytes(msg.data[::-1])
        return sock

    async def file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(static)

    app = web.Application(client_max_size=len(BIG) + 1024)
    app.router.add_get("/", hello)
    app.router.add_post("/echo", echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/ws", ws)
    app.router.add_get("/file", file)
    return app


@pytest.fixture
def static_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "static.bin"
        path.write_bytes(BIG)
        yield path


async def _serve(static: Path) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(_app(static))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def test_aiohttp_requests(loop: Loop, loop_kind: str, static_file: Path) -> None:
    async def main() -> None:
        runner, base = await _serve(static_file)
        try:
            async with aiohttp.ClientSession() as session:
                # Keep-alive: several requests on the client's pooled connection.
                for _ in range(3):
                    async with session.get(base + "/") as resp:
                        assert resp.status == 200
                        text = await resp.text()
                        expected = "asyncio" if loop_kind == "asyncio" else "tideloop"
                        assert text.startswith(f"hello {expected}")
                async with session.post(base + "/echo", data=io.BytesIO(BIG)) as resp:
                    assert resp.status == 200
                    body = await resp.read()
                    assert body == BIG
                    assert resp.headers["X-Sha256"] == hashlib.sha256(BIG).hexdigest()
                async with session.get(base + "/stream") as resp:
                    lines = (await resp.text()).splitlines()
                    assert lines == [f"chunk {i}" for i in range(50)]
                async with session.get(base + "/file") as resp:
                    assert resp.status == 200
                    assert await resp.read() == BIG
                async with session.get(base + "/missing") as resp:
                    assert resp.status == 404
        finally:
            await runner.cleanup()

    run(loop, main(), timeout=45)


def test_aiohttp_websocket(loop: Loop, static_file: Path) -> None:
    async def main() -> None:
        runner, base = await _serve(static_file)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(base + "/ws") as ws:
                    for word in ("tide", "loop", "x" * 100_000):
                        await ws.send_str(word)
                        msg = await ws.receive()
                        assert msg.type == aiohttp.WSMsgType.TEXT
                        assert msg.data == word.upper()
                    await ws.send_bytes(b"\x00\x01\x02")
                    msg = await ws.receive()
                    assert msg.data == b"\x02\x01\x00"
                    await ws.close()
        finally:
            await runner.cleanup()

    run(loop, main(), timeout=45)


def test_aiohttp_many_concurrent_clients(loop: Loop, static_file: Path) -> None:
    async def main() -> None:
        runner, base = await _serve(static_file)
        try:
            connector = aiohttp.TCPConnector(limit=50)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def one(i: int) -> bytes:
                    payload = str(i).encode() * (i + 1)
                    async with session.post(base + "/echo", data=payload) as resp:
                        assert resp.status == 200
                        return await resp.read()

                bodies = await asyncio.gather(*(one(i) for i in range(200)))
                assert bodies == [str(i).encode() * (i + 1) for i in range(200)]
        finally:
            await runner.cleanup()

    run(loop, main(), timeout=45)


# -- uvicorn, from its command line ---------------------------------------------------------

ASGI_APP = """
import asyncio, hashlib

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    loop = asyncio.get_running_loop()
    if scope["path"] == "/echo":
        out = body
    else:
        out = ("%s %s" % (type(loop).__module__, type(loop).__name__)).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"x-sha256", hashlib.sha256(out).hexdigest().encode())]})
    # The body in two parts: a server that gathers writes sends them together.
    await send({"type": "http.response.body", "body": out[:10], "more_body": True})
    await send({"type": "http.response.body", "body": out[10:]})
"""


@pytest.fixture
def uvicorn_server() -> Iterator[str]:
    pytest.importorskip("uvicorn", reason="uvicorn is a test extra (pip install '.[test]')")
    src = str(Path(__file__).resolve().parent.parent / "src")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "smoke_asgi.py").write_text(ASGI_APP)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(100)
        port = sock.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, tmp]))
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "smoke_asgi:app",
            "--loop",
            "tideloop:new_event_loop",
            "--fd",
            str(sock.fileno()),
            "--no-access-log",
        ]
        # Passing the bound socket (--fd) avoids a race for a free port.
        with subprocess.Popen(
            cmd,
            env=env,
            pass_fds=[sock.fileno()],
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            sock.close()
            try:
                assert proc.stderr is not None
                for line in proc.stderr:
                    if "Application startup complete" in line:
                        break
                    if re.search(r"Error|Traceback", line):
                        raise AssertionError(f"uvicorn failed to start: {line}")
                else:
                    raise AssertionError(f"uvicorn exited: {proc.wait()}")
                yield f"http://127.0.0.1:{port}"
            finally:
                proc.terminate()
                try:
                    proc.wait(20)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()


def test_uvicorn_serves_on_tideloop(uvicorn_server: str) -> None:
    with urllib.request.urlopen(uvicorn_server + "/") as resp:
        assert resp.status == 200
        assert resp.read() == b"tideloop._loop EventLoop"
    request = urllib.request.Request(uvicorn_server + "/echo", data=BIG, method="POST")
    with urllib.request.urlopen(request) as resp:
        body = resp.read()
        assert body == BIG
        assert resp.headers["x-sha256"] == hashlib.sha256(BIG).hexdigest()
