"""The Modbus devices of a simulated cabinet as slaves: who answers which unit, and with what.

Shared by the TCP server and the RTU server, so both transports show the same devices, faults and
written values. Values come from ``device_image`` (the agent's own profiles and codec); a STUCK
device answers from the moment it got stuck; ADDRESS_RESET moves a device to unit 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from cabinet_agent.registers import DeviceProfile

from .cabinet import CabinetSim, DeviceFault
from .device_image import TABLE_OF_FUNCTION, DeviceImage, build_images

__all__ = ["ILLEGAL_ADDRESS", "ILLEGAL_FUNCTION", "ILLEGAL_VALUE", "SlaveSet"]

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 1, 2, 3
_MAX_COUNT = {1: 2000, 2: 2000, 3: 125, 4: 125}
RESET_ADDRESS = 1  # where a slave that lost its configuration answers


class SlaveSet:
    def __init__(self, sim: CabinetSim, bus: str | None = None) -> None:
        """The cabinet's Modbus devices on ``bus`` (every bus when None)."""
        self.sim = sim
        self.addresses = {
            name: spec.address for name, spec in sim.cabinet.model.devices.items()
            if spec.address is not None and isinstance(sim.cabinet.profiles[name], DeviceProfile)
            and (bus is None or spec.bus == bus)
        }
        # Values clients wrote to coils and holding registers: (device, table, address) -> raw.
        self._writes: dict[tuple[str, int, int], int] = {}

    def unit_ids(self) -> list[int]:
        return sorted(set(self.addresses.values()))

    def answering(self, unit: int) -> list[str]:
        """Devices that answer a request to ``unit`` now; more than one is a collision."""
        names = []
        for name, address in self.addresses.items():
            fault = self.sim.device_fault(name)
            effective = RESET_ADDRESS if fault is DeviceFault.ADDRESS_RESET else address
            if effective == unit and fault is not DeviceFault.DEAD:
                names.append(name)
        return names

    def fault(self, name: str) -> DeviceFault:
        return self.sim.device_fault(name)

    def _image(self, name: str) -> DeviceImage:
        return build_images(self.sim.cabinet, self.sim.device_truth(name), self._writes)[name]

    def read(self, name: str, function: int, address: int, count: int) -> list[int] | int:
        """Raw values (bits as 0/1), or a Modbus exception code."""
        table = TABLE_OF_FUNCTION.get(function)  # pymodbus reads back with the write codes too
        if table is None:
            return ILLEGAL_FUNCTION
        if not 1 <= count <= _MAX_COUNT.get(function, 2000):
            return ILLEGAL_VALUE
        raw = self._image(name).read(table, address, count)
        return ILLEGAL_ADDRESS if raw is None else raw

    def write(self, name: str, function: int, address: int, values: Sequence[int]) -> int | None:
        """Store a write to coils or holding registers; a Modbus exception code when refused."""
        table = TABLE_OF_FUNCTION.get(function)
        if table is None:
            return ILLEGAL_FUNCTION
        if not self._image(name).writable(table, address, len(values)):
            return ILLEGAL_ADDRESS
        for offset, value in enumerate(values):
            self._writes[(name, table, address + offset)] = int(value)
        return None
