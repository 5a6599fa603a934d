"""The simulator over real Modbus TCP, read with pymodbus and decoded with cabinet_agent's codec."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model
from cabinet_agent.registers import Value, decode_block, plan_reads
from simulators.cabinet import CabinetSim, CabinetTruth
from simulators.modbus_server import ModbusServerThread

pytestmark = pytest.mark.integration

Readings = dict[str, dict[str, Value | list[Value]]]
RESOLUTION_W = 0.1  # the slot meter's u16 × 0.1 W


@pytest.fixture
def cabinet() -> LoadedCabinet:
    return load_cabinet_model("ladewache-16")


@pytest.fixture
def sim(cabinet: LoadedCabinet) -> CabinetSim:
    sim = CabinetSim(cabinet, start=datetime(2026, 11, 30, 7, 0), seed=5, fill=0.75)
    sim.advance(900)  # some noise, some warmth
    return sim


@pytest.fixture
def client(sim: CabinetSim) -> Iterator[ModbusTcpClient]:
    with ModbusServerThread(sim) as (host, port), \
            ModbusTcpClient(host, port=port, timeout=0.5, retries=0) as client:
        yield client


def _read_device(client: ModbusTcpClient, cabinet: LoadedCabinet,
                 device: str) -> dict[str, Value | list[Value]]:
    spec, profile = cabinet.model.devices[device], cabinet.profiles[device]
    values: dict[str, Value | list[Value]] = {}
    for block in plan_reads(profile):
        reader = {1: client.read_coils, 2: client.read_discrete_inputs,
                  3: client.read_holding_registers, 4: client.read_input_registers}[block.function]
        response = reader(block.address, count=block.count, device_id=spec.address)
        assert not response.isError(), (device, block, response)
        raw = response.bits if block.function in (1, 2) else response.registers
        values.update(decode_block(block, raw))
    return values


def _read_all(client: ModbusTcpClient, cabinet: LoadedCabinet) -> Readings:
    return {device: _read_device(client, cabinet, device) for device in cabinet.model.devices}


def _assert_matches(readings: Readings, cabinet: LoadedCabinet, truth: CabinetTruth) -> None:
    powers = cabinet.slot_power(readings)
    assert len(powers) == 16
    for reading, slot in zip(powers, truth.slots, strict=True):
        assert reading == pytest.approx(slot.power_w, abs=RESOLUTION_W / 2 + 1e-9), slot
    assert cabinet.signal("door", readings) is truth.door_open
    assert cabinet.signal("mains", readings) is truth.mains_on
    assert cabinet.signal("temperature", readings) == pytest.approx(truth.temperature_c, abs=0.05)


def test_every_device_reads_as_the_ground_truth(client: ModbusTcpClient, cabinet: LoadedCabinet,
                                                sim: CabinetSim) -> None:
    truth = sim.truth()
    assert any(s.charging for s in truth.slots) and not all(s.present for s in truth.slots)
    readings = _read_all(client, cabinet)
    _assert_matches(readings, cabinet, truth)
    assert readings["climate"]["humidity"] == pytest.approx(45.0)

    sim.set_door(True)
    sim.set_mains(False)
    sim.advance(600)
    truth = sim.truth()
    readings = _read_all(client, cabinet)
    _assert_matches(readings, cabinet, truth)
    assert cabinet.slot_power(readings) == [0.0] * 16


def test_a_removed_ipad_reads_as_charger_no_load(client: ModbusTcpClient, cabinet: LoadedCabinet,
                                                 sim: CabinetSim) -> None:
    slot = next(s.slot for s in sim.truth().slots if s.charging)
    before = cabinet.slot_power(_read_all(client, cabinet))[slot - 1]
    assert isinstance(before, float) and before > 2.0
    sim.remove(slot)
    after = cabinet.slot_power(_read_all(client, cabinet))[slot - 1]
    assert after is not None and after <= RESOLUTION_W  # 0.05 W no-load: reads 0.0 or 0.1


def test_a_dead_device_times_out_while_the_others_answer(client: ModbusTcpClient,
                                                         cabinet: LoadedCabinet,
                                                         sim: CabinetSim) -> None:
    sim.set_device_fault("climate", "dead")
    with pytest.raises(ModbusIOException, match="No response"):
        client.read_input_registers(1, count=2, device_id=cabinet.model.devices["climate"].address)
    assert cabinet.slot_power({"meter": _read_device(client, cabinet, "meter")})
    assert _read_device(client, cabinet, "io")["input"]
    sim.set_device_fault("climate", "none")
    assert _read_device(client, cabinet, "climate")["humidity"] == pytest.approx(45.0)


def test_unknown_units_stay_silent_and_unmapped_registers_are_illegal(
        client: ModbusTcpClient) -> None:
    with pytest.raises(ModbusIOException):
        client.read_input_registers(0, count=1, device_id=42)
    response = client.read_input_registers(200, count=2, device_id=1)
    assert response.isError() and response.exception_code == 2  # ILLEGAL DATA ADDRESS


def test_coils_of_the_io_module_can_be_written_and_read_back(client: ModbusTcpClient) -> None:
    assert not client.write_coil(3, True, device_id=2).isError()
    assert client.read_coils(0, count=8, device_id=2).bits[:8] == [False] * 3 + [True] + [False] * 4
    assert client.write_register(0, 1, device_id=1).isError()  # input registers are read-only


def test_reply_delay_slows_every_answer(cabinet: LoadedCabinet, sim: CabinetSim) -> None:
    with ModbusServerThread(sim, reply_delay_s=0.2) as (host, port), \
            ModbusTcpClient(host, port=port, timeout=2, retries=0) as client:
        started = time.monotonic()
        assert not client.read_input_registers(0, count=32, device_id=1).isError()
        assert time.monotonic() - started >= 0.2
