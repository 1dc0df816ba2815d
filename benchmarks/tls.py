"""TLS benchmark: echo over TLS and handshakes per second, tideloop vs asyncio vs uvloop.

    python -m benchmarks.tls [--loops tideloop,asyncio,uvloop] [--warmup 1]
        [--duration 3] [--conns 10] [--json [PATH]]

Scenarios, each run with a fresh server process per loop:

* ``echo-1k`` / ``echo-100k``: ``--conns`` TLS connections, ping-pong of a
  1 KiB / 100 KiB message on each (send, wait for the whole echo, send again);
* ``handshake``: ``--conns`` clients in parallel, each connecting, completing
  the TLS handshake, echoing one byte and closing (close_notify both ways),
  over and over. A new full handshake every time (no session resumption).

Each (scenario, loop) runs ``--rounds`` times, the loops' order alternating
from round to round; the report shows the round with the median server CPU
per operation. With two CPUs or more, the server is pinned to one and the
load generator to the others.

Figures: messages (or handshakes) per second, and the server's CPU time per
message from ``getrusage(RUSAGE_SELF)`` (user + system, the OS's account of
the whole server process) over the measurement window, plus the load
generator's CPU use over the window: near 100 % means the client, not the
server, bounds the throughput (the CPU per message stays valid).

The server is asyncio's ``Protocol`` echo (``data_received`` ->
``transport.write``) on ``loop.create_server(ssl=...)``, the same code for
every loop. The load generator is one process running uvloop when it is
installed (the cheapest client at hand), asyncio otherwise. Both run from this
file as a top-level module (``python -c BOOTSTRAP DIR ...``) so that the
asyncio and uvloop servers do not import tideloop (see ``_echo_server``:
importing a package changes glibc's mmap threshold, which asyncio's 256 KiB
reads are sensitive to). The window ``[t0, t1]`` is fixed by the parent in
``time.monotonic()`` (CLOCK_MONOTONIC, shared by processes); the client counts
only exchanges completed inside it, the parent samples the server's rusage at
both ends.

Certificates: trustme when it is installed, else ``openssl req``.

Rows: ``tideloop`` (the installed build: compiled when there is one),
``tideloop-pure`` (the same installation, its server started with
``TIDELOOP_PURE_PYTHON=1``; every other process is started without it),
asyncio, uvloop, and ``pyfloor``: a bare Python TLS echo server on memory
BIOs and epoll (``_tls_floor``). Each tideloop server reports which build it
ran; the report's ``builds`` line says it.

Imports: at module level the standard library and the suite's stdlib-only
helpers (``_core``, ``_build``, ``_tls_floor``); a server imports its loop.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import select
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

try:
    from . import _tls_floor
    from ._build import build_label, builds_line, tideloop_build
    from ._core import LoopSpec, loop_env, make_loop, parse_loop_spec
except ImportError:  # the children: a top-level module, its directory on sys.path
    import _tls_floor  # type: ignore[import-not-found,no-redef]
    from _build import (  # type: ignore[import-not-found,no-redef]
        build_label,
        builds_line,
        tideloop_build,
    )
    from _core import (  # type: ignore[import-not-found,no-redef]
        LoopSpec,
        loop_env,
        make_loop,
        parse_loop_spec,
    )

__all__ = ["SCENARIOS", "Result", "main", "median_results", "run_benchmark"]

BOOTSTRAP: Final = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "import tls; sys.exit(tls._child_main(sys.argv[1:]))"
)
HOSTNAME: Final = "localhost"
CLIENT_START_SLACK_S: Final = 1.0
CHILD_TIMEOUT_S: Final = 60.0

#: scenario -> (mode, message size in bytes)
SCENARIOS: Final[dict[str, tuple[str, int]]] = {
    "echo-1k": ("echo", 1024),
    "echo-100k": ("echo", 100 * 1024),
    "handshake": ("handshake", 1),
}


@dataclass(frozen=True)
class Result:
    loop: str
    scenario: str
    count: int
    window_s: float
    server_cpu_s: float
    client_cpu_s: float
    #: tideloop rows: the build the server ran (``_build.build_label``).
    build: str | None = None

    @property
    def per_second(self) -> float:
        return self.count / self.window_s if self.window_s > 0 else 0.0

    @property
    def server_us_per_op(self) -> float:
        return self.server_cpu_s / self.count * 1e6 if self.count else float("nan")

    @property
    def client_cpu_share(self) -> float:
        return self.client_cpu_s / self.window_s if self.window_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "loop": self.loop,
            "scenario": self.scenario,
            "count": self.count,
            "window_s": self.window_s,
            "per_second": self.per_second,
            "server_cpu_s": self.server_cpu_s,
            "server_us_per_op": self.server_us_per_op,
            "client_cpu_share": self.client_cpu_share,
            "build": self.build,
        }


# -- loops and certificates -----------------------------------------------------------


def _make_loop(spec: str) -> asyncio.AbstractEventLoop:
    return make_loop(parse_loop_spec(spec))


def make_certificates(directory: str) -> tuple[str, str, str]:
    """Write a CA, and a server certificate and key for localhost: (cert, key, ca)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    ca = os.path.join(directory, "ca.pem")
    if importlib.util.find_spec("trustme") is not None:
        import trustme

        authority = trustme.CA()
        leaf = authority.issue_cert(HOSTNAME, "127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(cert)
        leaf.private_key_pem.write_to_path(key)
        authority.cert_pem.write_to_path(ca)
        return cert, key, ca
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the TLS benchmark needs trustme or the openssl command")
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", f"/CN={HOSTNAME}",
            "-addext", f"subjectAltName=DNS:{HOSTNAME},IP:127.0.0.1",
            "-keyout", key, "-out", cert,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    shutil.copyfile(cert, ca)  # self-signed: its own authority
    return cert, key, ca


def _rusage_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the server (child process) -------------------------------------------------------


class _EchoServerProtocol(asyncio.Protocol):
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def _pin(cpus: str | None) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def _control(stop: Any) -> None:
    """The control thread: a rusage sample for each ``r``; ``stop()`` on ``q`` or EOF."""
    for line in sys.stdin:
        if line.strip() == "r":
            _emit({"event": "sample", "t": time.monotonic(), "cpu": _rusage_cpu()})
        elif line.strip() == "q":
            break
    stop()


def _start_control(stop: Any) -> None:
    import threading

    threading.Thread(target=_control, args=(stop,), daemon=True).start()


def _serve_floor(ctx: ssl.SSLContext) -> int:
    """The ``pyfloor`` server (``_tls_floor``), with the same control protocol."""

    def listening(port: int) -> None:
        _emit({"event": "listening", "port": port, "loop_type": "pyfloor", "build": None})

    _, errors = _tls_floor.serve(
        ctx, "127.0.0.1", 0, 1024, _EchoServerProtocol, listening, _start_control
    )
    _emit({"event": "closed", "errors": errors[:5], "error_count": len(errors)})
    return 0


def _serve(loop_spec: str, cert: str, key: str) -> int:
    """Serve until stdin says ``q``; answer each ``r`` with a rusage sample."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    spec = parse_loop_spec(loop_spec)
    if spec.kind == "pyfloor":
        return _serve_floor(ctx)
    loop = make_loop(spec)
    build = tideloop_build() if spec.is_tideloop else None
    errors: list[str] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(str(context.get("message"))))
    server = loop.run_until_complete(
        loop.create_server(_EchoServerProtocol, "127.0.0.1", 0, ssl=ctx, backlog=1024)
    )
    port = server.sockets[0].getsockname()[1]
    _emit({"event": "listening", "port": port, "loop_type": type(loop).__module__, "build": build})
    stop = loop.create_future()

    def _stop() -> None:
        if not stop.done():
            stop.set_result(None)

    _start_control(lambda: loop.call_soon_threadsafe(_stop))
    loop.run_until_complete(stop)
    server.close()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    _emit({"event": "closed", "errors": errors[:5], "error_count": len(errors)})
    return 0


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# -- the load generator (child process) ------------------------------------------------


class _Stats:
    def __init__(self, t0: float, t1: float) -> None:
        self.t0 = t0
        self.t1 = t1
        self.count = 0
        self.cpu0: float | None = None
        self.cpu1: float | None = None

    def completed(self) -> bool:
        """Count one exchange; False once the window is over."""
        now = time.monotonic()
        if now >= self.t1:
            if self.cpu1 is None:
                self.cpu1 = _rusage_cpu()
            return False
        if now >= self.t0:
            if self.cpu0 is None:
                self.cpu0 = _rusage_cpu()
            self.count += 1
        return True


class _PingPong(asyncio.Protocol):
    def __init__(self, message: bytes, stats: _Stats, done: asyncio.Future[None]) -> None:
        self.message = message
        self.stats = stats
        self.done = done
        self.pending = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.pending = len(self.message)
        self.transport.write(self.message)

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        if self.pending > 0:
            return
        if self.pending < 0:
            raise RuntimeError("the server sent more than it was sent")
        if self.stats.completed():
            self._send()
        else:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)


async def _echo_load(port: int, ctx: ssl.SSLContext, conns: int, size: int, stats: _Stats) -> None:
    loop = asyncio.get_running_loop()
    message = bytes(range(256)) * (size // 256) + bytes(size % 256)
    dones = []
    for _ in range(conns):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(
            lambda d=done: _PingPong(message, stats, d),  # type: ignore[misc]
            "127.0.0.1",
            port,
            ssl=ctx,
            server_hostname=HOSTNAME,
        )
        dones.append(done)
    await asyncio.gather(*dones)


class _OneShot(asyncio.Protocol):
    """Send one byte, close (close_notify) once it is echoed."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(b"x")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)


async def _handshake_load(port: int, ctx: ssl.SSLContext, conns: int, stats: _Stats) -> None:
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        while True:
            done: asyncio.Future[None] = loop.create_future()
            await loop.create_connection(
                lambda d=done: _OneShot(d),  # type: ignore[misc]
                "127.0.0.1",
                port,
                ssl=ctx,
                server_hostname=HOSTNAME,
            )
            await done
            if not stats.completed():
                return

    await asyncio.gather(*(worker() for _ in range(conns)))


def _client_loop() -> str:
    """The load generator's loop: uvloop when installed, else asyncio."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def _load(argv: argparse.Namespace) -> int:
    ctx = ssl.create_default_context(cafile=argv.ca)
    spec = _client_loop()
    loop = _make_loop(spec)
    stats = _Stats(argv.t0, argv.t1)
    try:
        if argv.mode == "echo":
            loop.run_until_complete(_echo_load(argv.port, ctx, argv.conns, argv.size, stats))
        else:
            loop.run_until_complete(_handshake_load(argv.port, ctx, argv.conns, stats))
    finally:
        loop.close()
    cpu0 = stats.cpu0 if stats.cpu0 is not None else 0.0
    cpu1 = stats.cpu1 if stats.cpu1 is not None else _rusage_cpu()
    _emit({"event": "result", "count": stats.count, "cpu": cpu1 - cpu0, "client_loop": spec})
    return 0


def _child_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tls-bench-child")
    sub = parser.add_subparsers(dest="role", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--loop", required=True)
    serve.add_argument("--cert", required=True)
    serve.add_argument("--key", required=True)
    load = sub.add_parser("load")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--ca", required=True)
    load.add_argument("--mode", choices=("echo", "handshake"), required=True)
    load.add_argument("--conns", type=int, required=True)
    load.add_argument("--size", type=int, required=True)
    load.add_argument("--t0", type=float, required=True)
    load.add_argument("--t1", type=float, required=True)
    for sub_parser in (serve, load):
        sub_parser.add_argument("--cpus", default=None)
    args = parser.parse_args(argv)
    _pin(args.cpus)
    if args.role == "serve":
        return _serve(args.loop, args.cert, args.key)
    return _load(args)


# -- the parent ----------------------------------------------------------------------


def _child_env(spec: LoopSpec) -> dict[str, str]:
    """The environment of a child running ``spec`` (``_core.loop_env``:
    TIDELOOP_PURE_PYTHON=1 for a ``-pure`` row only); servers of tideloop
    import it from wherever this process found it."""
    import tideloop

    package_parent = str(Path(tideloop.__file__).resolve().parent.parent)
    env = loop_env(spec, os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    return env


def _spawn(args: list[str], spec: LoopSpec) -> subprocess.Popen[str]:
    bench_dir = str(Path(__file__).resolve().parent)
    return subprocess.Popen(
        [sys.executable, "-c", BOOTSTRAP, bench_dir, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_child_env(spec),
    )


def _read_event(proc: subprocess.Popen[str], event: str) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited (status {proc.poll()}) before {event!r}")
        obj = cast(dict[str, Any], json.loads(line))
        if obj.get("event") == event:
            return obj


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def run_benchmark(
    loop_spec: str,
    scenario: str,
    certs: tuple[str, str, str],
    *,
    warmup_s: float = 1.0,
    duration_s: float = 3.0,
    conns: int = 10,
) -> Result:
    """One scenario on one loop: a fresh server process and load generator."""
    mode, size = SCENARIOS[scenario]
    cert, key, ca = certs
    server_cpus, client_cpus = _cpu_split()
    spec = parse_loop_spec(loop_spec)
    server = _spawn(
        ["serve", "--loop", spec.label, "--cert", cert, "--key", key, *server_cpus], spec
    )
    client: subprocess.Popen[str] | None = None
    try:
        hello = _read_event(server, "listening")
        port = hello["port"]
        t0 = time.monotonic() + CLIENT_START_SLACK_S + warmup_s
        t1 = t0 + duration_s
        client = _spawn(
            [
                "load", "--port", str(port), "--ca", ca, "--mode", mode,
                "--conns", str(conns), "--size", str(size), "--t0", repr(t0), "--t1", repr(t1),
                *client_cpus,
            ],
            LoopSpec(_client_loop()),
        )  # fmt: skip
        assert server.stdin is not None
        _sleep_until(t0)
        server.stdin.write("r\n")
        server.stdin.flush()
        sample0 = _read_event(server, "sample")
        _sleep_until(t1)
        server.stdin.write("r\n")
        server.stdin.flush()
        sample1 = _read_event(server, "sample")
        result = _read_event(client, "result")
        client.wait(CHILD_TIMEOUT_S)
        server.stdin.write("q\n")
        server.stdin.flush()
        closed = _read_event(server, "closed")
        server.wait(CHILD_TIMEOUT_S)
        if closed["error_count"]:
            raise RuntimeError(f"{loop_spec} server reported errors: {closed['errors']}")
        return Result(
            loop=loop_spec,
            scenario=scenario,
            count=int(result["count"]),
            window_s=float(sample1["t"] - sample0["t"]),
            server_cpu_s=float(sample1["cpu"] - sample0["cpu"]),
            client_cpu_s=float(result["cpu"]),
            build=build_label(hello["build"]) if hello.get("build") else None,
        )
    finally:
        for proc in (client, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def _cpu_split() -> tuple[list[str], list[str]]:
    """Server on one CPU, load generator on the others (when there are two or more):
    no migrations, no competition between the two."""
    if not hasattr(os, "sched_getaffinity"):
        return [], []
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return [], []
    return ["--cpus", str(cpus[0])], ["--cpus", ",".join(map(str, cpus[1:]))]


def median_results(results: Sequence[Result]) -> list[Result]:
    """One Result per (loop, scenario): the round with the median server CPU per op."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.loop, r.scenario), []).append(r)
    out = []
    for group in groups.values():
        ordered = sorted(group, key=lambda r: r.server_us_per_op)
        out.append(ordered[(len(ordered) - 1) // 2])
    return out


def default_loops() -> list[str]:
    loops = ["tideloop", "tideloop-pure", "asyncio"]
    if importlib.util.find_spec("uvloop") is not None:
        loops.append("uvloop")
    return loops


def format_table(results: Sequence[Result]) -> str:
    loops = list(dict.fromkeys(r.loop for r in results))
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    by_key = {(r.loop, r.scenario): r for r in results}
    head = f"{'scenario':<11}" + "".join(f"{loop:>30}" for loop in loops)
    lines = [head, f"{'':<11}" + f"{'ops/s   server us/op  client':>30}" * len(loops)]
    for scenario in scenarios:
        row = f"{scenario:<11}"
        for loop in loops:
            r = by_key.get((loop, scenario))
            if r is None:
                row += f"{'-':>30}"
                continue
            cell = f"{r.per_second:>9.0f} {r.server_us_per_op:>11.1f} {r.client_cpu_share:>6.0%}"
            row += f"{cell:>30}"
        lines.append(row)
    # Every row against asyncio and uvloop; the compiled tideloop row against
    # its pure one as well.
    references = {ref: [lp for lp in loops if lp != ref] for ref in ("asyncio", "uvloop")}
    for loop in loops:
        compiled = parse_loop_spec(loop).compiled_row
        if compiled is not None and compiled.label in loops:
            references[loop] = [compiled.label]
    for ref, others in references.items():
        if ref not in loops:
            continue
        lines.append("")
        lines.append(f"server CPU per op relative to {ref} (lower is better):")
        for scenario in scenarios:
            base = by_key.get((ref, scenario))
            if base is None:
                continue
            ratios = [
                f"{loop} {by_key[(loop, scenario)].server_us_per_op / base.server_us_per_op:.2f}x"
                for loop in others
                if (loop, scenario) in by_key
            ]
            lines.append(f"  {scenario:<11} " + ", ".join(ratios))
    return "\n".join(lines)


def builds(results: Sequence[Result]) -> dict[str, str | None]:
    """``{tideloop row: build label}``, every label seen when rounds disagreed."""
    out: dict[str, str | None] = {}
    for r in results:
        if r.loop.startswith("tideloop"):
            seen = out.get(r.loop)
            if r.build is not None and (seen is None or r.build not in seen.split(" / ")):
                out[r.loop] = r.build if seen is None else f"{seen} / {r.build}"
            else:
                out.setdefault(r.loop, seen)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tls",
        description="TLS echo and handshake benchmark: tideloop vs asyncio vs uvloop.",
    )
    parser.add_argument("--loops", default=",".join(default_loops()))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured")
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="runs per (scenario, loop)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH")
    args = parser.parse_args(argv)
    loops = [s.strip() for s in args.loops.split(",") if s.strip()]
    for loop_name in loops:
        try:
            spec = parse_loop_spec(loop_name)
        except ValueError as exc:
            parser.error(str(exc))
        if spec.kind == "pyfloor" and not hasattr(select, "epoll"):
            parser.error("pyfloor of the tls group is a bare Python epoll server: no epoll here")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for scenario in scenarios:
        if scenario not in SCENARIOS:
            parser.error(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="tideloop-tls-bench-") as tmp:
        certs = make_certificates(tmp)
        for round_no in range(args.rounds):
            # Alternate the order of the loops from round to round.
            order = loops if round_no % 2 == 0 else loops[::-1]
            for scenario in scenarios:
                for loop_spec in order:
                    print(
                        f"  round {round_no + 1}/{args.rounds}: {scenario} on {loop_spec}",
                        file=sys.stderr,
                        flush=True,
                    )
                    results.append(
                        run_benchmark(
                            loop_spec,
                            scenario,
                            certs,
                            warmup_s=args.warmup,
                            duration_s=args.duration,
                            conns=args.conns,
                        )
                    )
    medians = median_results(results)
    if args.json is not None:
        text = json.dumps(
            {
                "loops": loops,
                "builds": builds(results),
                "median": [r.to_json() for r in medians],
                "rounds": [r.to_json() for r in results],
            },
            indent=2,
        )
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    else:
        print(f"median of {args.rounds} rounds (by server CPU per op)")
        line = builds_line(builds(results))
        if line:
            print(line)
        print(format_table(medians))
    return 0


# -- ``python -m benchmarks --group tls`` ------------------------------------------------


def _not_in_a_worker(loop: Any, n: int, timer: Any) -> None:
    raise RuntimeError("TLS benchmarks run a server process and a client, not a worker")


# The server and client children run this file as a script (so asyncio and
# uvloop are measured without tideloop imported): only the package import
# defines the group.
if __package__:
    from ._core import BenchGroup, Benchmark

    GROUP = BenchGroup(
        name="tls",
        description="TLS echo (1 KiB, 100 KiB, 10 connections) and handshakes, server CPU per op",
        benchmarks=tuple(
            Benchmark(name, f"TLS {name}", "op", n=0, quick_n=0, fn=_not_in_a_worker)
            for name in SCENARIOS
        ),
        rounds=3,
        repeats=1,
        quick_rounds=1,
        quick_repeats=1,
    )


def run_cli(
    args: argparse.Namespace, loops: Sequence[Any], only: Sequence[str] | None, progress: Any
) -> int:
    """``python -m benchmarks --group tls``: maps the shared options onto ``main``."""
    argv = ["--loops", ",".join(spec.label for spec in loops)]
    if only:
        argv += ["--scenarios", ",".join(only)]
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    argv += ["--rounds", str(rounds)]
    if args.quick:
        argv += ["--warmup", "0.2", "--duration", "0.5"]
    else:
        if getattr(args, "warmup", None):
            argv += ["--warmup", str(args.warmup)]
        if getattr(args, "duration", None):
            argv += ["--duration", str(args.duration)]
    if args.json:
        argv += ["--json"]
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
