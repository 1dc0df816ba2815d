"""The conformance suites: what runs, and how each suite gets its loop.

Two kinds of suite, both made of CPython's own ``test.test_asyncio`` code as
installed with the running interpreter:

``mixin-*`` suites
    CPython writes its loop-independent tests as mixins and instantiates them
    once per event loop implementation, e.g. on Unix::

        class EPollEventLoopTests(UnixEventLoopTestsMixin, SubprocessTestsMixin,
                                  test_utils.TestCase):
            def create_event_loop(self):
                return asyncio.SelectorEventLoop(selectors.EpollSelector())

    A :class:`MixinSpec` names the upstream *concrete* Unix class to derive
    from (so per-platform overrides and extra tests that live only on the
    concrete class, such as ``SelectorStartServerTests.test_start_unix_server_1``,
    come along) and, for Pythons where that class is missing, the mixins to
    compose instead. The derived class only overrides the factory method
    (``create_event_loop`` or ``new_loop``) to return the loop under test.
    Where upstream instantiates one class per selector, we instantiate one per
    backend (``tideloop.available_backends()``, or the stock selectors for
    ``--loop asyncio``); otherwise the default backend is used. Generated test
    ids look like ``mixin-events.EventLoopTests_epoll.test_reader_callback``.

``test_*`` suites (whole modules)
    A module of ``test.test_asyncio`` loaded as-is by ``unittest``. The loop
    under test is what ``asyncio.new_event_loop()`` (and so ``asyncio.run``,
    ``asyncio.Runner``, ``IsolatedAsyncioTestCase``) returns: see
    ``_loops.install_default_factory``. Tests of asyncio's private internals
    (``asyncio.BaseEventLoop``, ``test_utils.TestLoop``, selector_events
    mocks, explicit ``SelectorEventLoop(...)``) still run on stock asyncio and
    are counted; the "on loop" column tells how many tests actually created a
    loop of the kind under test. Ids are the upstream ones, e.g.
    ``test.test_asyncio.test_tasks.CTask_CFuture_Tests.test_foo``.

Nothing from ``test.test_asyncio`` is imported by this module at import time:
the parent process (``run.py``) only needs the names, the worker builds the
suites.
"""

from __future__ import annotations

import importlib
import importlib.util
import unittest
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _loops

PACKAGE = "test.test_asyncio"

#: Modules of test.test_asyncio that are helpers, not tests, or Windows-only.
_NOT_SUITES = frozenset(
    {
        "__init__",
        "__main__",
        "utils",
        "functional",
        "echo",
        "echo2",
        "echo3",
        "test_windows_events",
        "test_windows_utils",
        "test_proactor_events",
    }
)


@dataclass(frozen=True)
class MixinSpec:
    """How to instantiate one family of upstream mixins for the loop under test."""

    name: str
    module: str
    description: str
    #: Upstream concrete Unix classes to derive from, first found wins.
    concrete: tuple[str, ...]
    #: Fallback composition: each entry is ``"A|B"`` (first existing name).
    mixins: tuple[str, ...]
    #: ``"test_utils.TestCase"`` or ``"unittest.TestCase"``.
    base: str
    #: The method the upstream setUp calls to get a loop.
    factory_attr: str
    #: One class per backend (upstream does one per selector) or one in total.
    per_backend: bool
    #: The mixin has no setUp creating ``self.loop``: add one.
    add_loop_setup: bool = False
    #: Class-name stem for the generated classes.
    stem: str = ""
    #: Applied to each new loop, for upstream factories that also instrument it.
    prepare: Callable[[Any], Any] | None = None


def _runners_loop(loop: Any) -> Any:
    """What test_runners' own ``new_loop`` adds to its loop, on ours: a flag
    its tearDown checks, set when shutdown_asyncgens() runs."""
    loop.shutdown_ag_run = False
    shutdown_asyncgens = loop.shutdown_asyncgens

    async def instrumented() -> None:
        loop.shutdown_ag_run = True
        await shutdown_asyncgens()

    loop.shutdown_asyncgens = instrumented
    return loop


