"""Expected failures of the conformance run: the one list to shrink.

Each :class:`XFail` names tests by an ``fnmatch`` pattern over the full test
id (see ``run.py --suite NAME --list`` for the ids) and says *why* they fail.
The runner gives them ``unittest.expectedFailure`` semantics:

* a listed test that fails or errors (or times out) counts as **xfail**;
* a listed test that passes counts as **xpass**: not fatal, but printed at the
  end so the entry can be deleted;
* ``match``, when given, is a regular expression that must be found in the
  failure text (traceback, captured output) for the entry to apply. Use it so
  an entry for "not implemented yet" cannot hide a different, real failure:
  a listed test failing for another reason is reported as a plain failure.

Optional filters: ``python`` (``"3.12"``, ``">=3.12"``, ``"<3.13"``) and
``loop`` (``"tideloop"``, the default, or ``"asyncio"`` for environment
problems that also hit stock asyncio). ``may_hang=True`` says the test hangs
instead of failing (e.g. a task dies with ``NotImplementedError`` while the
test waits in ``run_forever()``): a timeout then counts as xfail rather than
as an error. Listed tests run with the shorter ``--xfail-timeout``.

Rules of the house: only features that are *not implemented yet* (they raise
``NotImplementedError`` and have an issue) and tests of asyncio's *private*
internals go here. A failure of the loop core (lifecycle, call_soon/later/at,
threadsafe, executors, getaddrinfo/getnameinfo, add_reader/writer, the
``sock_*`` API, signals) is a bug: report it, don't list it.

The entries are written as (class pattern, method names) groups with
:func:`_group`; each expands to one ``XFail`` per method.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from dataclasses import dataclass

# Reasons, one per pending issue.
PRIVATE = "uses asyncio private internals, not part of the loop API"

NOT_IMPLEMENTED = r"NotImplementedError"


@dataclass(frozen=True)
class XFail:
    pattern: str
    reason: str
    python: str | None = None
    loop: str = "tideloop"
    match: str | None = None
    may_hang: bool = False

    def applies(self, test_id: str, loop: str, version: tuple[int, int]) -> bool:
        if loop != self.loop or not fnmatch.fnmatchcase(test_id, self.pattern):
            return False
        return self.python is None or _version_ok(self.python, version)

    def matches_failure(self, text: str) -> bool:
        return self.match is None or re.search(self.match, text) is not None


def _version_ok(spec: str, version: tuple[int, int]) -> bool:
    for op in (">=", "<=", ">", "<", "=="):
        if spec.startswith(op):
            want = tuple(int(x) for x in spec[len(op) :].split("."))
            break
    else:
        op, want = "==", tuple(int(x) for x in spec.split("."))
    have = version[: len(want)]
    return {
        ">=": have >= want,
        "<=": have <= want,
        ">": have > want,
        "<": have < want,
        "==": have == want,
    }[op]


def find(test_id: str, loop: str, version: tuple[int, int] | None = None) -> XFail | None:
    """The first entry that applies to *test_id*, if any."""
    if version is None:
        version = (sys.version_info.major, sys.version_info.minor)
    for entry in XFAILS:
        if entry.applies(test_id, loop, version):
            return entry
    return None


def _group(
    classes: str | tuple[str, ...],
    methods: str,
    reason: str,
    *,
    match: str | None = NOT_IMPLEMENTED,
    python: str | None = None,
    may_hang: bool = False,
) -> list[XFail]:
    """One entry per (class pattern, method); *methods* is whitespace separated."""
    if isinstance(classes, str):
        classes = (classes,)
    return [
        XFail(f"{cls}.{method}", reason, python=python, match=match, may_hang=may_hang)
        for cls in classes
        for method in methods.split()
    ]


# Class patterns. Mixin suites: one generated class per backend.
EVENTS = "mixin-events.EventLoopTests_*"
SOCK = "mixin-sock_lowlevel.SockTests_*"
SUBPROCESS_MIXIN = "mixin-subprocess.SubprocessTests_*"
T = "test.test_asyncio"
SUBPROCESS_WATCHERS = f"{T}.test_subprocess.Subprocess*WatcherTests"

# The SubprocessMixin tests (mixin-subprocess and every watcher class of
# test_subprocess); methods that exist only on some versions simply match
# nothing elsewhere.
_SUBPROCESS_MIXIN_METHODS = """
    test_cancel_make_subprocess_transport_exec test_cancel_post_init
    test_cancel_process_wait test_close_dont_kill_finished test_close_kill_running
    test_communicate test_communicate_ignore_broken_pipe test_communicate_none_input
    test_create_subprocess_env_exec test_create_subprocess_env_shell
    test_create_subprocess_exec_text_mode_fails test_create_subprocess_exec_with_path
    test_create_subprocess_shell_text_mode_fails test_devnull_error test_devnull_input
    test_devnull_output test_devstdin_input test_empty_input test_kill test_kill_issue43884
    test_pause_reading test_popen_error test_popen_error_with_stdin_pipe
    test_read_stdout_after_process_exit test_send_signal test_shell test_start_new_session
    test_stdin_broken_pipe test_stdin_not_inheritable test_stdin_stdout
    test_subprocess_communicate_stdout test_subprocess_concurrent_wait
    test_subprocess_protocol_events test_subprocess_send_signal_race test_terminate
"""

XFAILS: tuple[XFail, ...] = (
    # Expects the loop to consult asyncio's child watcher (is_active()).
    # tideloop watches children with pidfds (or a waiter thread), as CPython
    # 3.14 does; the deprecated child-watcher API is not consulted, by design.
    *_group(
        f"{T}.test_subprocess.GenericWatcherTests",
        "test_create_subprocess_fails_with_inactive_watcher",
        "child-watcher API not consulted, by design (pidfd/thread child watching)",
        match=r"RuntimeError not raised",
    ),
    # -- private asyncio internals --------------------------------------------
    # Counts loop._run_once calls (tideloop: 12 on every backend, the ideal),
    # but the assertion message reads loop._clock_resolution and loop._selector.
    *_group(
        EVENTS,
        "test_timeout_rounding",
        f"{PRIVATE}: loop._selector / loop._clock_resolution",
        match=r"has no attribute '_(selector|clock_resolution|run_once)'",
    ),
    # @mock.patch('asyncio.base_events.socket') plus mocked loop._start_serving:
    # with a real create_server the fake hosts 1.2.3.4/5.6.7.8 (and ::1:80)
    # are really bound.
    *_group(
        EVENTS,
        "test_create_server_multiple_hosts_ipv4 test_create_server_multiple_hosts_ipv6",
        f"{PRIVATE}: mocks asyncio.base_events.socket",
        match=r"could not bind|address already in use|getsockbyname|cannot assign requested",
    ),
    # _UnixSelectorEventLoop._sock_sendfile_native(_impl), loop._selector, and
    # mock.patch('asyncio.unix_events.os').
    *_group(
        f"{T}.test_unix_events.SelectorEventLoopUnixSockSendfileTests",
        """
        test_sock_sendfile_blocking_error test_sock_sendfile_cancel1
        test_sock_sendfile_cancel2 test_sock_sendfile_exception
        test_sock_sendfile_not_available
        test_sock_sendfile_os_error_first_call test_sock_sendfile_os_error_next_call
        """,
        f"{PRIVATE}: loop._sock_sendfile_native_impl / loop._selector / asyncio.unix_events.os",
        match=None,
    ),
)
