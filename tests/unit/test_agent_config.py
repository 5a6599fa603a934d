from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cabinet_agent.cabinet_model import load_cabinet_model, shipped_models
from cabinet_agent.cli import main
from cabinet_agent.config import load
from cabinet_agent.configfile import config_hash, redacted
from cabinet_agent.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "agent.toml"


def test_unknown_key_is_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[mqtt]\nhots = "broker"\n')
    with pytest.raises(ConfigError) as info:
        load(path)
    assert f"{path}: mqtt.hots: unknown key" in str(info.value)


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[polling]\ninterval_s = \"often\"\n")
    with pytest.raises(ConfigError, match=r"polling\.interval_s"):
        load(path)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[mqtt]\nhost = "from-file"\nport = 1883\nallow_plaintext = true\n')
    monkeypatch.setenv("LADEWACHE_MQTT__HOST", "from-env")
    settings = load(path)
    assert (settings.mqtt.host, settings.mqtt.port) == ("from-env", 1883)


def test_secrets_are_redacted_and_do_not_change_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[mqtt]\nusername = "c1"\npassword = "s3cret-pw"\n')
    settings = load(path)
    assert "s3cret-pw" not in str(redacted(settings))
    assert "s3cret-pw" not in repr(settings)
    assert redacted(settings)["mqtt"]["password"] == "***"
    path.write_text('[mqtt]\nusername = "c1"\npassword = "other"\n')
    assert config_hash(load(path)) == config_hash(settings)


def test_paths_resolve_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "agent.toml"
    path.parent.mkdir()
    path.write_text('[mqtt]\nca_file = "ca.pem"\n')
    settings = load(path)
    assert settings.resolve(settings.mqtt.ca_file) == path.parent / "ca.pem"


def test_the_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(EXAMPLE)]) == 0
    assert "config OK" in capsys.readouterr().out


