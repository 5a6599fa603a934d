"""Energy counters as data: a profile names its counter, a cabinet model reads the counter of
every slot meter that keeps one, the simulator's counters count simulated energy and wrap like a
meter's, and the agent's [simulation] speed turns the evidence window into wall-clock time."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import pytest

from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model
from cabinet_agent.cli import sensing_notes
from cabinet_agent.common.errors import ConfigError
from cabinet_agent.config import AgentSettings
from cabinet_agent.energy import EnergyCounter
from cabinet_agent.registers import DeviceProfile, Value, decode_block, load_profile, plan_reads
from cabinet_agent.thresholds import Thresholds
from simulators.cabinet import CabinetSim
from simulators.device_image import build_images
from simulators.physics import ChargerParams

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
START = datetime(2026, 11, 30, 22, 0)
U32 = float(2**32)


def _profile(tmp_path: Path, counter: str, energy_point: str) -> Path:
    path = tmp_path / "meter.toml"
    path.write_text(
        'name = "two-channel"\n' + counter + "\n"
        '[[points]]\nname = "power"\nfunction = 4\naddress = 0\ntype = "u16"\nscale = 0.1\n'
        'count = 2\nunit = "W"\n' + energy_point, encoding="utf-8")
    return path


@pytest.mark.parametrize(("counter", "energy_point", "message"), [
    ('[energy_counter]\npoint = "nope"', "", "no point 'nope'"),
    ('[energy_counter]\npoint = "power"', "", "Wh or kWh"),
    ('[energy_counter]\npoint = "energy"',
     '[[points]]\nname = "energy"\nfunction = 4\naddress = 8\ntype = "s32"\nunit = "Wh"\n', "signed"),
    ('[energy_counter]\npoint = "energy"',
     '[[points]]\nname = "energy"\nfunction = 4\naddress = 8\ntype = "f32"\nunit = "kWh"\n',
     "resolution"),
])
def test_a_profile_names_a_counter_that_counts_energy(tmp_path: Path, counter: str,
                                                      energy_point: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_profile(_profile(tmp_path, counter, energy_point))


def test_shipped_meters_say_how_fine_their_counter_counts_and_where_it_wraps() -> None:
    pzem, sdm = load_profile("pzem-016"), load_profile("eastron-sdm120")
    assert isinstance(pzem, DeviceProfile) and isinstance(sdm, DeviceProfile)
    assert (pzem.counter_resolution_wh(), pzem.counter_wraps_at_wh()) == (1.0, U32)
    assert (sdm.counter_resolution_wh(), sdm.counter_wraps_at_wh()) == (10.0, None)
    assert load_profile("ladewache-slot-meter-16").energy_counter is None  # type: ignore[union-attr]


def test_every_slot_meter_with_a_counter_is_read_for_its_slot() -> None:
    cabinet = load_cabinet_model(MODELS / "every-profile.toml")  # meter 2 slots, SDM, PZEM
    assert cabinet.counters == (None, None, EnergyCounter(10.0), EnergyCounter(1.0, U32))
    polled = cabinet.polled_points()
    assert polled["sdm"] == {"power", "import_energy"} and polled["pzem"] == {"power", "energy"}
    assert polled["meter"] == {"power"}
    readings: dict[str, dict[str, Value | list[Value]]] = {
        "meter": {"power": [1.0, 2.0]}, "sdm": {"import_energy": 1.25}, "pzem": {"energy": 77.0}}
    assert cabinet.slot_energy(readings) == (None, None, 1250.0, 77.0)  # kWh in Wh
    assert cabinet.slot_energy({"sdm": {"import_energy": math.nan}}) == (None, None, None, None)
    assert load_cabinet_model("ladewache-8").slot_energy(readings) is None  # no counter at all
    assert sensing_notes(cabinet)[1] == ("session energy: the meters' own energy counters on 2 of "
                                         "4 slots, power over time on the others")


def test_a_model_may_integrate_power_instead(tmp_path: Path) -> None:
    text = (MODELS / "every-profile.toml").read_text()
    path = tmp_path / "power-only.toml"
    path.write_text(text.replace("[signals]\n", '[signals]\nenergy_from = "power"\n'), "utf-8")
    cabinet = load_cabinet_model(path)
    assert cabinet.counters == () and cabinet.slot_energy({}) is None
    assert cabinet.polled_points()["pzem"] == {"power"}


def test_a_counter_must_have_a_channel_per_power_channel(tmp_path: Path) -> None:
    _profile(tmp_path, '[energy_counter]\npoint = "energy"',
             '[[points]]\nname = "energy"\nfunction = 4\naddress = 8\ntype = "u32"\nunit = "Wh"\n')
    model = tmp_path / "m.toml"
    model.write_text('name = "m"\nslots = 2\n[devices.meter]\nprofile = "meter.toml"\naddress = 1\n'
                     '[signals]\nslot_power = ["meter.power"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="energy_from"):
        load_cabinet_model(model)


def _decoded_energy(cabinet: LoadedCabinet, sim: CabinetSim) -> tuple[float | None, ...] | None:
    images = build_images(cabinet, sim.truth())
    readings: dict[str, dict[str, Value | list[Value]]] = {}
    for device, image in images.items():
        profile = cabinet.profiles[device]
        assert isinstance(profile, DeviceProfile)
        readings[device] = {}
        for block in plan_reads(profile):
            raw = image.read(block.function, block.address, block.count)
            assert raw is not None
            readings[device].update(decode_block(block, raw))
    return cabinet.slot_energy(readings)


def test_the_simulators_counters_count_simulated_energy_wrap_and_start_again_when_replaced() -> None:
    cabinet = load_cabinet_model(MODELS / "every-profile.toml")
    sim = CabinetSim(cabinet, start=START, fill=0.0, charger=ChargerParams(noise=0.0),
                     meter_start_wh=U32 - 5.0)  # a PZEM five Wh before its wrap
    sim.replace_meter("sdm", 1000.0)  # a float counter that far up would count in 0.5 kWh steps
    for slot in (3, 4):
        sim.insert(slot, soc=0.1)
    sim.advance(3600)  # 20 W for an hour, in simulated time
    truth = sim.truth()
    drawn = [s.energy_wh for s in truth.slots]
    assert drawn[2] == pytest.approx(20.0, rel=0.01) and drawn[3] == pytest.approx(20.0, rel=0.01)
    _, _, sdm, pzem = _decoded_energy(cabinet, sim)  # type: ignore[misc]
    assert sdm == pytest.approx(1000.0 + drawn[2], abs=0.01)  # float32 kWh
    assert pzem == round(U32 - 5.0 + drawn[3]) - U32  # whole Wh, from 0 again past the wrap
    sim.replace_meter("pzem")  # a new meter: its counter from 0
    sim.advance(360)
    assert _decoded_energy(cabinet, sim)[3] == round(sim.truth().slots[3].energy_wh - drawn[3])  # type: ignore[index]


def test_a_multi_channel_counter_counts_each_channels_slot(tmp_path: Path) -> None:
    _profile(tmp_path, '[energy_counter]\npoint = "energy"',
             '[[points]]\nname = "energy"\nfunction = 4\naddress = 8\ntype = "u32"\nunit = "Wh"\n'
             'scale = 0.1\ncount = 2\n')
    model = tmp_path / "m.toml"
    model.write_text('name = "m"\nslots = 2\n[devices.meter]\nprofile = "meter.toml"\naddress = 1\n'
                     '[signals]\nslot_power = ["meter.power[1]", "meter.power[0]"]\n', "utf-8")
    cabinet = load_cabinet_model(model)
    assert cabinet.counters == (EnergyCounter(0.1, U32 * 0.1),) * 2
    sim = CabinetSim(cabinet, start=START, fill=0.0, charger=ChargerParams(noise=0.0))
    sim.insert(1, soc=0.1)  # slot 1 is channel 1
    sim.advance(1800)
    assert _decoded_energy(cabinet, sim) == pytest.approx((sim.truth().slots[0].energy_wh, 0.0),
                                                          abs=0.06)


def test_the_simulation_speed_is_for_simulators_and_scales_the_window_on_the_wire() -> None:
    base = {"cabinet": {"site": "s", "id": "c", "model": "ladewache-8"}}
    assert AgentSettings.model_validate(base).simulation.speed == 1.0
    with pytest.raises(ValueError, match="speed"):
        AgentSettings.model_validate({**base, "simulation": {"speed": 0}})
    cabinet = load_cabinet_model("ladewache-8")
    window = Thresholds().evidence_window_s
    assert cabinet.sensing(Thresholds()).evidence_window_s == window
    assert cabinet.sensing(Thresholds(), time_scale=60.0).evidence_window_s == window / 60
