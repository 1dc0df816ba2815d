"""The public API: ``tideloop.__all__`` is exactly the public names, and each
one is what the docs say it is."""

from __future__ import annotations
import __future__

import asyncio
import inspect
import sys
import tomllib
import types
from pathlib import Path

import pytest

import tideloop

ROOT = Path(__file__).resolve().parent.parent

PUBLIC = {
    "EventLoop",
    "EventLoopPolicy",
    "LagHistogram",
    "LoopMetrics",
    "SlowCallback",
    "VirtualClock",
    "__version__",
    "allow_in_blockbuster",
    "available_backends",
    "default_backend",
    "install",
    "new_event_loop",
    "run",
}


def _public_names() -> set[str]:
    """Names a user finds on the package: no underscore, not a submodule,
    not a ``from __future__`` feature."""
    return {
        name
        for name, value in vars(tideloop).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and not isinstance(value, __future__._Feature)
    }


def test_all_is_exactly_the_public_names() -> None:
    assert sorted(tideloop.__all__) == sorted(set(tideloop.__all__)), "duplicates in __all__"
    assert set(tideloop.__all__) == PUBLIC
    assert _public_names() | {"__version__"} == PUBLIC


def test_every_name_in_all_exists() -> None:
    for name in tideloop.__all__:
        assert hasattr(tideloop, name), name


def test_star_import_gives_all() -> None:
    namespace: dict[str, object] = {}
    exec("from tideloop import *", namespace)
    assert set(namespace) - {"__builtins__"} == PUBLIC


def test_public_callables_are_documented() -> None:
    for name in tideloop.__all__:
        value = getattr(tideloop, name)
        if callable(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_version_matches_pyproject() -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert tideloop.__version__ == project["version"]


def test_event_loop_is_an_asyncio_loop() -> None:
    assert issubclass(tideloop.EventLoop, asyncio.AbstractEventLoop)
    # Not asyncio's implementation underneath (DESIGN.md section 1).
    assert not issubclass(tideloop.EventLoop, asyncio.BaseEventLoop)
    loop = tideloop.new_event_loop()
    try:
        assert type(loop) is tideloop.EventLoop
    finally:
        loop.close()


def test_new_event_loop_signature() -> None:
    params = inspect.signature(tideloop.new_event_loop).parameters
    assert list(params) == ["backend", "clock", "metrics"]
    for param in params.values():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY
        assert param.default is None


def test_run_signature() -> None:
    params = inspect.signature(tideloop.run).parameters
    assert list(params) == ["main", "debug", "loop_kwargs"]
    assert params["debug"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["debug"].default is None
    assert params["loop_kwargs"].kind is inspect.Parameter.VAR_KEYWORD


def test_policy_and_install() -> None:
    assert issubclass(tideloop.EventLoopPolicy, asyncio.AbstractEventLoopPolicy)
    assert inspect.signature(tideloop.install).parameters == {}


def test_backends() -> None:
    backends = tideloop.available_backends()
    assert backends, "every platform has select"
    assert set(backends) <= {"epoll", "kqueue", "poll", "select"}
    assert backends[-1] == "select"
    assert tideloop.default_backend() in backends
    if sys.platform.startswith("linux"):
        assert backends[0] == "epoll"


def test_unknown_backend_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # Through the environment: new_event_loop(backend="iocp") raises the same
    # error, but see test_runner.test_run_unknown_backend for its clean-up bug.
    monkeypatch.setenv("TIDELOOP_BACKEND", "iocp")
    with pytest.raises(ValueError) as info:
        tideloop.default_backend()
    assert str(info.value) == (
        "unknown tideloop backend 'iocp'; expected one of epoll, kqueue, poll, select"
    )


def test_typed_package() -> None:
    assert (Path(tideloop.__file__).parent / "py.typed").exists()


# Public modules, each an optional integration that the package does not import
# itself: the pytest plugin and the OpenTelemetry bridge.
PUBLIC_MODULES = {"testing.py", "otel.py"}


def test_private_modules_stay_private() -> None:
    package = Path(tideloop.__file__).parent
    for path in package.glob("*.py"):
        if path.name not in PUBLIC_MODULES:
            assert path.name.startswith("_"), f"public module {path.name}"
    assert {p.name for p in package.glob("*.py")} >= PUBLIC_MODULES


def test_optional_integrations_are_not_imported() -> None:
    # The pytest plugin and the OpenTelemetry bridge load their third-party
    # packages only when used: importing tideloop imports neither.
    import subprocess

    code = (
        "import sys, tideloop, tideloop.testing;"
        "print(sorted(m for m in ('pytest', 'opentelemetry') if m in sys.modules))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
