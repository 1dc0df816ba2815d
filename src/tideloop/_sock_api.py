"""The low-level ``loop.sock_*`` coroutines, as a mixin of ``EventLoop``.

Role: ``sock_recv``, ``sock_recv_into``, ``sock_recvfrom``, ``sock_recvfrom_into``,
``sock_sendall``, ``sock_sendto``, ``sock_connect``, ``sock_accept`` and
``sock_sendfile`` with stock asyncio's observable behaviour on every supported
Python (the code in ``asyncio/selector_events.py``, ``base_events.py`` and
``unix_events.py`` is the same for 3.11 to 3.13 except where noted), written
from scratch against a handful of loop internals:
``_check_closed``, ``_debug``, ``_add_reader``/``_remove_reader``,
``_add_writer``/``_remove_writer``, ``_ensure_fd_no_transport`` and the public
``create_future``, ``run_in_executor`` and ``getaddrinfo``.

Invariants:
- Try first, wait second. Every operation calls the socket once before it
  creates anything; only ``BlockingIOError``/``InterruptedError`` lead to a
  future and a readiness registration. When data is already there,
  ``sock_recv`` is one ``recv`` call and no allocation beyond its result.
- Checks run where asyncio runs them, so errors match in type, message and
  order: the ``SSLSocket`` check, then the non-blocking check (debug mode
  only, as asyncio does it), then the call. ``_ensure_fd_no_transport`` and
  the closed-loop check happen only on the waiting path, as in asyncio (a
  ``sock_recv`` that finds data succeeds even on a closed loop).
- A waiting operation owns exactly one registration and drops it when the
  awaiting coroutine resumes, whatever the outcome (result, error,
  cancellation), unless another registration has replaced it meanwhile (its
  handle is then cancelled and the fd belongs to someone else). asyncio does
  the same from a future done-callback; a ``try/finally`` around the await
  costs no ``functools.partial`` and no callback.
- A readiness callback first checks ``fut.done()``: once the future is
  cancelled it never touches the socket again, so no data is consumed for a
  waiter that is gone. It reads the socket through the socket object, never
  through a saved fd number, so a socket closed meanwhile fails with EBADF
  instead of touching a reused descriptor.

Deliberate departures from asyncio, each a bug there:
- ``sock_accept``'s readiness callback checks ``fut.done()`` (asyncio's does
  not: a connection that arrives in the iteration where the waiter is
  cancelled is accepted and then dropped, with an ``InvalidStateError``
  reported to the exception handler).
- ``sock_sendall`` counts bytes, not items, for buffers whose item size is
  not 1 (asyncio compares ``send()``'s byte count with ``len()`` of e.g. an
  ``array('i')`` and spins forever).
- ``sock_sendfile``'s zero-copy path keeps its writer registered for the
  whole transfer and calls ``os.sendfile`` until it would block, instead of
  re-registering for every chunk; a small file is sent without a future. It
  checks for a closed loop before the first ``os.sendfile`` (asyncio sends
  one chunk, then fails with the same ``RuntimeError``), and updates the file
  position when cancelled (asyncio does so only if its callback was already
  queued; its fallback path always does).

Must not import the loop (``_loop`` imports this module).
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Final, Protocol, TypeVar, TypeVarTuple, Unpack

from ._signals import SignalsPart

try:
    from ssl import SSLSocket as _SSLSocket
except ImportError:  # pragma: no cover - Python built without ssl

    class _SSLSocket:  # type: ignore[no-redef]
        """Stands in for ``ssl.SSLSocket``: nothing is an instance of it."""


if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer


__all__ = ["SockAPIPart"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

# asyncio.constants.SENDFILE_FALLBACK_READBUFFER_SIZE (unchanged 3.11-3.13).
SENDFILE_FALLBACK_READ_BYTES: Final = 256 * 1024
# Python 3.13 caps the native sendfile block at 1 GiB on 32-bit builds
# (sys.maxsize // 2 + 1); 3.11 and 3.12 pass the size through, so an
# enormous ``count`` raises OverflowError there. Match each version.
_SENDFILE_MAX_BLOCK_BYTES: Final = (
    sys.maxsize // 2 + 1 if sys.version_info >= (3, 13) else sys.maxsize
)
_HAS_IPV6: Final = hasattr(socket, "AF_INET6")
_HAS_SENDFILE: Final = hasattr(os, "sendfile")
_NOT_BLOCKING_MSG: Final = "the socket must be non-blocking"
_SSL_SOCKET_MSG: Final = "Socket cannot be of type SSLSocket"


class _HandleLike(Protocol):
    def cancelled(self) -> bool: ...


def _ipaddr_info(
    host: Any,
    port: Any,
    family: int,
    type: int,
    proto: int,
    flowinfo: int = 0,
    scopeid: int = 0,
) -> tuple[Any, ...] | None:
    """The address info for ``host`` if it is already a numeric IP, else None.

    Same logic, signature and name as asyncio's ``base_events._ipaddr_info``
    (so that even a wrong-arity address fails with the same TypeError), which
    spares the executor round trip of ``getaddrinfo`` for resolved addresses.
    """
    if not hasattr(socket, "inet_pton"):  # pragma: no cover - all supported OSes
        return None
    if proto not in {0, socket.IPPROTO_TCP, socket.IPPROTO_UDP} or host is None:
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None
    if port is None:
        port = 0
    elif isinstance(port, bytes) and port == b"":
        port = 0
    elif isinstance(port, str) and port == "":
        port = 0
    else:
        # A service name such as "http" needs getaddrinfo.
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None
    if family == socket.AF_UNSPEC:
        afs: list[int] = [socket.AF_INET]
        if _HAS_IPV6:
            afs.append(socket.AF_INET6)
    else:
        afs = [family]
    if isinstance(host, bytes):
        host = host.decode("idna")
    if "%" in host:
        # Linux's inet_pton rejects an IPv6 zone index ("::1%lo").
        return None
    for af in afs:
        try:
            socket.inet_pton(af, host)
        except OSError:
            continue
        if _HAS_IPV6 and af == socket.AF_INET6:
            return af, type, proto, "", (host, port, flowinfo, scopeid)
        return af, type, proto, "", (host, port)
    return None


def _check_sendfile_params(sock: socket.socket, file: Any, offset: Any, count: Any) -> None:
    # asyncio's BaseEventLoop._check_sendfile_params, same order and messages.
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


# The calls that readiness callbacks retry (see ``_on_sock_ready``). Each looks
# its socket method up at every retry, as asyncio's callbacks do: the method
# may be swapped while the operation waits (CPython's test_sendto_blocking
# does so on a Mock), so a bound method saved at registration would not do.


def _recv(sock: socket.socket, n: int) -> bytes:
    return sock.recv(n)


def _recv_into(sock: socket.socket, buf: WriteableBuffer) -> int:
    return sock.recv_into(buf)


def _recvfrom(sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
    return sock.recvfrom(bufsize)


def _recvfrom_into(sock: socket.socket, buf: WriteableBuffer, nbytes: int) -> tuple[int, Any]:
    return sock.recvfrom_into(buf, nbytes)


def _sendto(sock: socket.socket, data: ReadableBuffer, address: Any) -> int:
    # flags=0 passed explicitly, as asyncio's retries do (its first try doesn't).
    return sock.sendto(data, 0, address)


def _accept(sock: socket.socket) -> tuple[socket.socket, Any]:
    """``sock.accept()`` with the new connection made non-blocking."""
    conn, address = sock.accept()
    conn.setblocking(False)
    return conn, address


def _connect_result(sock: socket.socket, address: Any) -> None:
    """Raise the outcome of a pending non-blocking connect, if it failed.

    An errno of EAGAIN or EINTR makes ``OSError`` a BlockingIOError or an
    InterruptedError: the connect is then treated as still in progress, as
    asyncio's ``_sock_connect_cb`` does.
    """
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err != 0:
        raise OSError(err, f"Connect call failed {address}")


class _SendfileJob:
    """The state of one zero-copy ``sock_sendfile``."""

    __slots__ = ("blocksize", "count", "done", "fileno", "offset", "sock", "total_sent")

    def __init__(
        self, sock: socket.socket, fileno: int, offset: int, count: int | None, blocksize: int
    ) -> None:
        self.sock = sock
        self.fileno = fileno
        self.offset = offset
        self.count = count
        self.blocksize = blocksize
        self.total_sent = 0
        self.done = False

    def update_filepos(self) -> None:
        if self.total_sent > 0:
            os.lseek(self.fileno, self.offset, os.SEEK_SET)

    def send_some(self) -> BaseException | None:
        """Call ``os.sendfile`` until it would block, finishes or fails.

        Returns the error to raise, or None; sets ``done`` at end of file or
        when ``count`` bytes went out. The file position is updated whenever
        the job ends. Error mapping as asyncio's
        ``_sock_sendfile_native_impl``: a failure before anything was sent
        becomes SendfileNotAvailableError (the fallback path then meets the
        real error, if there is one), a later ENOTCONN a ConnectionError.
        The socket's fd is read at every call: a socket closed meanwhile
        fails with EBADF rather than writing to a reused descriptor.
        """
        count = self.count
        blocksize = self.blocksize
        try:
            while True:
                if count:
                    blocksize = count - self.total_sent
                    if blocksize <= 0:
                        break
                try:
                    sent = os.sendfile(self.sock.fileno(), self.fileno, self.offset, blocksize)
                except (BlockingIOError, InterruptedError):
                    return None
                if sent == 0:
                    break  # end of file
                self.offset += sent
                self.total_sent += sent
        except OSError as exc:
            self.done = True
            if self.total_sent == 0:
                return asyncio.SendfileNotAvailableError("os.sendfile call failed")
            self.update_filepos()
            if exc.errno == errno.ENOTCONN and type(exc) is not ConnectionError:
                # The peer went away mid-transfer: normalise as asyncio does,
                # for consistency across POSIX systems.
                new_exc = ConnectionError("socket is not connected", errno.ENOTCONN)
                new_exc.__cause__ = exc
                return new_exc
            return exc
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.done = True
            self.update_filepos()
            return exc
        self.done = True
        self.update_filepos()
        return None


class SockAPIPart(SignalsPart):
    """``loop.sock_*`` for ``EventLoop``. Holds no state of its own."""

    __slots__ = ()

    # -- the shared shape: checks, one try, then one registration ------------

    def _check_sock(self, sock: socket.socket) -> None:
        """asyncio's checks, in its order: ``SSLSocket``, then (debug) blocking."""
        if isinstance(sock, _SSLSocket):
            raise TypeError(_SSL_SOCKET_MSG)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError(_NOT_BLOCKING_MSG)

    async def _sock_wait_readable(
        self, sock: socket.socket, call: Callable[[Unpack[_Ts]], _T], *args: *_Ts
    ) -> _T:
        """Await ``call(*args)``, retried whenever ``sock`` is readable.

        For after the caller's own first try would have blocked: a future and
        one reader registration (``_on_sock_ready``), dropped on resumption.
        ``sock_recv``'s waits come here too: the extra coroutine costs ~0.5 us
        per wait, about 4% on the ``sock_echo`` micro benchmark (measured).
        """
        fut: asyncio.Future[_T] = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        handle: _HandleLike = self._add_reader(fd, self._on_sock_ready, fut, call, *args)
        try:
            return await fut
        finally:
            if not handle.cancelled():
                self._remove_reader(fd)
            # Break the exception -> traceback -> frame -> fut -> exception
            # cycle (asyncio does this in sock_connect).
            del fut, handle

    async def _sock_wait_writable(
        self, sock: socket.socket, callback: Callable[..., None], *args: Any
    ) -> Any:
        """Register ``callback(fut, *args)`` for writing and await ``fut``."""
        fut = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        handle: _HandleLike = self._add_writer(fd, callback, fut, *args)
        try:
            return await fut
        finally:
            if not handle.cancelled():
                self._remove_writer(fd)
            # Break the exception -> traceback -> frame -> fut -> exception
            # cycle (asyncio does this in sock_connect).
            del fut, handle

    def _on_sock_ready(
        self, fut: asyncio.Future[_T], call: Callable[[Unpack[_Ts]], _T], *args: *_Ts
    ) -> None:
        """Readiness callback: settle ``fut`` with ``call(*args)``'s outcome."""
        if fut.done():
            return  # cancelled while this callback was queued
        try:
            result = call(*args)
        except (BlockingIOError, InterruptedError):
            return  # spurious wake-up: stay registered
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    # -- receiving -------------------------------------------------------------

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        """Receive up to ``n`` bytes from ``sock``."""
        self._check_sock(sock)
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait_readable(sock, _recv, sock, n)

    async def sock_recv_into(self, sock: socket.socket, buf: WriteableBuffer) -> int:
        """Receive into the writable buffer ``buf``; return the byte count."""
        self._check_sock(sock)
        try:
            return sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait_readable(sock, _recv_into, sock, buf)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram of up to ``bufsize`` bytes: ``(data, address)``."""
        self._check_sock(sock)
        try:
            return sock.recvfrom(bufsize)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait_readable(sock, _recvfrom, sock, bufsize)

    async def sock_recvfrom_into(
        self, sock: socket.socket, buf: WriteableBuffer, nbytes: int = 0
    ) -> tuple[int, Any]:
        """Receive a datagram into ``buf``: ``(byte count, address)``."""
        self._check_sock(sock)
        if not nbytes:
            nbytes = len(buf)  # type: ignore[arg-type]  # as asyncio: len(), not nbytes
        try:
            return sock.recvfrom_into(buf, nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait_readable(sock, _recvfrom_into, sock, buf, nbytes)

    # -- sending ---------------------------------------------------------------

    async def sock_sendall(self, sock: socket.socket, data: ReadableBuffer) -> None:
        """Send all of ``data``; on cancellation, what was sent stays sent."""
        self._check_sock(sock)
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n == len(data):  # type: ignore[arg-type]
            return
        view = memoryview(data)
        if view.itemsize != 1 or view.ndim != 1:
            view = view.cast("B")  # count bytes, not items (see the docstring)
            if n == len(view):
                return
        try:
            # The list is the mutable send position, shared with the callback.
            await self._sock_wait_writable(sock, self._on_sock_sendall, sock, view, [n])
        finally:
            # Unlock a bytearray at once, even if a traceback keeps this frame.
            view.release()

    def _on_sock_sendall(
        self, fut: asyncio.Future[None], sock: socket.socket, view: memoryview, pos: list[int]
    ) -> None:
        if fut.done():
            return  # cancelled while this callback was queued
        start = pos[0]
        try:
            n = sock.send(view[start:])
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            return
        start += n
        if start == len(view):
            fut.set_result(None)
        else:
            pos[0] = start

    async def sock_sendto(self, sock: socket.socket, data: ReadableBuffer, address: Any) -> int:
        """Send one datagram to ``address``; return the byte count."""
        self._check_sock(sock)
        try:
            return sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            pass
        sent: int = await self._sock_wait_writable(
            sock, self._on_sock_ready, _sendto, sock, data, address
        )
        return sent

    # -- connecting and accepting ---------------------------------------------

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect ``sock``; resolve a host name of an AF_INET/AF_INET6 address."""
        self._check_sock(sock)
        family = sock.family
        if family == socket.AF_INET or (_HAS_IPV6 and family == socket.AF_INET6):
            # asyncio's _ensure_resolved: numeric hosts skip the executor.
            host, port = address[:2]
            info = _ipaddr_info(host, port, family, sock.type, sock.proto, *address[2:])
            if info is not None:
                address = info[4]
            else:
                infos = await self.getaddrinfo(
                    host, port, family=family, type=sock.type, proto=sock.proto, flags=0
                )
                address = infos[0][4]
        try:
            sock.connect(address)
        except (BlockingIOError, InterruptedError):
            # Issue #23618 (asyncio): after EINTR the connection proceeds in
            # the background, as after EINPROGRESS; wait for writability.
            pass
        else:
            return
        await self._sock_wait_writable(sock, self._on_sock_ready, _connect_result, sock, address)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accept a connection: ``(conn, address)``, ``conn`` non-blocking."""
        self._check_sock(sock)
        try:
            return _accept(sock)
        except (BlockingIOError, InterruptedError):
            pass
        # Unlike asyncio's, the readiness callback checks fut.done() (see the
        # module docstring).
        return await self._sock_wait_readable(sock, _accept, sock)

    # -- sendfile ----------------------------------------------------------------

    async def sock_sendfile(
        self,
        sock: socket.socket,
        file: IO[bytes],
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool | None = True,
    ) -> int:
        """Send ``file`` over the stream socket ``sock``; return the byte count.

        Zero-copy ``os.sendfile`` where the file allows it, else (when
        ``fallback``) reads in the default executor and ``sock_sendall``.
        """
        # asyncio checks blocking before SSLSocket here, unlike elsewhere.
        if self._debug and sock.gettimeout() != 0:
            raise ValueError(_NOT_BLOCKING_MSG)
        if isinstance(sock, _SSLSocket):
            raise TypeError(_SSL_SOCKET_MSG)
        _check_sendfile_params(sock, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(
        self, sock: socket.socket, file: IO[bytes], offset: int, count: int | None
    ) -> int:
        """``os.sendfile`` from ``offset``; SendfileNotAvailableError if impossible.

        Like asyncio: the file's own position is ignored and, once something
        was sent, set to just after the last byte sent. ``count=None`` sends
        until ``os.sendfile`` reports end of file, asking each time for the
        file size as it was at the start.
        """
        if not _HAS_SENDFILE:  # pragma: no cover - every POSIX we support has it
            raise asyncio.SendfileNotAvailableError("os.sendfile() is not available")
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise asyncio.SendfileNotAvailableError("not a regular file")
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise asyncio.SendfileNotAvailableError("not a regular file")
        blocksize = count if count else fsize
        if not blocksize:
            return 0  # empty file (or a pipe: asyncio sends nothing either)
        self._check_closed()
        job = _SendfileJob(sock, fileno, offset, count, min(blocksize, _SENDFILE_MAX_BLOCK_BYTES))
        error = job.send_some()
        if error is not None:
            raise error
        if job.done:
            return job.total_sent  # a small file: no future, no registration
        try:
            await self._sock_wait_writable(sock, self._on_sock_sendfile, job)
        except BaseException:
            # Cancelled (or interrupted): leave the position after what was
            # sent, as the fallback path does.
            if not job.done:
                job.update_filepos()
            raise
        return job.total_sent

    def _on_sock_sendfile(self, fut: asyncio.Future[None], job: _SendfileJob) -> None:
        if fut.done():
            return
        error = job.send_some()
        if error is not None:
            fut.set_exception(error)
        elif job.done:
            fut.set_result(None)

    async def _sock_sendfile_fallback(
        self, sock: socket.socket, file: IO[bytes], offset: int, count: int | None
    ) -> int:
        """Read blocks in the default executor and ``sock_sendall`` them.

        asyncio's quirks kept: ``offset=0`` means the current file position
        (no seek), yet the final position is ``offset + total_sent``.
        """
        if offset:
            file.seek(offset)
        blocksize = (
            min(count, SENDFILE_FALLBACK_READ_BYTES) if count else SENDFILE_FALLBACK_READ_BYTES
        )
        buf = bytearray(blocksize)
        total_sent = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        break
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)  # type: ignore[attr-defined]
                if not read:
                    break  # end of file
                await self.sock_sendall(sock, view[:read])
                total_sent += read
            return total_sent
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)
