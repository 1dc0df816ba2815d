"""The loop's ``connect_read_pipe``/``connect_write_pipe``. The transports are
``tideloop._transports._pipes``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ._datagram import DatagramPart
from ._transports._pipes import ReadPipeTransport, WritePipeTransport

logger = logging.getLogger("asyncio")

_PipeT = TypeVar("_PipeT", ReadPipeTransport, WritePipeTransport)


class PipesPart(DatagramPart):
    """``connect_read_pipe``/``connect_write_pipe`` for ``EventLoop``."""

    async def connect_read_pipe(  # type: ignore[override]
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], pipe: Any
    ) -> tuple[ReadPipeTransport, asyncio.BaseProtocol]:
        return await self._connect_pipe(ReadPipeTransport, "Read", protocol_factory, pipe)

    async def connect_write_pipe(  # type: ignore[override]
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], pipe: Any
    ) -> tuple[WritePipeTransport, asyncio.BaseProtocol]:
        return await self._connect_pipe(WritePipeTransport, "Write", protocol_factory, pipe)

    async def _connect_pipe(
        self,
        cls: type[_PipeT],
        kind: str,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        pipe: Any,
    ) -> tuple[_PipeT, asyncio.BaseProtocol]:
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = cls(self._io, pipe, protocol, waiter)  # type: ignore[arg-type]
        # The fd as the transport saw it, for the debug log below: asyncio's
        # pipe.fileno() there raises if the protocol closed the transport in
        # connection_made().
        fileno = pipe.fileno() if self._debug else -1
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self._debug:
            logger.debug(
                "%s pipe %r connected: (%r, %r)", kind, fileno, transport, protocol
            )
        return transport, protocol
