"""tideloop.testing: virtual time in the test runners people use.

Each case runs a small test project in a pytest subprocess, as a user's
project would run: the plugin comes from the installed ``pytest11`` entry
point; pytest-asyncio picks the loop factory from its
``pytest_asyncio_loop_factories`` hook, anyio from its ``anyio_backend``
options, and unittest from ``IsolatedAsyncioTestCase.loop_factory`` (3.13+).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tideloop
import tideloop.testing

PYTEST_INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
filterwarnings = error
addopts = -p no:cacheprovider
"""

CONFTEST = """
import pytest
import tideloop.testing


def pytest_asyncio_loop_factories(config, item):
    # pytest-asyncio: every asyncio test runs on a loop with a virtual clock.
    return {"virtual-time": tideloop.testing.virtual_loop_factory()}


@pytest.fixture
def anyio_backend(virtual_loop_factory):
    # anyio: the asyncio backend, on loops running on the virtual_clock fixture.
    return ("asyncio", {"loop_factory": virtual_loop_factory})
"""

TESTS = """
import asyncio
import sys
import time
import unittest

import anyio
import pytest

import tideloop
import tideloop.testing


def test_fixtures(virtual_clock, virtual_loop_factory):
    with asyncio.Runner(loop_factory=virtual_loop_factory) as runner:
        runner.run(asyncio.sleep(3600))
    assert virtual_clock.time() == 3600


@pytest.mark.asyncio
async def test_pytest_asyncio():
    loop = asyncio.get_running_loop()
    assert type(loop) is tideloop.EventLoop
    t0 = time.perf_counter()
    await asyncio.sleep(3600)
    assert loop.time() == 3600 == tideloop.testing.current_clock().time()
    assert time.perf_counter() - t0 < 1


@pytest.mark.anyio
async def test_anyio(virtual_clock):
    assert type(asyncio.get_running_loop()) is tideloop.EventLoop
    with anyio.move_on_after(60):
        await anyio.sleep(3600)
    assert virtual_clock.time() == 60
    assert tideloop.testing.current_clock() is virtual_clock


@unittest.skipIf(sys.version_info < (3, 13), "IsolatedAsyncioTestCase.loop_factory is 3.13+")
class TestUnittest(unittest.IsolatedAsyncioTestCase):
    loop_factory = tideloop.testing.virtual_loop_factory()

    async def test_sleep(self):
        loop = asyncio.get_running_loop()
        self.assertIs(type(loop), tideloop.EventLoop)
        async with asyncio.timeout(10):
            await asyncio.sleep(5)
        self.assertEqual(loop.time(), 5)
"""


def test_runners_on_virtual_time(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(PYTEST_INI)
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "test_project.py").write_text(textwrap.dedent(TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = {
        line.split("::")[-1].split()[0] for line in proc.stdout.splitlines() if " PASSED" in line
    }
    expected = {"test_fixtures", "test_pytest_asyncio", "test_anyio"}
    if sys.version_info >= (3, 13):
        expected.add("test_sleep")
    assert passed == expected, proc.stdout


def test_factory_without_a_clock_gives_each_loop_its_own() -> None:
    factory = tideloop.testing.virtual_loop_factory(start=10.0, autojump_threshold=1.5)
    loops = [factory(), factory()]
    try:
        loops[0].run_until_complete(asyncio.sleep(0))
        clocks = [tideloop._clock.clock_of(loop) for loop in loops]
        assert clocks[0] is not clocks[1]
        assert all(c is not None and c.time() == 10.0 for c in clocks)
        assert all(c is not None and c.autojump_threshold == 1.5 for c in clocks)
    finally:
        for loop in loops:
            loop.close()


def test_factory_with_a_clock_and_loop_options() -> None:
    clock = tideloop.VirtualClock()
    factory = tideloop.testing.virtual_loop_factory(clock, metrics=True, backend="select")
    assert factory.clock is clock
    loop = factory()
    try:
        loop.run_until_complete(asyncio.sleep(7))
        assert clock.time() == 7.0
        assert loop.stats()["backend"] == "select"
        assert loop.metrics().lag.count == 1
    finally:
        loop.close()


def test_current_clock_needs_a_virtual_loop() -> None:
    async def probe() -> None:
        with pytest.raises(RuntimeError, match="has no virtual clock"):
            tideloop.testing.current_clock()

    loop = tideloop.new_event_loop()
    try:
        loop.run_until_complete(probe())
    finally:
        loop.close()
