"""Modbus TCP (a cabinet's Modbus TCP module, or an RS-485 gateway) through pymodbus."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from ..common.backoff import Backoff
from ..common.errors import BusUnavailable, ExceptionResponse, NoReply, SourceError
from ..config import DeviceOptions, TcpBus
from ..registers import AnyProfile, ReadBlock
from .base import TRANSPORTS, DeviceSource
from .modbus_device import block_values, modbus_device, request_block

__all__ = ["ModbusTcpBus"]

log = logging.getLogger(__name__)

# pymodbus' own reply timeout stays out of the way: ours (asyncio.wait_for, per device) is shorter.
# That also keeps pymodbus from dropping the connection after a few timeouts of one dead unit
# behind a gateway (it counts only its own timeouts), which would fail every other unit too.
_LIBRARY_TIMEOUT_S = 60.0


class ModbusTcpBus:
    """One TCP connection, one request at a time (gateways to RS-485 cannot interleave)."""

    def __init__(self, name: str, config: TcpBus, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._config = config
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | None = None
        self._backoff = Backoff(config.reopen_min_s, config.reopen_max_s)
        self._reopen_at = 0.0
        self._down: str | None = None

    def device(self, name: str, profile: AnyProfile, address: int | None, points: set[str],
               options: DeviceOptions | None) -> DeviceSource:
        return modbus_device(self, name, profile, address, points, options,
                             timeout_s=self._config.timeout_s, retries=self._config.retries)

    async def _connected_client(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        now = self._monotonic()
        if now < self._reopen_at:
            raise BusUnavailable(f"bus {self.name}: {self._down}; next attempt in "
                                 f"{self._reopen_at - now:.1f} s")
        if self._client is None:
            # Reconnecting is ours to do (a visible schedule), so pymodbus must not retry in the
            # background, and one attempt per request: devices have their own retries.
            self._client = AsyncModbusTcpClient(
                self._config.host, port=self._config.port, timeout=_LIBRARY_TIMEOUT_S,
                retries=0, reconnect_delay=0, name=f"bus-{self.name}",
            )
        try:
            ok = await asyncio.wait_for(self._client.connect(), self._config.timeout_s * 4)
        except TimeoutError:
            ok = False
        if not ok:
            self._client.close()
            self._client = None
            self._down = f"cannot connect to {self._config.host}:{self._config.port}"
            self._reopen_at = self._monotonic() + self._backoff.next_delay()
            raise BusUnavailable(f"bus {self.name}: {self._down}")
        log.info("bus %s: connected to %s:%d", self.name, self._config.host, self._config.port)
        self._down = None
        self._backoff.reset()
        return self._client

    async def read(self, unit: int, block: ReadBlock, *,
                   timeout_s: float) -> Sequence[int] | Sequence[bool]:
        async with self._lock:
            client = await self._connected_client()
            try:
                response = await asyncio.wait_for(
                    request_block(client, unit, block), timeout_s)
            except TimeoutError:
                raise NoReply(f"unit {unit}: no reply within {timeout_s * 1000:.0f} ms") from None
            except ModbusException as exc:
                if not client.connected:
                    self._down = f"connection lost: {exc}"
                    raise BusUnavailable(f"bus {self.name}: {self._down}") from exc
                raise SourceError(f"unit {unit}: {exc}") from exc
            if response.isError():
                code = int(getattr(response, "exception_code", 0))
                if code == 0x0B:  # the gateway's "target device failed to respond"
                    raise NoReply(f"unit {unit}: gateway says the device did not answer")
                raise ExceptionResponse(f"unit {unit}: exception response {code}", code=code)
            return block_values(response, block)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


TRANSPORTS.register("tcp", ModbusTcpBus)
