"""For every shipped profile, the agent's sources read exactly what the simulator serves, over
Modbus RTU on a pty and over Modbus TCP, with each profile's encoding."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import pytest

from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model
from cabinet_agent.config import RtuBus, TcpBus
from cabinet_agent.registers import DeviceProfile, PointSpec, Value, ValueType, shipped_profiles
from cabinet_agent.sources.base import Bus, Readings
from cabinet_agent.sources.modbus_device import ModbusDevice
from cabinet_agent.sources.modbus_rtu import ModbusRtuBus
from cabinet_agent.sources.modbus_tcp import ModbusTcpBus
from simulators.cabinet import CabinetSim, ClimateParams
from simulators.device_image import device_values
from simulators.modbus_server import ModbusServerThread
from tests.support.serial_sim import DATA, rtu_slaves

pytestmark = pytest.mark.integration

MODEL = DATA / "models" / "every-profile.toml"


@pytest.fixture(scope="module")
def cabinet() -> LoadedCabinet:
    return load_cabinet_model(str(MODEL))


@pytest.fixture
def sim(cabinet: LoadedCabinet) -> CabinetSim:
    # Below freezing, so the XY-MD02's s16 goes negative; the door open, so an input is on.
    sim = CabinetSim(cabinet, start=datetime(2026, 1, 12, 6, 30), seed=7,
                     climate=ClimateParams(ambient_c=-7.5))
    sim.advance(600)
    sim.set_door(True)
    return sim


@pytest.fixture(params=["rtu", "tcp"])
def bus(request: pytest.FixtureRequest, sim: CabinetSim, tmp_path: Path) -> Iterator[Bus]:
    with ExitStack() as stack:
        if request.param == "rtu":
            link = tmp_path / "dev" / "by-id" / "usb-sim-if00"
            stack.enter_context(rtu_slaves(sim, link, baudrate=19200))
            # A pty cannot do parity (ceilings.md): 8N1 here, the simulator paces 11-bit characters.
            yield ModbusRtuBus("main", RtuBus(transport="rtu", port=str(link), baudrate=19200))
        else:
            host, port = stack.enter_context(ModbusServerThread(sim))
            yield ModbusTcpBus("main", TcpBus(host=host, port=port))


def _expected(point: PointSpec, value: Value) -> Value:
    """What the wire can carry of ``value``, computed independently of the agent's codec."""
    if point.type is ValueType.BOOL:
        return bool(value)
    if value is None:
        return None
    if point.type is ValueType.F32:
        return round(struct.unpack(">f", struct.pack(">f", float(value) / point.scale))[0]
                     * point.scale, 6)
    return round(round(float(value) / point.scale) * point.scale, 6)


def _read_all(bus: Bus, cabinet: LoadedCabinet, device: str) -> Readings:
    profile = cabinet.profiles[device]
    assert isinstance(profile, DeviceProfile)
    source = bus.device(device, profile, cabinet.model.devices[device].address,  # type: ignore[attr-defined]
                        {p.name for p in profile.points}, None)
    assert isinstance(source, ModbusDevice)

    async def read() -> Readings:
        try:
            return await source.read()
        finally:
            await bus.close()

    return asyncio.run(read())


def test_the_test_model_covers_every_shipped_modbus_profile(cabinet: LoadedCabinet) -> None:
    covered = {p.name for p in cabinet.profiles.values()}
    modbus = {name for name in shipped_profiles() if not name.startswith("ladewache-line")}
    assert covered == modbus


@pytest.mark.parametrize("device", ["meter", "io", "climate", "sdm", "pzem"])
def test_every_point_reads_exactly_what_the_simulator_serves(
        bus: Bus, cabinet: LoadedCabinet, sim: CabinetSim, device: str) -> None:
    served = device_values(cabinet, sim.truth())[device]
    got = _read_all(bus, cabinet, device)
    profile = cabinet.profiles[device]
    assert isinstance(profile, DeviceProfile)
    for point in profile.points:
        expected = [_expected(point, v) for v in served[point.name]]
        assert got[point.name] == (expected if point.count > 1 else expected[0]), point.name


def test_the_encodings_carry_signs_word_orders_and_bits(bus: Bus, cabinet: LoadedCabinet,
                                                       sim: CabinetSim) -> None:
    truth = sim.truth()
    climate = _read_all(bus, cabinet, "climate")
    assert isinstance(climate["temperature"], float) and climate["temperature"] < 0  # s16
    assert climate["temperature"] == pytest.approx(truth.temperature_c, abs=0.05)
    sdm = _read_all(bus, cabinet, "sdm")
    assert sdm["voltage"] == 230.0 and sdm["frequency"] == 50.0  # float32, high word first
    assert sdm["power"] == pytest.approx(truth.slots[2].power_w, rel=1e-6)
    pzem = _read_all(bus, cabinet, "pzem")
    # u32 low word first x 0.001 A: read with the wrong word order, 0.09 A would be ~5.9 kA
    assert pzem["current"] == pytest.approx(truth.slots[3].power_w / 230.0, abs=0.0005)
    assert pzem["power"] == pytest.approx(truth.slots[3].power_w, abs=0.05)
    io = _read_all(bus, cabinet, "io")
    assert io["input"] == [True, True, False, False, False, False, False, False]  # door, mains
    meter = _read_all(bus, cabinet, "meter")
    assert meter["power"][:2] == pytest.approx([s.power_w for s in truth.slots[:2]], abs=0.05)  # type: ignore[index]


def test_a_tcp_gateway_that_goes_away_is_a_bus_fault_and_is_found_again(
        cabinet: LoadedCabinet, sim: CabinetSim) -> None:
    from cabinet_agent.common.errors import BusUnavailable
    from tests.support.procs import free_port

    port = free_port()
    bus = ModbusTcpBus("gw", TcpBus(host="127.0.0.1", port=port, timeout_s=0.3, reopen_min_s=0.05,
                                    reopen_max_s=0.1))
    profile = cabinet.profiles["climate"]
    source = bus.device("climate", profile, 3, {"temperature"}, None)

    async def read() -> Readings | BaseException:
        try:
            return await source.read()
        except BusUnavailable as exc:
            return exc

    async def until_ok() -> Readings:
        while True:
            result = await read()
            if not isinstance(result, BaseException):
                return result
            await asyncio.sleep(0.02)  # a poll interval

    async def scenario() -> tuple[Readings | BaseException, Readings, Readings | BaseException]:
        down = await read()
        with ModbusServerThread(sim, port=port):
            up = await asyncio.wait_for(until_ok(), 5)
        gone = await read()
        await bus.close()
        return down, up, gone

    down, up, gone = asyncio.run(scenario())
    assert isinstance(down, BusUnavailable) and "cannot connect" in str(down)
    assert up["temperature"] == pytest.approx(sim.truth().temperature_c, abs=0.05)
    assert isinstance(gone, BusUnavailable)
