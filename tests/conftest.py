"""Shared fixtures: every behaviour test runs on stock asyncio (the oracle) and
on tideloop with each available backend.

Teardown checks what a user would notice: the loop is closed, no exception
handler call went unexamined, and no file descriptor leaked.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest

import tideloop

from .support.clock import FakeClock

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

LOOP_KINDS = ["asyncio"] + [f"tideloop-{name}" for name in tideloop.available_backends()]
# The oracle and tideloop's default backend: for costly tests, where the other
# backends would add time but little coverage (``parametrize("loop_kind",
# MAIN_LOOP_KINDS, indirect=True)``).
MAIN_LOOP_KINDS = ["asyncio", f"tideloop-{tideloop.available_backends()[0]}"]


def make_factory(kind: str) -> LoopFactory:
    if kind == "asyncio":
        return asyncio.new_event_loop
    backend = kind.split("-", 1)[1]
    return lambda: tideloop.new_event_loop(backend=backend)


def _open_fds() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError:  # pragma: no cover - not Linux
        return set()


class ErrorLog(list[dict[str, Any]]):
    """Contexts passed to the loop's exception handler during a test.

    A test that expects handler calls takes them with ``take()``; whatever is
    left at teardown fails the test.
    """

    def take(self) -> list[dict[str, Any]]:
        items = list(self)
        self.clear()
        return items


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def loop_factory(loop_kind: str) -> LoopFactory:
    return make_factory(loop_kind)


@pytest.fixture
def is_tideloop(loop_kind: str) -> bool:
    return loop_kind.startswith("tideloop")


@pytest.fixture
def errors() -> ErrorLog:
    return ErrorLog()


@pytest.fixture
def loop(loop_factory: LoopFactory, errors: ErrorLog) -> Iterator[asyncio.AbstractEventLoop]:
    before = _open_fds()
    lp = loop_factory()
    lp.set_exception_handler(lambda _lp, ctx: errors.append(ctx))
    try:
        yield lp
    finally:
        try:
            if not lp.is_closed() and not lp.is_running():
                lp.run_until_complete(lp.shutdown_asyncgens())
                # As asyncio.run does: wait for executor jobs still running.
                # (aiohttp closes a served file in the executor without
                # awaiting it; the fd check below would race that close.)
                lp.run_until_complete(lp.shutdown_default_executor())
        finally:
            if not lp.is_closed():
                lp.close()
            asyncio.set_event_loop(None)
    leaked = _open_fds() - before
    assert not leaked, f"file descriptors leaked: {sorted(leaked)}"
    assert not errors, f"unexpected exception handler calls: {list(errors)}"


@pytest.fixture
def fake_clock(loop: asyncio.AbstractEventLoop) -> Iterator[FakeClock]:
    """The loop's ``time()`` replaced by a clock the test advances
    (tests/support/clock.py), starting at the loop's current time."""
    clock = FakeClock(loop.time())
    with mock.patch.object(loop, "time", clock.time):
        yield clock