def test_check_config_exits_non_zero_naming_the_key(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[cabinet]\nmodel = "ladewache-8"\nasset_tags = { 9 = "IPAD-9" }\n')
    assert main(["check-config", "--config", str(path)]) == 2
    assert "cabinet.asset_tags.9" in capsys.readouterr().err


def test_run_logs_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[cabinet]\nmodel = "nope"\n[mqtt]\npassword = "hunter2-pw"\n')
    with caplog.at_level(logging.DEBUG):
        assert main(["run", "--config", str(path)]) == 2
    assert "hunter2-pw" not in caplog.text


@pytest.mark.parametrize("name", shipped_models())
def test_every_shipped_cabinet_model_wires_all_its_slots(name: str) -> None:
    cabinet = load_cabinet_model(name)
    assert len(cabinet.slot_power({})) == cabinet.model.slots


def test_model_with_miswired_slots_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('name = "m"\nslots = 20\n[devices.meter]\nprofile = "ladewache-slot-meter-16"\n'
                    'address = 1\n[signals]\nslot_power = ["meter.power"]\n')
    with pytest.raises(ConfigError, match="wires 16 channels for slots = 20"):
        load_cabinet_model(str(path))


RTU_EXAMPLE = EXAMPLE.with_name("agent-rtu.toml")


def test_the_rtu_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(RTU_EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "config OK" in out and "buses main (rtu)" in out
    assert "NOT present now" in out  # no adapter on this machine: said, but not an error


def test_a_config_without_transport_is_still_tcp(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[buses.main]\nhost = "10.0.0.7"\nport = 502\n')
    bus = load(path).buses["main"]
    assert (bus.transport, bus.host, bus.port) == ("tcp", "10.0.0.7", 502)  # type: ignore[union-attr]


def test_every_bus_kind_loads_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[buses.a]\ntransport = "rtu"\nport = "/dev/ttyUSB0"\n'
                    '[buses.b]\ntransport = "line"\nport = "/dev/ttyACM*"\n'
                    '[buses.c]\ntransport = "tcp"\n')
    buses = load(path).buses
    assert [type(b).__name__ for b in buses.values()] == ["RtuBus", "LineBus", "TcpBus"]
    assert (buses["a"].baudrate, buses["a"].parity, buses["b"].baudrate) == (9600, "N", 115200)  # type: ignore[union-attr]
    assert buses["a"].bits_per_char == 10  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "key"), [
    ('[buses.main]\ntransport = "rtu"\n', "buses.main.port: Field required"),
    ('[buses.main]\ntransport = "rtu"\nport = "/dev/x"\nbaudrate = 9601\n', "buses.main.baudrate: 9601"),
    ('[buses.main]\ntransport = "rtu"\nport = "/dev/x"\nparity = "X"\n', "buses.main.parity"),
    ('[buses.main]\ntransport = "rtu"\nport = "/dev/x"\nhost = "gw"\n', "buses.main.host: unknown key"),
    ('[buses.main]\ntransport = "line"\nport = "/dev/x"\ntimeout_s = 1\n',
     "buses.main.timeout_s: unknown key"),
    ('[buses.main]\ntransport = "can"\n', "buses.main: transport must be 'tcp', 'rtu' or 'line'"),
    ('[buses.main]\ntransport = "rtu"\nport = "/dev/x"\nreopen_min_s = 5\nreopen_max_s = 1\n',
     "buses.main: reopen_max_s must be >= reopen_min_s"),
    ('[devices.meter]\ntimeout = 1\n', "devices.meter.timeout: unknown key"),
])
def test_bus_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert f"{path}: {key}" in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ('[cabinet]\nmodel = "ladewache-8"\n[devices.metre]\nretries = 0\n',
     "devices.metre: model ladewache-8 has no such device"),
    ('[cabinet]\nmodel = "ladewache-16-line"\n[buses.board]\ntransport = "rtu"\nport = "/dev/x"\n',
     "device board: profile ladewache-line-board-16 is a line board, not Modbus"),
    ('[cabinet]\nmodel = "ladewache-8"\n[buses.main]\ntransport = "line"\nport = "/dev/x"\n',
     "profile ladewache-slot-meter-16 is a Modbus device"),
    ('[cabinet]\nmodel = "ladewache-16-line"\n',
     "device 'board' of model ladewache-16-line sits on bus 'board'"),
])
def test_check_config_refuses_devices_that_do_not_fit(tmp_path: Path, text: str, message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    assert main(["check-config", "--config", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_check_config_validates_a_profile_file_of_a_model(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "board.toml").write_text('kind = "line"\nname = "b"\nperiod_s = 5\nmax_age_s = 1\n'
                                         '[[points]]\nname = "power"\ncount = 2\n')
    (tmp_path / "model.toml").write_text('name = "m"\nslots = 2\n[devices.b]\nprofile = "board.toml"\n'
                                         'bus = "b"\n[signals]\nslot_power = ["b.power"]\n')
    path = tmp_path / "agent.toml"
    path.write_text('[cabinet]\nmodel = "model.toml"\n[buses.b]\ntransport = "line"\nport = "/x"\n')
    assert main(["check-config", "--config", str(path)]) == 2
    assert "board.toml: max_age_s: must be >= period_s (5)" in capsys.readouterr().err


@pytest.mark.parametrize(("devices", "message"), [
    ('[devices.m]\nprofile = "xy-md02"\n', "devices.m.address: a Modbus device (xy-md02) needs one"),
    ('[devices.m]\nprofile = "ladewache-line-board-16"\naddress = 3\n',
     "devices.m.address: a line board (ladewache-line-board-16) has none"),
    ('[devices.m]\nprofile = "xy-md02"\naddress = 3\n[devices.n]\nprofile = "xy-md02"\naddress = 3\n',
     "devices.n.address: 3 is taken by m on bus 'main'"),
])
def test_model_addresses_are_checked(tmp_path: Path, devices: str, message: str) -> None:
    path = tmp_path / "model.toml"
    path.write_text(f'name = "m"\nslots = 1\n{devices}[signals]\nslot_power = ["m.temperature"]\n')
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_cabinet_model(str(path))


def test_model_thresholds_override_the_defaults_and_are_checked(tmp_path: Path) -> None:
    cabinet = load_cabinet_model("ladewache-16-presence")
    assert cabinet.model.effective_thresholds().rating_w == 30.0
    assert cabinet.model.effective_thresholds().idle_max_w == 0.5  # unset: the default
    path = tmp_path / "m.toml"
    path.write_text('name = "m"\nslots = 16\n[devices.meter]\nprofile = "ladewache-slot-meter-16"\n'
                    'address = 1\n[signals]\nslot_power = ["meter.power"]\n'
                    "[thresholds]\nidle_max_w = 3.0\n")
    with pytest.raises(ConfigError, match=str(path)) as info:
        load_cabinet_model(str(path))
    assert "idle_max_w" in str(info.value)


def test_presence_inputs_must_wire_every_slot(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('name = "m"\nslots = 16\n[devices.meter]\nprofile = "ladewache-slot-meter-16"\n'
                    'address = 1\n[devices.p]\nprofile = "waveshare-io-8ch"\naddress = 5\n'
                    '[signals]\nslot_power = ["meter.power"]\npresence = ["p.input"]\n')
    with pytest.raises(ConfigError, match=r"signals\.presence wires 8 inputs for slots = 16"):
        load_cabinet_model(str(path))


def test_a_bad_charging_window_is_named(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[charging]\nwindows = ["22:00-6"]\n')
    with pytest.raises(ConfigError, match=r"charging: .*22:00-6"):
        load(path)
    path.write_text('[charging]\nwindows = ["22:00-06:00"]\ntimezone = "Europe/Berlin"\n')
    assert load(path).charging.parsed().active(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
