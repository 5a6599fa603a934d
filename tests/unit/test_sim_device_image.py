"""Register images: the cabinet's state encoded with cabinet_agent's own profiles and codec."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model
from cabinet_agent.registers import Value, decode_block, plan_reads
from simulators.cabinet import CabinetSim
from simulators.device_image import build_images, device_values
from simulators.physics import ChargerParams

START = datetime(2026, 11, 30, 7, 0)


def _sim(cabinet: LoadedCabinet, fill: float = 1.0) -> CabinetSim:
    sim = CabinetSim(cabinet, start=START, seed=2, fill=fill, charger=ChargerParams(noise=0.0))
    sim.advance(300)
    return sim


def _decoded(cabinet: LoadedCabinet, sim: CabinetSim) -> dict[str, dict[str, Value | list[Value]]]:
    """What an agent decodes when it reads every block of every device."""
    images = build_images(cabinet, sim.truth())
    readings: dict[str, dict[str, Value | list[Value]]] = {}
    for device, image in images.items():
        readings[device] = {}
        for block in plan_reads(cabinet.profiles[device]):
            raw = image.read(block.function, block.address, block.count)
            assert raw is not None, (device, block)
            readings[device].update(decode_block(block, raw))
    return readings


@pytest.mark.parametrize("model", ["ladewache-8", "ladewache-16", "ladewache-32"])
def test_every_shipped_model_reads_back_as_its_ground_truth(model: str) -> None:
    cabinet = load_cabinet_model(model)
    sim = _sim(cabinet, fill=0.7)
    sim.set_door(True)
    truth = sim.truth()
    readings = _decoded(cabinet, sim)
    powers = cabinet.slot_power(readings)
    assert len(powers) == cabinet.model.slots
    for reading, slot in zip(powers, truth.slots, strict=True):
        assert reading == pytest.approx(slot.power_w, abs=0.05 + 1e-9)  # u16 × 0.1 W
    assert cabinet.signal("door", readings) is True
    assert cabinet.signal("mains", readings) is True
    assert cabinet.signal("temperature", readings) == pytest.approx(truth.temperature_c, abs=0.05)


def test_unwired_channels_read_zero_and_current_follows_power() -> None:
    cabinet = load_cabinet_model("ladewache-8")  # meter channels 8..15 are not connected
    sim = _sim(cabinet)
    values = device_values(cabinet, sim.truth())
    power, current = values["meter"]["power"], values["meter"]["current"]
    assert power[8:] == [0.0] * 8
    for p, i in zip(power, current, strict=True):
        assert isinstance(p, float) and i == pytest.approx(p / 230.0)
    assert values["climate"]["humidity"] == [45.0]
    assert values["io"]["output"] == [False] * 8


def test_mains_off_reads_as_zero_power_and_an_open_mains_contact() -> None:
    cabinet = load_cabinet_model("ladewache-16")
    sim = _sim(cabinet)
    sim.set_mains(False)
    readings = _decoded(cabinet, sim)
    assert cabinet.slot_power(readings) == [0.0] * 16
    assert cabinet.signal("mains", readings) is False


def test_inverted_contacts_follow_the_model(tmp_path: Path) -> None:
    model = tmp_path / "inverted.toml"
    model.write_text(
        'name = "inverted"\nslots = 2\n'
        '[devices.meter]\nprofile = "ladewache-slot-meter-16"\naddress = 1\n'
        '[devices.io]\nprofile = "waveshare-io-8ch"\naddress = 2\n'
        '[signals]\nslot_power = ["meter.power[4]", "meter.power[9]"]\n'
        'door = "io.input[5]"\ndoor_open_when = false\n'
        'mains = "io.input[6]"\nmains_on_when = false\n',
        encoding="utf-8")
    cabinet = load_cabinet_model(model)
    sim = _sim(cabinet)
    values = device_values(cabinet, sim.truth())
    # "open when false": the closed door reads as input on; "on when false": mains present is off
    assert values["io"]["input"] == [False] * 5 + [True, False, False]
    power = values["meter"]["power"]
    assert [i for i, p in enumerate(power) if p] == [4, 9]
    sim.set_door(True)
    sim.set_mains(False)
    assert device_values(cabinet, sim.truth())["io"]["input"][5:7] == [False, True]


def test_a_total_meter_reports_the_cabinet_and_answers_across_gaps(tmp_path: Path) -> None:
    model = tmp_path / "one.toml"
    model.write_text(
        'name = "one"\nslots = 1\n'
        '[devices.sdm]\nprofile = "eastron-sdm120"\naddress = 5\n'
        '[signals]\nslot_power = ["sdm.power"]\n',
        encoding="utf-8")
    cabinet = load_cabinet_model(model)
    sim = _sim(cabinet)
    readings = _decoded(cabinet, sim)["sdm"]  # one block 0x00..0x49 across unused registers
    slot = sim.truth().slots[0]
    assert readings["power"] == pytest.approx(slot.power_w)
    assert readings["voltage"] == pytest.approx(230.0)
    assert readings["frequency"] == pytest.approx(50.0)
    assert readings["import_energy"] == pytest.approx(slot.energy_wh / 1000, abs=1e-6)


@pytest.mark.parametrize(
    ("table", "address", "count", "legal"),
    [
        (4, 0, 32, True),  # power + current of the slot meter in one read
        (4, 30, 2, True),
        (4, 31, 2, False),  # runs past the last register
        (4, 100, 1, False),
        (3, 0, 1, False),  # the module has no holding registers
        (2, 0, 1, False),
    ],
)
def test_reads_outside_the_profile_are_illegal(table: int, address: int, count: int,
                                               legal: bool) -> None:
    cabinet = load_cabinet_model("ladewache-16")
    image = build_images(cabinet, _sim(cabinet).truth())["meter"]
    assert (image.read(table, address, count) is not None) is legal


def test_values_out_of_range_saturate_instead_of_reading_as_invalid() -> None:
    cabinet = load_cabinet_model("ladewache-16")
    sim = _sim(cabinet)
    truth = sim.truth()
    hot = replace(truth, slots=(replace(truth.slots[0], power_w=9999.0), *truth.slots[1:]))
    image = build_images(cabinet, hot)["meter"]
    assert image.read(4, 0, 1) == [0xFFFE]  # 0xFFFF is the profile's "no reading" marker
