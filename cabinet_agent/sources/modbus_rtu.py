"""Modbus RTU on RS-485 through a USB serial adapter, with pymodbus' async serial client.

One client and one lock per bus: RS-485 is half duplex, one request at a time. Each request gets
the device's own timeout plus the time the request and the reply need on the wire, so a dead
slave costs the bus exactly that and no more. Between frames the bus stays silent for t3.5, as the
Modbus spec asks (slaves find frame ends by that silence), counted from the reply's last byte: the
time spent decoding the reply is part of the gap, not added to it. The wait ends on time, not on
asyncio's next millisecond, and at the last moment before the request leaves, after pymodbus built
it (its ``trace_packet`` hook): ``SilentInterval``.

When the adapter disappears (EIO, the device node gone) the client is closed and the bus answers
every request at once with ``BusUnavailable`` until the next reopen attempt, on a back-off schedule
(``reopen_min_s`` … ``reopen_max_s``, jittered). The port is resolved again on every reopen, so a
``/dev/serial/by-id/…`` link or a glob finds the adapter under its new name.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Sequence

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusException

from ..common.backoff import Backoff
from ..common.errors import BusUnavailable, ExceptionResponse, NoReply, SourceError
from ..config import DeviceOptions, RtuBus
from ..registers import AnyProfile, ReadBlock
from .base import TRANSPORTS, DeviceSource
from .modbus_device import block_values, modbus_device, request_block
from .serial_port import SilentInterval, frame_gap_s, resolve_port, rtu_wire_time_s

__all__ = ["ModbusRtuBus", "rtu_frame_bytes"]

log = logging.getLogger(__name__)

_LIBRARY_TIMEOUT_S = 60.0  # pymodbus' own timeout stays out of the way; ours is per device


def rtu_frame_bytes(block: ReadBlock) -> tuple[int, int]:
    """Bytes of the request and of the normal reply for a read (FC01–FC04) in RTU framing."""
    payload = math.ceil(block.count / 8) if block.function in (1, 2) else 2 * block.count
    return 8, 5 + payload  # address, function, 2×address, 2×count, CRC / address, fc, n, data, CRC


class ModbusRtuBus:
    """One RS-485 bus behind one serial port."""

    def __init__(self, name: str, config: RtuBus, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._config = config
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._client: AsyncModbusSerialClient | None = None
        self._node: str | None = None  # the device node the port resolved to when opened
        self._backoff = Backoff(config.reopen_min_s, config.reopen_max_s)
        self._reopen_at = 0.0
        self._down: str | None = None
        self._silence = SilentInterval(frame_gap_s(config.baudrate, config.bits_per_char), monotonic)
        self._rx_at = 0.0  # when the last bytes came in
        self._reply_end: float | None = None  # when the reply to the current request ended
        self._rx_bytes = 0  # bytes seen since the last request, for telling garbage from silence

    @property
    def node(self) -> str | None:
        """The device node in use (``/dev/ttyUSB1``), None while the adapter is away."""
        return self._node if self._client is not None else None

    def device(self, name: str, profile: AnyProfile, address: int | None, points: set[str],
               options: DeviceOptions | None) -> DeviceSource:
        return modbus_device(self, name, profile, address, points, options,
                             timeout_s=self._config.timeout_s, retries=self._config.retries)

    def wire_time_s(self, block: ReadBlock) -> float:
        request, reply = rtu_frame_bytes(block)
        return rtu_wire_time_s(request, reply, self._config.baudrate, self._config.bits_per_char)

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._silence.wait_out()  # the frame is built; it is written right after this
        else:
            # pymodbus passes its whole receive buffer each time; the largest one seen is a fair
            # count of what arrived for this request.
            self._rx_bytes = max(self._rx_bytes, len(data))
            self._rx_at = self._monotonic()
        return data

    async def _open(self) -> AsyncModbusSerialClient:
        if self._client is not None:
            if self._client.connected and self._node is not None and os.path.exists(self._node):
                return self._client
            self._drop("adapter disconnected")
        now = self._monotonic()
        if now < self._reopen_at:
            raise BusUnavailable(f"bus {self.name}: {self._down}; next attempt in "
                                 f"{self._reopen_at - now:.1f} s")
        try:
            node = resolve_port(self._config.port)
            client = AsyncModbusSerialClient(
                node, baudrate=self._config.baudrate, bytesize=self._config.bytesize,
                parity=self._config.parity, stopbits=self._config.stopbits,
                timeout=_LIBRARY_TIMEOUT_S, retries=0, reconnect_delay=0,
                name=f"bus-{self.name}", trace_packet=self._trace,
            )
            if not await client.connect():
                client.close()
                raise BusUnavailable(f"cannot open {node} ({self._config.baudrate} "
                                     f"{self._config.bytesize}{self._config.parity}"
                                     f"{self._config.stopbits})")
        except BusUnavailable as exc:
            self._down = str(exc)
            self._reopen_at = self._monotonic() + self._backoff.next_delay()
            raise BusUnavailable(f"bus {self.name}: {exc}") from None
        if node != self._node:
            log.info("bus %s: adapter at %s (port %s)", self.name, node, self._config.port)
        else:
            log.info("bus %s: %s opened", self.name, node)
        self._client, self._node, self._down = client, node, None
        self._backoff.reset()
        return client

    def _drop(self, reason: str) -> None:
        """Close the client; the next request waits for the reopen schedule."""
        if self._client is not None:
            self._client.close()
            self._client = None
        log.warning("bus %s: %s (%s)", self.name, reason, self._node or self._config.port)
        self._down = reason
        # The first reopen is tried on the next request: an adapter that only hiccuped is back
        # at once; one that is gone starts the back-off there.
        self._reopen_at = self._monotonic()

    async def read(self, unit: int, block: ReadBlock, *,
                   timeout_s: float) -> Sequence[int] | Sequence[bool]:
        async with self._lock:
            client = await self._open()
            await self._silence.approach()
            self._reply_end = None
            # the rest of the silent interval is waited out inside the request (see _trace)
            silent = max(0.0, self._silence.until - self._monotonic())
            try:
                return await self._request(client, unit, block,
                                           silent + timeout_s + self.wire_time_s(block))
            finally:
                # The last frame on the wire ended with the reply's last byte. Without a reply (a
                # timeout, garbage) it is now: a late reply may still be on its way.
                end = self._reply_end if self._reply_end is not None else self._monotonic()
                self._silence.frame_ended(end)

    async def _request(self, client: AsyncModbusSerialClient, unit: int, block: ReadBlock,
                       timeout_s: float) -> Sequence[int] | Sequence[bool]:
        self._rx_bytes = 0
        try:
            async with asyncio.timeout(timeout_s):  # no task of its own, unlike wait_for
                response = await request_block(client, unit, block)
        except TimeoutError:
            self._check_adapter()
            if self._rx_bytes:
                raise NoReply(f"unit {unit}: garbled reply ({self._rx_bytes} bytes: CRC error, "
                              f"collision or wrong baud rate)", garbled_bytes=self._rx_bytes) from None
            raise NoReply(f"unit {unit}: no reply within {timeout_s * 1000:.0f} ms") from None
        except ModbusException as exc:
            self._check_adapter()
            raise SourceError(f"unit {unit}: {exc}") from exc
        self._reply_end = self._rx_at
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise ExceptionResponse(f"unit {unit}: exception response {code}", code=code)
        return block_values(response, block)

    def _check_adapter(self) -> None:
        """After a failed request: was it the device, or is the adapter gone?"""
        client = self._client
        if client is not None and client.connected and self._node and os.path.exists(self._node):
            return
        self._drop("adapter gone")
        raise BusUnavailable(f"bus {self.name}: adapter gone")

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


TRANSPORTS.register("rtu", ModbusRtuBus)
