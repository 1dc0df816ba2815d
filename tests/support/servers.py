"""Real database servers for the client tests (tests/test_clients_asyncpg.py,
tests/test_clients_redis.py): PostgreSQL and Redis, each run from its Debian
package in a temporary directory, listening on a free TCP port on 127.0.0.1
and on a Unix socket, and stopped at the end of the test session.

scripts/test installs the packages (``postgresql``, ``redis-server``) when they
are missing and it runs as root. Where a server or client library is still
missing, ``unavailable()`` skips the test with the reason, except under
``CI=true`` (set by .ci/run), where it fails: CI must not pass by skipping.

PostgreSQL refuses to run as root, so when the tests run as root its processes
run as the ``postgres`` user (``nobody`` where there is none), which is given
the temporary directory. Redis runs as whoever runs the tests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from . import certs

START_TIMEOUT_S = 60.0


def unavailable(reason: str) -> NoReturn:
    """Skip for a missing server or library; fail instead under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing server is an error, not a skip)")
    pytest.skip(reason)


def import_or_unavailable(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        unavailable(f"{name} is a test extra (pip install '.[test]')")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a clash)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PostgreSQL ------------------------------------------------------------------------------


@dataclasses.dataclass
class Postgres:
    host: str  # 127.0.0.1
    port: int
    socket_dir: str  # pass as host= to connect over the Unix socket
    user: str  # the superuser, authenticated with "trust" on loopback
    database: str

    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


def _postgres_bindir() -> Path | None:
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path))

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _server_account() -> tuple[int, int] | None:
    """The (uid, gid) to run PostgreSQL as; None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    unavailable("running as root and no unprivileged user to run PostgreSQL as")


def _run(cmd: list[str], account: tuple[int, int] | None, cwd: Path) -> None:
    kwargs: dict[str, Any] = {}
    if account is not None:
        kwargs = {"user": account[0], "group": account[1], "extra_groups": []}
    result = subprocess.run(
        cmd,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
        **kwargs,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )


def _chown_tree(path: Path, account: tuple[int, int] | None) -> None:
    if account is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, *account)
        for name in dirs + files:
            os.chown(os.path.join(root, name), *account)


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL cluster with TLS enabled (the session CA's server
    certificate from tests/support/certs.py), "trust" authentication on
    loopback and the Unix socket, and durability off (tests only)."""
    bindir = _postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    account = _server_account()
    tmp = Path(tempfile.mkdtemp(prefix="tl-pg-", dir="/tmp"))  # short: Unix socket path
    try:
        cert_file, key_file = certs.write_server_cert(tmp)
        _chown_tree(tmp, account)
        data = tmp / "data"
        _run(
            [
                str(bindir / "initdb"),
                "-D", str(data),
                "-U", "postgres",
                "-A", "trust",
                "-E", "UTF8",
                "--no-sync",
                "--locale=C",
            ],
            account,
            tmp,
        )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n".join(
                    [
                        "listen_addresses = '127.0.0.1'",
                        f"unix_socket_directories = '{tmp}'",
                        "max_connections = 120",
                        "fsync = off",
                        "synchronous_commit = off",
                        "full_page_writes = off",
                        "ssl = on",
                        f"ssl_cert_file = '{cert_file}'",
                        f"ssl_key_file = '{key_file}'",
                        "",
                    ]
                )
            )
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
        for attempt in range(3):
            port = free_port()
            try:
                _run(
                    [*pg_ctl, "-l", str(tmp / "server.log"), "-w", "-t", "60",
                     "-o", f"-p {port}", "start"],
                    account,
                    tmp,
                )
                break
            except RuntimeError:
                if attempt == 2:
                    log = (tmp / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"PostgreSQL did not start; its log:\n{log}") from None
        try:
            yield Postgres(
                host="127.0.0.1", port=port, socket_dir=str(tmp), user="postgres",
                database="postgres",
            )
        finally:
            _run([*pg_ctl, "-m", "immediate", "-w", "stop"], account, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- Redis -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Redis:
    host: str
    port: int
    unix_socket: str


@contextlib.contextmanager
def redis_server() -> Iterator[Redis]:
    """A Redis server without persistence (no RDB snapshots, no AOF)."""
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )
    if binary is None:
        unavailable("Redis is not installed (Debian: apt-get install redis-server)")
    tmp = Path(tempfile.mkdtemp(prefix="tl-redis-", dir="/tmp"))
    try:
        unix_socket = str(tmp / "redis.sock")
        for attempt in range(3):
            port = free_port()
            cmd = [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--unixsocket", unix_socket,
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(tmp),
                "--logfile", "",
                "--daemonize", "no",
            ]
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True,
            )
            assert proc.stdout is not None
            # Redis says it is ready once its listening sockets are open. Its later
            # log lines go nowhere (it ignores SIGPIPE), so the pipe is closed here.
            log = []
            ready = False
            with proc.stdout:
                for line in proc.stdout:
                    log.append(line)
                    if "Ready to accept connections" in line:
                        ready = True
                        break
            if ready:
                break
            proc.wait()
            if attempt == 2:
                raise RuntimeError("redis-server did not start:\n" + "".join(log))
        try:
            yield Redis(host="127.0.0.1", port=port, unix_socket=unix_socket)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