MIXINS: tuple[MixinSpec, ...] = (
    MixinSpec(
        name="mixin-events",
        module="test_events",
        description="EventLoopTestsMixin + UnixEventLoopTestsMixin + SubprocessTestsMixin, "
        "per backend (test_events.py's EPoll/Poll/SelectEventLoopTests)",
        concrete=("SelectEventLoopTests",),
        mixins=("UnixEventLoopTestsMixin|EventLoopTestsMixin", "SubprocessTestsMixin"),
        base="test_utils.TestCase",
        factory_attr="create_event_loop",
        per_backend=True,
        stem="EventLoopTests",
    ),
    MixinSpec(
        name="mixin-sock_lowlevel",
        module="test_sock_lowlevel",
        description="BaseSockTestsMixin (loop.sock_* API), per backend",
        concrete=("SelectEventLoopTests",),
        mixins=("BaseSockTestsMixin",),
        base="test_utils.TestCase",
        factory_attr="create_event_loop",
        per_backend=True,
        stem="SockTests",
    ),
    MixinSpec(
        name="mixin-sendfile",
        module="test_sendfile",
        description="SendfileTestsBase (SendfileMixin + SockSendfileMixin), per backend",
        concrete=("SelectEventLoopTests",),
        mixins=("SendfileTestsBase|SendfileMixin", "SockSendfileMixin"),
        base="test_utils.TestCase",
        factory_attr="create_event_loop",
        per_backend=True,
        stem="SendfileTests",
    ),
    MixinSpec(
        name="mixin-buffered_proto",
        module="test_buffered_proto",
        description="BaseTestBufferedProtocol (BufferedProtocolSelectorTests)",
        concrete=("BufferedProtocolSelectorTests",),
        mixins=("BaseTestBufferedProtocol",),
        base="unittest.TestCase",
        factory_attr="new_loop",
        per_backend=False,
        stem="BufferedProtocolTests",
    ),
    MixinSpec(
        name="mixin-server",
        module="test_server",
        description="BaseStartServer (SelectorStartServerTests)",
        concrete=("SelectorStartServerTests",),
        mixins=("BaseStartServer",),
        base="unittest.TestCase",
        factory_attr="new_loop",
        per_backend=False,
        stem="StartServerTests",
    ),
    MixinSpec(
        name="mixin-sslproto",
        module="test_sslproto",
        description="BaseStartTLS (SelectorStartTLSTests)",
        concrete=("SelectorStartTLSTests",),
        mixins=("BaseStartTLS",),
        base="unittest.TestCase",
        factory_attr="new_loop",
        per_backend=False,
        stem="StartTLSTests",
    ),
    # test_runners builds asyncio.BaseEventLoop()s with mocked internals in
    # BaseTest.new_loop (so the whole-module suite runs on stock asyncio):
    # these run RunTests and RunnerTests with the loop under test instead.
    MixinSpec(
        name="mixin-runners-run",
        module="test_runners",
        description="RunTests (asyncio.run) with the loop under test as the policy's loop",
        concrete=("RunTests",),
        mixins=(),
        base="unittest.TestCase",
        factory_attr="new_loop",
        per_backend=False,
        stem="RunTests",
        prepare=_runners_loop,
    ),
    MixinSpec(
        name="mixin-runners-runner",
        module="test_runners",
        description="RunnerTests (asyncio.Runner) with the loop under test as the policy's loop",
        concrete=("RunnerTests",),
        mixins=(),
        base="unittest.TestCase",
        factory_attr="new_loop",
        per_backend=False,
        stem="RunnerTests",
        prepare=_runners_loop,
    ),
    MixinSpec(
        name="mixin-subprocess",
        module="test_subprocess",
        description="SubprocessMixin (asyncio.create_subprocess_*), default child watcher",
        concrete=(),
        mixins=("SubprocessMixin",),
        base="test_utils.TestCase",
        factory_attr="create_event_loop",
        per_backend=False,
        add_loop_setup=True,
        stem="SubprocessTests",
    ),
)


@dataclass(frozen=True)
class Suite:
    name: str
    kind: str  # "mixin" or "module"
    description: str
    module: str
    spec: MixinSpec | None = field(default=None, compare=False)


#: Rough relative cost, so the longest suites start first (measured, 3.11).
WEIGHTS: dict[str, float] = {
    "test_events": 20.0,
    "mixin-events": 20.0,
    "test_tasks": 10.0,
    "test_subprocess": 12.0,
    "mixin-subprocess": 4.0,
    "test_ssl": 10.0,
    "test_sslproto": 6.0,
    "mixin-sslproto": 6.0,
    "test_streams": 4.0,
    "test_base_events": 4.0,
    "test_unix_events": 4.0,
    "test_sock_lowlevel": 4.0,
    "mixin-sock_lowlevel": 4.0,
    "test_sendfile": 3.0,
    "mixin-sendfile": 3.0,
    "test_runners": 2.0,
}


