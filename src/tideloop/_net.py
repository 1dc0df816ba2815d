"""Name resolution helpers.

``fast_getaddrinfo`` answers ``loop.getaddrinfo`` on the loop thread when the
host is an IP address literal: then ``socket.getaddrinfo`` does no lookup at
all (it parses the literal), so calling it directly returns exactly what the
executor would, without a thread hop. Anything that could consult the
resolver, /etc/services or the interface list (names, service-name ports,
AI_ADDRCONFIG, scoped IPv6 addresses) returns None and goes to the executor as
in asyncio.
"""

from __future__ import annotations

import socket
from typing import Any, Final

_SAFE_FLAGS: Final = (
    socket.AI_NUMERICHOST | socket.AI_NUMERICSERV | socket.AI_PASSIVE | socket.AI_CANONNAME
)


def _is_ip_literal(host: str) -> bool:
    if "%" in host:
        return False  # scope ids may need an interface lookup
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return True
    return False


def _is_numeric_port(port: Any) -> bool:
    if port is None or type(port) is int:
        return True
    if isinstance(port, (str, bytes)):
        return port.isdigit()
    return False


def fast_getaddrinfo(
    host: Any, port: Any, family: int, type: int, proto: int, flags: int
) -> list[Any] | None:
    """``socket.getaddrinfo`` for an IP literal, or None when it might block."""
    if not isinstance(host, str) or not _is_numeric_port(port) or flags & ~_SAFE_FLAGS:
        return None
    if not _is_ip_literal(host):
        return None
    return socket.getaddrinfo(host, port, family, type, proto, flags)
