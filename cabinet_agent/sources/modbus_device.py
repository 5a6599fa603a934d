"""A Modbus device as a ``DeviceSource``: a bus, a unit address, and its planned read blocks."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from ..common.errors import BusUnavailable, ConfigError, SourceError
from ..config import DeviceOptions
from ..registers import AnyProfile, DeviceProfile, ReadBlock, decode_block, plan_reads
from .base import Bus, Readings

__all__ = ["ModbusDevice", "block_values", "modbus_device", "request_block"]


class ModbusDevice:
    """Reads every block of one device through its bus; ``retries`` repeats a failed request."""

    def __init__(self, name: str, bus: Bus, unit: int, blocks: list[ReadBlock], *,
                 timeout_s: float, retries: int) -> None:
        self.name = name
        self.bus = bus
        self.unit = unit
        self.blocks = blocks
        self.timeout_s = timeout_s
        self.retries = retries

    async def read(self) -> Readings:
        values: Readings = {}
        for block in self.blocks:
            raw = await self._read_block(block)
            try:
                values.update(decode_block(block, raw))
            except ValueError as exc:  # a short reply
                raise SourceError(f"unit {self.unit}: {exc}") from exc
        return values

    async def _read_block(self, block: ReadBlock) -> list[int] | list[bool]:
        attempt = 0
        while True:
            try:
                return list(await self.bus.read(self.unit, block, timeout_s=self.timeout_s))
            except BusUnavailable:
                raise  # no point asking again: the bus itself is down
            except SourceError as exc:
                if not exc.retryable or attempt >= self.retries:
                    raise
                attempt += 1


def modbus_device(bus: Bus, name: str, profile: AnyProfile, address: int | None, points: set[str],
                  options: DeviceOptions | None, *, timeout_s: float, retries: int) -> ModbusDevice:
    """The source for a Modbus device on ``bus``, with the bus's defaults unless ``options`` say."""
    if not isinstance(profile, DeviceProfile):
        raise ConfigError(f"device {name}: profile {profile.name} is a line board, not Modbus; "
                          f"put it on a bus with transport = \"line\"")
    if address is None:
        raise ConfigError(f"device {name}: a Modbus device needs an address")
    if options is not None:
        timeout_s = options.timeout_s if options.timeout_s is not None else timeout_s
        retries = options.retries if options.retries is not None else retries
    return ModbusDevice(name, bus, address, plan_reads(profile, only=points),
                        timeout_s=timeout_s, retries=retries)


def request_block(client: Any, unit: int, block: ReadBlock) -> Awaitable[Any]:
    """The pymodbus read for ``block`` (FC01–FC04) on any pymodbus client, not yet awaited."""
    call = {
        1: client.read_coils,
        2: client.read_discrete_inputs,
        3: client.read_holding_registers,
        4: client.read_input_registers,
    }[block.function]
    return call(block.address, count=block.count, device_id=unit)


def block_values(response: Any, block: ReadBlock) -> Sequence[int] | Sequence[bool]:
    """The raw values of a successful read (pymodbus pads bit reads to whole bytes)."""
    if block.function in (1, 2):
        return list(response.bits[: block.count])
    return list(response.registers)
