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
STREAMS = "stream transports (create_connection/create_server/create_unix_*): issue #4"
SENDFILE = "loop.sendfile on transports needs stream transports: issue #4"
DGRAM = "datagram endpoints: issue #5"
PIPES = "pipe transports (connect_read_pipe/connect_write_pipe): issue #5"
SUBPROCESS = "subprocess transports: issue #5"
TLS = "TLS / start_tls: issue #6"
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
SENDFILE_MIXIN = "mixin-sendfile.SendfileTests_*"
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
    # -- stream transports: issue #4 ---------------------------------------
    *_group(
        EVENTS,
        """
        test_connect_accepted_socket
        test_create_connection test_create_connection_local_addr
        test_create_connection_local_addr_in_use
        test_create_connection_local_addr_nomatch_family
        test_create_connection_local_addr_skip_different_family
        test_create_server test_create_server_addr_in_use test_create_server_dual_stack
        test_create_server_multiple_hosts_ipv4 test_create_server_multiple_hosts_ipv6
        test_create_server_reuse_port test_create_server_sock test_create_server_trsock
        test_server_close
        test_create_unix_connection test_create_unix_server
        test_create_unix_server_path_socket_error
        """,
        STREAMS,
    ),
    *_group(SOCK, "test_create_connection_sock", STREAMS),
    *_group("mixin-buffered_proto.*", "test_buffered_proto_create_connection", STREAMS),
    *_group("mixin-server.*", "test_start_server_1 test_start_unix_server_1", STREAMS),
    *_group(f"{T}.test_events.TestServer", "test_get_loop", STREAMS),
    *_group(
        f"{T}.test_server.TestServer2",
        "test_abort_clients test_close_clients test_wait_closed_basic test_wait_closed_race",
        STREAMS,
    ),
    *_group(
        f"{T}.test_server.UnixServerCleanupTests",
        """
        test_unix_server_addr_cleanup test_unix_server_cleanup_gone
        test_unix_server_cleanup_replaced test_unix_server_sock_cleanup
        """,
        STREAMS,
    ),
    # 3.13 passes cleanup_socket=, which AbstractEventLoop's stub doesn't take.
    *_group(
        f"{T}.test_server.UnixServerCleanupTests",
        "test_unix_server_cleanup_prevented",
        STREAMS,
        match=r"NotImplementedError|unexpected keyword argument 'cleanup_socket'",
    ),
    *_group(
        f"{T}.test_streams.StreamTests",
        """
        test_async_writer_api test_async_writer_api_exception_after_close
        test_drain_raises test_eof_feed_when_closing_writer
        test_open_connection test_open_connection_error
        test_open_unix_connection test_open_unix_connection_error
        test_start_server test_start_unix_server
        test_unclosed_resource_warnings test_unclosed_server_resource_warnings
        test_unhandled_cancel test_unhandled_exception test_unhandled_exceptions
        test_wait_closed_on_close test_wait_closed_on_close_with_unread_data
        """,
        STREAMS,
    ),
    *_group(
        f"{T}.test_unix_events.TestFunctional", "test_add_reader_or_writer_transport_fd", STREAMS
    ),
    # -- loop.sendfile / sock_sendfile tests that need transports: issue #4 --
    *_group(
        SENDFILE_MIXIN,
        """
        test_sendfile test_sendfile_close_peer_after_receiving
        test_sendfile_close_peer_in_the_middle_of_receiving
        test_sendfile_fallback_close_peer_in_the_middle_of_receiving
        test_sendfile_for_closing_transp test_sendfile_force_fallback
        test_sendfile_force_unsupported_native test_sendfile_partial
        test_sendfile_pre_and_post_data test_sendfile_prevents_bare_write
        """,
        SENDFILE,
    ),
    # loop.sendfile() itself raises NotImplementedError (a RuntimeError), so
    # assertRaisesRegex(RuntimeError, 'fallback is disabled') sees "".
    *_group(
        SENDFILE_MIXIN,
        "test_sendfile_no_fallback_for_fallback_transport",
        SENDFILE,
        match=r'"fallback is disabled" does not match ""',
    ),
    *_group(
        SENDFILE_MIXIN,
        """
        test_sock_sendfile_mix_with_regular_send test_sock_sendfile_success
        test_sock_sendfile_with_offset_and_count test_sock_sendfile_zero_size
        """,
        "sock_sendfile tests whose server side is loop.create_server: issue #4",
    ),
    # -- TLS: issue #6 (these also need stream transports, issue #4) --------
    *_group(
        EVENTS,
        """
        test_connect_accepted_socket_ssl_timeout_for_plain_socket
        test_ssl_connect_accepted_socket test_create_ssl_connection
        test_create_ssl_unix_connection test_create_server_ssl
        test_create_server_ssl_match_failed test_create_server_ssl_verified
        test_create_server_ssl_verify_failed test_create_unix_server_ssl
        test_create_unix_server_ssl_verified test_create_unix_server_ssl_verify_failed
        """,
        TLS,
    ),
    *_group(
        SENDFILE_MIXIN,
        """
        test_sendfile_ssl test_sendfile_ssl_close_peer_after_receiving
        test_sendfile_ssl_partial test_sendfile_ssl_pre_and_post_data
        """,
        TLS,
    ),
    *_group(
        "mixin-sslproto.*",
        """
        test_create_connection_memory_leak test_create_connection_ssl_failed_certificate
        test_create_connection_ssl_slow_handshake test_handshake_timeout
        test_start_tls_client_buf_proto_1 test_start_tls_client_corrupted_ssl
        test_start_tls_client_reg_proto_1 test_start_tls_slow_client_cancel
        test_start_tls_server_1 test_start_tls_wrong_args
        """,
        TLS,
    ),
    *_group(
        f"{T}.test_ssl.TestSSL",
        """
        test_connect_timeout_warning test_create_connection_memory_leak
        test_create_connection_ssl_1 test_create_connection_ssl_failed_certificate
        test_create_connection_ssl_slow_handshake test_create_server_ssl_1
        test_create_server_ssl_over_ssl test_flush_before_shutdown
        test_handshake_timeout_handler_leak test_remote_shutdown_receives_trailing_data
        test_shutdown_cleanly test_shutdown_timeout_handler_leak
        test_shutdown_timeout_handler_not_set test_ssl_handshake_connection_lost
        test_ssl_handshake_timeout test_start_tls_client_buf_proto_1
        test_start_tls_client_corrupted_ssl test_start_tls_client_reg_proto_1
        test_start_tls_server_1 test_start_tls_slow_client_cancel
        """,
        TLS,
    ),
    # The connect_accepted_socket task dies with NotImplementedError while the
    # test sits in run_forever() waiting for connection_lost: it hangs.
    *_group(
        f"{T}.test_ssl.TestSSL", "test_connect_accepted_socket", TLS, match=None, may_hang=True
    ),
    *_group(
        f"{T}.test_streams.StreamTests",
        "test_open_connection_no_loop_ssl test_open_unix_connection_no_loop_ssl test_start_tls",
        TLS,
    ),
    # -- datagram endpoints: issue #5 ---------------------------------------
    *_group(
        EVENTS,
        """
        test_create_datagram_endpoint test_create_datagram_endpoint_ipv6
        test_create_datagram_endpoint_sock test_datagram_send_to_non_listening_address
        """,
        DGRAM,
    ),
    *_group(SENDFILE_MIXIN, "test_sendfile_not_supported", DGRAM),
    # -- pipes: issue #5 ----------------------------------------------------
    *_group(
        EVENTS,
        """
        test_bidirectional_pty test_read_pipe test_read_pty_output
        test_unclosed_pipe_transport test_write_pipe test_write_pipe_disconnect_on_close
        test_write_pty
        """,
        PIPES,
    ),
    *_group(f"{T}.test_streams.StreamTests", "test_read_all_from_pipe_reader", PIPES),
    # -- subprocess: issue #5 -----------------------------------------------
    *_group(
        EVENTS,
        """
        test_subprocess_close_after_finish test_subprocess_close_client_stream
        test_subprocess_exec test_subprocess_exec_invalid_args test_subprocess_exitcode
        test_subprocess_interactive test_subprocess_kill test_subprocess_send_signal
        test_subprocess_shell test_subprocess_shell_invalid_args test_subprocess_stderr
        test_subprocess_stderr_redirect_to_stdout test_subprocess_terminate
        test_subprocess_wait_no_same_group
        """,
        SUBPROCESS,
    ),
    *_group((SUBPROCESS_MIXIN, SUBPROCESS_WATCHERS), _SUBPROCESS_MIXIN_METHODS, SUBPROCESS),
    *_group(
        f"{T}.test_subprocess.GenericWatcherTests", "test_create_subprocess_with_pidfd", SUBPROCESS
    ),
    # Expects the loop to consult asyncio's child watcher (is_active()).
    *_group(
        f"{T}.test_subprocess.GenericWatcherTests",
        "test_create_subprocess_fails_with_inactive_watcher",
        SUBPROCESS,
        match=r"Lists differ: \[\] != \[call\.__enter__\(\)",
    ),
    # create_subprocess_exec fails inside a forked child: only the exit value
    # (result.value stays 1) reaches the test.
    *_group(
        f"{T}.test_unix_events.TestFork",
        "test_fork_asyncio_subprocess",
        SUBPROCESS,
        match=r"AssertionError: 1 != 0",
    ),
    # -- private asyncio internals ------------------------------------------
    # Public assertions pass; then the test calls the selector loop's private
    # loop._stop_serving(sock).
    *_group(
        EVENTS,
        "test_prompt_cancellation",
        f"{PRIVATE}: loop._stop_serving()",
        match=r"has no attribute '_stop_serving'",
    ),
    # Counts loop._run_once calls (tideloop: 12 on every backend, the ideal),
    # but the assertion message reads loop._clock_resolution and loop._selector.
    *_group(
        EVENTS,
        "test_timeout_rounding",
        f"{PRIVATE}: loop._selector / loop._clock_resolution",
        match=r"has no attribute '_(selector|clock_resolution|run_once)'",
    ),
    # _sock_sendfile_native(_impl) and loop._selector of _UnixSelectorEventLoop;
    # today they already fail in prepare(), on create_server (issue #4).
    *_group(
        f"{T}.test_unix_events.SelectorEventLoopUnixSockSendfileTests",
        """
        test_sock_sendfile_blocking_error test_sock_sendfile_cancel1
        test_sock_sendfile_cancel2 test_sock_sendfile_exception
        test_sock_sendfile_iobuffer test_sock_sendfile_not_a_file
        test_sock_sendfile_not_available test_sock_sendfile_not_regular_file
        test_sock_sendfile_os_error_first_call test_sock_sendfile_os_error_next_call
        """,
        f"{PRIVATE}: loop._sock_sendfile_native / loop._selector (and create_server, issue #4)",
        match=r"NotImplementedError|has no attribute '_",
    ),
)
