"""Modbus TCP (a cabinet's Modbus TCP module, or an RS-485 gateway) through pymodbus."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from ..errors import SourceError
from ..registers import ReadBlock
from .base import register_transport

if TYPE_CHECKING:
    from ..config import TcpBus

__all__ = ["ModbusTcpBus"]

log = logging.getLogger(__name__)


class ModbusTcpBus:
    """One TCP connection, one request at a time (gateways to RS-485 cannot interleave)."""

    def __init__(self, name: str, config: TcpBus) -> None:
        self.name = name
        self._config = config
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | None = None

    async def _connected_client(self) -> AsyncModbusTcpClient:
        if self._client is None:
            # Reconnecting is ours to do (on the next poll), so pymodbus must not retry in the
            # background, and one attempt per request: the poller has its own back-off.
            self._client = AsyncModbusTcpClient(
                self._config.host, port=self._config.port, timeout=self._config.timeout_s,
                retries=0, reconnect_delay=0, name=f"bus-{self.name}",
            )
        if not self._client.connected:
            ok = await self._client.connect()
            if not ok:
                raise SourceError(f"bus {self.name}: cannot connect to "
                                  f"{self._config.host}:{self._config.port}")
            log.info("bus %s: connected to %s:%d", self.name, self._config.host, self._config.port)
        return self._client

    async def read(self, unit: int, block: ReadBlock) -> Sequence[int] | Sequence[bool]:
        async with self._lock:
            client = await self._connected_client()
            call = {
                1: client.read_coils,
                2: client.read_discrete_inputs,
                3: client.read_holding_registers,
                4: client.read_input_registers,
            }[block.function]
            try:
                response = await call(block.address, count=block.count, device_id=unit)
            except ModbusException as exc:
                raise SourceError(f"bus {self.name} unit {unit}: {exc}") from exc
            if response.isError():
                raise SourceError(f"bus {self.name} unit {unit}: exception response "
                                  f"{getattr(response, 'exception_code', '?')}")
            if block.function in (1, 2):
                return list(response.bits[: block.count])
            return list(response.registers)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


register_transport("tcp", ModbusTcpBus)