def test_asyncio_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{PACKAGE} is not installed with this interpreter")
    return Path(next(iter(spec.submodule_search_locations)))


def module_names() -> list[str]:
    """The test modules of ``test.test_asyncio`` for this interpreter."""
    return sorted(p.stem for p in test_asyncio_dir().glob("test_*.py") if p.stem not in _NOT_SUITES)


def all_suites() -> list[Suite]:
    available = set(module_names())
    suites = [
        Suite(m.name, "mixin", m.description, m.module, m) for m in MIXINS if m.module in available
    ]
    suites += [
        Suite(name, "module", f"{PACKAGE}.{name}, loop via asyncio.new_event_loop()", name)
        for name in sorted(available)
    ]
    return suites


def get_suite(name: str) -> Suite:
    for suite in all_suites():
        if suite.name == name:
            return suite
    raise KeyError(name)


# --------------------------------------------------------------------------
# Building (worker side)


def _resolve(module: Any, name: str) -> Any:
    for alternative in name.split("|"):
        obj = getattr(module, alternative, None)
        if obj is not None:
            return obj
    return None


class _LoopSetUpMixin:
    """For mixins (``SubprocessMixin``) whose concrete classes build the loop."""

    loop: Any

    def create_event_loop(self) -> Any:
        raise NotImplementedError

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.loop = self.create_event_loop()
        self.set_event_loop(self.loop)  # type: ignore[attr-defined]


def _mixin_bases(spec: MixinSpec, module: Any) -> tuple[tuple[type, ...], str]:
    """Bases for the generated class, and a note on how they were chosen."""
    for name in spec.concrete:
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, unittest.TestCase):
            return (cls,), f"derived from {spec.module}.{name}"
    mixins: list[type] = []
    for entry in spec.mixins:
        obj = _resolve(module, entry)
        if obj is None:
            continue
        # "SendfileTestsBase|SendfileMixin": skip parts already in the MRO.
        if any(issubclass(m, obj) for m in mixins):
            continue
        mixins.append(obj)
    if not mixins:
        return (), f"none of {spec.mixins} in {spec.module} on this Python"
    if spec.base == "test_utils.TestCase":
        base: type = importlib.import_module(f"{PACKAGE}.utils").TestCase
    else:
        base = unittest.TestCase
    bases: tuple[type, ...] = (*mixins, base)
    if spec.add_loop_setup:
        bases = (_LoopSetUpMixin, *bases)
    return bases, "composed from " + " + ".join(c.__name__ for c in bases)


def build_mixin_classes(
    spec: MixinSpec, loop_kind: str, backend: str | None
) -> tuple[list[type[unittest.TestCase]], str]:
    module = importlib.import_module(f"{PACKAGE}.{spec.module}")
    bases, note = _mixin_bases(spec, module)
    if not bases:
        return [], note
    if spec.per_backend:
        targets: list[str | None] = [backend] if backend else list(_loops.backends(loop_kind))
    else:
        targets = [backend]
    classes: list[type[unittest.TestCase]] = []
    for target in targets:
        factory = _loops.make_factory(loop_kind, target)
        name = f"{spec.stem}_{target or 'default'}"

        def make_loop(
            self: Any,
            _factory: Callable[[], Any] = factory,
            _prepare: Callable[[Any], Any] | None = spec.prepare,
        ) -> Any:
            loop = _factory()
            return loop if _prepare is None else _prepare(loop)

        namespace: dict[str, Any] = {
            spec.factory_attr: make_loop,
            "__module__": spec.name,
            "__qualname__": name,
            "__doc__": f"{note}; loop: {loop_kind} backend={target or 'default'}",
        }
        if spec.add_loop_setup and spec.factory_attr != "create_event_loop":
            namespace["create_event_loop"] = make_loop
        classes.append(type(name, bases, namespace))
    return classes, note


def build(suite: Suite, loop_kind: str, backend: str | None) -> tuple[unittest.TestSuite, str]:
    """The ``unittest`` suite for *suite*, and a one-line note about it."""
    loader = unittest.TestLoader()
    if suite.spec is not None:
        classes, note = build_mixin_classes(suite.spec, loop_kind, backend)
        tests = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in classes)
        return tests, note
    return loader.loadTestsFromName(f"{PACKAGE}.{suite.module}"), "whole module"


def iter_tests(suite: unittest.TestSuite | unittest.TestCase) -> Iterator[unittest.TestCase]:
    if isinstance(suite, unittest.TestSuite):
        for child in suite:
            yield from iter_tests(child)
    else:
        yield suite
