"""What the stream benchmark's server and load generators agree on.

The echo server (``_echo_server``) and both load generators (the C one and
the Python fallback in ``_loadgen``) import these constants; the C client gets
them formatted into its source, so changing one here changes the binary's
cache key as well.

Imports: standard library only (the load generator must stay light).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "HANDLERS",
    "HTTP_REQUEST",
    "HTTP_RESPONSE",
    "SPLIT_HEAD_BYTES",
    "c_bytes_literal",
]

#: The server's handler kinds.  ``buffered-zero-copy`` is the BufferedProtocol
#: echo that writes a view of its receive buffer; ``split`` is the Protocol
#: echo written as two writes (a small head, then the rest); ``http`` a
#: keep-alive HTTP/1.1 server on Protocol.
HANDLERS: Final = ("protocol", "buffered", "buffered-zero-copy", "streams", "split", "http")

#: Size of the first write of the ``split`` handler (a "header").
SPLIT_HEAD_BYTES: Final = 8

#: The one request the HTTP load generator sends, again and again, on each
#: connection (keep-alive, no body).
HTTP_REQUEST: Final = (
    b"GET /bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: tideloop-bench\r\nAccept: */*\r\n\r\n"
)

_BODY: Final = b"Hello, tideloop!\n"

#: The fixed response of the HTTP server; the client compares every byte.
HTTP_RESPONSE: Final = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n" + _BODY
)


def c_bytes_literal(data: bytes) -> str:
    """``data`` as a C initializer list (``{0x47, 0x45, ...}``)."""
    return "{" + ", ".join(f"0x{b:02x}" for b in data) + "}"
