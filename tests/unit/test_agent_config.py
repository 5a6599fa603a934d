from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from cabinet_agent.cabinet_model import load_cabinet_model, shipped_models
from cabinet_agent.cli import main
from cabinet_agent.common.configfile import config_hash, redacted
from cabinet_agent.common.errors import EXIT_CONFIG, ConfigError
from cabinet_agent.config import load
from tests.support.config_cases import Files, arrange

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "agent.toml"
CAB = '[cabinet]\nsite = "gs-test"\nid = "k1"\n'
IDENTITY = CAB + 'model = "ladewache-8"\n'
PREFIX = "cabinet-agent: config error: "


def _config_error_lines(err: str) -> list[str]:
    """stderr of a config error: no traceback, every line one problem with the program's prefix."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert lines and all(line.startswith(PREFIX) for line in lines), err
    return [line.removeprefix(PREFIX) for line in lines]


@pytest.fixture
def ca_pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_unknown_key_is_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(IDENTITY + '[mqtt]\nhots = "broker"\n')
    with pytest.raises(ConfigError) as info:
        load(path)
    assert f"{path}: mqtt.hots: unknown key" in str(info.value)


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(IDENTITY + "[polling]\ninterval_s = \"often\"\n")
    with pytest.raises(ConfigError, match=r"polling\.interval_s"):
        load(path)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(IDENTITY + '[mqtt]\nhost = "from-file"\nport = 1883\nallow_plaintext = true\n')
    monkeypatch.setenv("LADEWACHE_MQTT__HOST", "from-env")
    settings = load(path)
    assert (settings.mqtt.host, settings.mqtt.port) == ("from-env", 1883)


def test_secrets_are_redacted_and_do_not_change_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(IDENTITY + '[mqtt]\nusername = "c1"\npassword = "s3cret-pw"\n')
    settings = load(path)
    assert "s3cret-pw" not in str(redacted(settings))
    assert "s3cret-pw" not in repr(settings)
    assert redacted(settings)["mqtt"]["password"] == "***"
    path.write_text(IDENTITY + '[mqtt]\nusername = "c1"\npassword = "other"\n')
    assert config_hash(load(path)) == config_hash(settings)


def test_paths_resolve_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "agent.toml"
    path.parent.mkdir()
    path.write_text(IDENTITY + '[mqtt]\nca_file = "ca.pem"\n')
    settings = load(path)
    assert settings.resolve(settings.mqtt.ca_file) == path.parent / "ca.pem"


def test_the_example_config_is_valid(capsys: pytest.CaptureFixture[str], ca_pem: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # ca_file = "ca.pem" is what deploy/install-agent.sh --ca puts next to the installed config.
    monkeypatch.setenv("LADEWACHE_MQTT__CA_FILE", str(ca_pem))
    assert main(["check-config", "--config", str(EXAMPLE)]) == 0
    assert "config OK" in capsys.readouterr().out


def test_check_config_exits_non_zero_naming_the_key(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(IDENTITY + '[devices.ghost]\n')
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    lines = _config_error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"{path}: devices.ghost: model ladewache-8 has "
                                                   "no such device"), lines


def test_an_older_agent_toml_with_asset_tags_still_loads_and_says_they_are_ignored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Asset tags live in the server's inventory: an agent.toml from before still starts (an
    upgrade must not stop a cabinet), and check-config says what to do."""
    path = tmp_path / "agent.toml"
    path.write_text(IDENTITY + 'asset_tags = { 9 = "IPAD-9" }\n')
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"note: {path}: cabinet.asset_tags: ignored: asset tags live in the server's " \
           "inventory" in out


def test_run_logs_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(CAB + 'model = "nope"\n[mqtt]\npassword = "hunter2-pw"\n')
    with caplog.at_level(logging.DEBUG):
        assert main(["run", "--config", str(path)]) == EXIT_CONFIG
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


def test_the_rtu_example_config_is_valid(capsys: pytest.CaptureFixture[str], ca_pem: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADEWACHE_MQTT__CA_FILE", str(ca_pem))
    assert main(["check-config", "--config", str(RTU_EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "config OK" in out and "buses main (rtu)" in out
    assert "NOT present now" in out  # no adapter on this machine: said, but not an error


def test_a_config_without_transport_is_still_tcp(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(IDENTITY + '[buses.main]\nhost = "10.0.0.7"\nport = 502\n')
    bus = load(path).buses["main"]
    assert (bus.transport, bus.host, bus.port) == ("tcp", "10.0.0.7", 502)  # type: ignore[union-attr]


def test_every_bus_kind_loads_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(IDENTITY + '[buses.a]\ntransport = "rtu"\nport = "/dev/ttyUSB0"\n'
                    '[buses.b]\ntransport = "line"\nport = "/dev/ttyACM*"\n'
                    '[buses.c]\ntransport = "tcp"\n')
    buses = load(path).buses
    assert [type(b).__name__ for b in buses.values()] == ["RtuBus", "LineBus", "TcpBus"]
    assert (buses["a"].baudrate, buses["a"].parity, buses["b"].baudrate) == (9600, "N", 115200)  # type: ignore[union-attr]
    assert buses["a"].bits_per_char == 10  # type: ignore[union-attr]


def test_a_relative_serial_port_is_relative_to_the_config_file(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Like every other path in the config: not to the directory the agent was started from.
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "agent.toml"
    path.write_text(IDENTITY + '[buses.a]\ntransport = "rtu"\nport = "sim/pty-a"\n'
                    '[buses.b]\ntransport = "line"\nport = "/dev/ttyACM*"\n')
    monkeypatch.chdir(tmp_path)
    settings = load(path)
    assert settings.buses["a"].port == str(tmp_path / "etc" / "sim" / "pty-a")  # type: ignore[union-attr]
    assert settings.buses["b"].port == "/dev/ttyACM*"  # type: ignore[union-attr]
    assert settings.base_dir == (tmp_path / "etc").resolve()


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
    path.write_text(IDENTITY + text)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert f"{path}: {key}" in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    (CAB + 'model = "ladewache-8"\n[devices.metre]\nretries = 0\n',
     "devices.metre: model ladewache-8 has no such device"),
    (CAB + 'model = "ladewache-16-line"\n[buses.board]\ntransport = "rtu"\nport = "/dev/x"\n',
     "device board: profile ladewache-line-board-16 is a line board, not Modbus"),
    (CAB + 'model = "ladewache-8"\n[buses.main]\ntransport = "line"\nport = "/dev/x"\n',
     "profile ladewache-slot-meter-16 is a Modbus device"),
    (CAB + 'model = "ladewache-16-line"\n',
     "device 'board' of model ladewache-16-line sits on bus 'board'"),
])
def test_check_config_refuses_devices_that_do_not_fit(tmp_path: Path, text: str, message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    [line] = _config_error_lines(capsys.readouterr().err)
    assert line.startswith(f"{path}: ") and message in line


def test_check_config_validates_a_profile_file_of_a_model(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "board.toml").write_text('kind = "line"\nname = "b"\nperiod_s = 5\nmax_age_s = 1\n'
                                         '[[points]]\nname = "power"\ncount = 2\n')
    (tmp_path / "model.toml").write_text('name = "m"\nslots = 2\n[devices.b]\nprofile = "board.toml"\n'
                                         'bus = "b"\n[signals]\nslot_power = ["b.power"]\n')
    path = tmp_path / "agent.toml"
    path.write_text(CAB + 'model = "model.toml"\n[buses.b]\ntransport = "line"\nport = "/x"\n')
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    [line] = _config_error_lines(capsys.readouterr().err)
    assert line.startswith(f"{path}: cabinet.model: ")
    assert "board.toml: max_age_s: must be >= period_s (5)" in line


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
    path.write_text(IDENTITY + '[charging]\nwindows = ["22:00-6"]\n')
    with pytest.raises(ConfigError, match=r"charging: .*22:00-6"):
        load(path)
    path.write_text(IDENTITY + '[charging]\nwindows = ["22:00-06:00"]\ntimezone = "Europe/Berlin"\n')
    assert load(path).charging.parsed().active(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))


# -- config errors at start and in check-config (issue 15): one line naming source and key -------

_NOT_PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
_TLS = '[mqtt]\nhost = "localhost"\nport = 8883\ntls = true\n'
_IS_ROOT = os.geteuid() == 0

# id: (config text, or bytes; None = no file; "DIR" = a directory; env; extra files (None: a
# directory; "FILE-RO": a file nobody may write; "DIR-RO": a directory nobody may write); the one
# line expected, with {path} the config file and {tmp} its folder; needs a non-root user)
AGENT_ERRORS: dict[str, tuple[str | bytes | None, dict[str, str], Files, str, bool]] = {
    "file not found": (None, {}, {}, "{path}: cannot read config: file not found", False),
    "a directory": ("DIR", {}, {}, "{path}: cannot read config: is a directory, not a file", False),
    "not readable": (IDENTITY, {}, {"CHMOD-000": ""},
                     "{path}: cannot read config: not readable (permission denied for this user)", True),
    "invalid UTF-8": (IDENTITY.replace("gs-test", "gs-t\udcfcst").encode("utf-8", "surrogateescape"),
                      {}, {}, "{path}: cabinet.site (line 2, column 13): not valid UTF-8 (byte 0xfc); "
                      "save the file as UTF-8", False),
    "invalid TOML": (IDENTITY + "[mqtt]\nport = \n", {}, {},
                     "{path}: mqtt.port (line 6, column 8): not valid TOML: Invalid value", False),
    "unknown key": (IDENTITY + '[mqtt]\nhots = "broker"\n', {}, {}, "{path}: mqtt.hots: unknown key", False),
    "wrong type": (IDENTITY + '[mqtt]\nport = "eight"\n', {}, {},
                   "{path}: mqtt.port: Input should be a valid integer, unable to parse string as an "
                   "integer", False),
    "wrong value": (IDENTITY + "[mqtt]\nport = 70000\n", {}, {},
                    "{path}: mqtt.port: Input should be less than or equal to 65535", False),
    "env: wrong type": (IDENTITY, {"LADEWACHE_MQTT__PORT": "eight"}, {},
                        "environment LADEWACHE_MQTT__PORT: mqtt.port: Input should be a valid "
                        "integer, unable to parse string as an integer", False),
    "env: unknown key": (IDENTITY, {"LADEWACHE_MQTT__HOTS": "x"}, {},
                         "environment LADEWACHE_MQTT__HOTS: mqtt.hots: unknown key", False),
    "env: not JSON": (IDENTITY, {"LADEWACHE_MQTT": "{port: 1}"}, {},
                      "environment LADEWACHE_MQTT: mqtt: not valid JSON: Expecting property name "
                      "enclosed in double quotes: line 1 column 2 (char 1)", False),
    "CA file missing": (IDENTITY + _TLS + 'ca_file = "ca.pem"\n', {}, {},
                        "{path}: mqtt.ca_file: {tmp}/ca.pem: file not found", False),
    "CA file a directory": (IDENTITY + _TLS + 'ca_file = "certs"\n', {}, {"certs": None},
                            "{path}: mqtt.ca_file: {tmp}/certs: is a directory, not a file", False),
    "CA file not readable": (IDENTITY + _TLS + 'ca_file = "ca.pem"\n', {}, {"ca.pem": "CHMOD-000"},
                             "{path}: mqtt.ca_file: {tmp}/ca.pem: not readable (permission denied "
                             "for this user)", True),
    "CA file not PEM": (IDENTITY + _TLS + 'ca_file = "ca.pem"\n', {}, {"ca.pem": _NOT_PEM},
                        "{path}: mqtt.ca_file: {tmp}/ca.pem: not a PEM CA certificate", False),
    "env: CA file missing": (IDENTITY + _TLS, {"LADEWACHE_MQTT__CA_FILE": "/nonexistent/ca.pem"}, {},
                             "environment LADEWACHE_MQTT__CA_FILE: mqtt.ca_file: /nonexistent/ca.pem: "
                             "file not found", False),
    "client cert missing": (IDENTITY + _TLS + 'cert_file = "client.crt"\n', {}, {},
                            "{path}: mqtt.cert_file: {tmp}/client.crt: file not found", False),
    "outbox dir is a file": (IDENTITY + '[outbox]\npath = "state/outbox.sqlite"\n', {}, {"state": ""},
                             "{path}: outbox.path: {tmp}/state/outbox.sqlite: {tmp}/state is a file, "
                             "not a directory", False),
    "outbox is a directory": (IDENTITY + '[outbox]\npath = "state"\n', {}, {"state": None},
                              "{path}: outbox.path: {tmp}/state: is a directory, not the outbox file",
                              False),
    "outbox dir not writable": (IDENTITY + '[outbox]\npath = "state/outbox.sqlite"\n', {},
                                {"state": "DIR-RO"}, "{path}: outbox.path: {tmp}/state/outbox.sqlite: "
                                "{tmp}/state is not writable for this user", True),
    "env: outbox dir is a file": (IDENTITY, {"LADEWACHE_OUTBOX__PATH": "{tmp}/state/o.sqlite"},
                                  {"state": ""}, "environment LADEWACHE_OUTBOX__PATH: outbox.path: "
                                  "{tmp}/state/o.sqlite: {tmp}/state is a file, not a directory", False),
    "unknown model": (CAB + 'model = "ladewache-99"\n', {}, {},
                      "{path}: cabinet.model: unknown cabinet model 'ladewache-99'; shipped: ", False),
    "model file missing": (CAB + 'model = "mine.toml"\n', {}, {},
                           "{path}: cabinet.model: {tmp}/mine.toml: cannot read cabinet model", False),
    "model file not UTF-8": (CAB + 'model = "mine.toml"\n', {},
                             {"mine.toml": 'name = "m\xfc"\n'.encode("latin-1")},
                             "{path}: cabinet.model: {tmp}/mine.toml: name (line 1, column 10): "
                             "not valid UTF-8 (byte 0xfc); save the file as UTF-8", False),
}


@pytest.mark.timeout(30)  # today's code started the agent on some of these: it must not hang
@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("case", list(AGENT_ERRORS))
def test_a_config_error_is_one_line_naming_source_and_key(
        case: str, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config, env, files, expected, needs_non_root = AGENT_ERRORS[case]
    if needs_non_root and _IS_ROOT:
        pytest.skip("root reads and writes whatever the mode says; run the tests as a user")
    path = arrange(tmp_path / "agent.toml", monkeypatch, config, env, files)
    assert main([command, "--config", str(path)]) == EXIT_CONFIG
    [line] = _config_error_lines(capsys.readouterr().err)
    assert line.startswith(expected.format(path=path, tmp=tmp_path)), line


@pytest.mark.parametrize("missing", ["site", "id", "model"])
def test_check_config_refuses_a_config_without_its_identity(
        missing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A default identity would publish as another cabinet: site, id and model must be given."""
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(line for line in IDENTITY.splitlines()
                              if not line.startswith(f"{missing} =")) + "\n")
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    assert _config_error_lines(capsys.readouterr().err) == [
        f"{path}: cabinet.{missing}: Field required (set it in the file or as "
        f"LADEWACHE_CABINET__{missing.upper()})"]


def test_without_a_cabinet_section_each_identity_key_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[mqtt]\nhost = "localhost"\n')
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    lines = _config_error_lines(capsys.readouterr().err)
    assert [line.split(": ")[1] for line in lines] == ["cabinet.site", "cabinet.id", "cabinet.model"]
    assert main(["run"]) == EXIT_CONFIG  # no file at all: the environment must give it
    assert _config_error_lines(capsys.readouterr().err)[0].startswith("(no config file): cabinet.site")


def test_the_identity_may_come_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[mqtt]\nhost = "localhost"\n')
    for key, value in (("SITE", "gs-env"), ("ID", "k9"), ("MODEL", "ladewache-8")):
        monkeypatch.setenv(f"LADEWACHE_CABINET__{key}", value)
    assert main(["check-config", "--config", str(path)]) == 0
    assert capsys.readouterr().out.startswith("config OK: cabinet gs-env/k9, model ladewache-8")


def test_check_config_accepts_a_ca_file_that_is_there(
        tmp_path: Path, ca_pem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The positive control of the CA cases: the same config with the file present passes."""
    path = tmp_path / "agent.toml"
    path.write_text(IDENTITY + _TLS + f'ca_file = "{ca_pem.name}"\n'
                    '[outbox]\npath = "state/outbox.sqlite"\n')
    assert main(["check-config", "--config", str(path)]) == 0, capsys.readouterr().err
    assert not (tmp_path / "state").exists()  # checked, not created: check-config changes nothing


def test_every_problem_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    (tmp_path / "state").write_text("")
    path.write_text(IDENTITY + _TLS + 'ca_file = "ca.pem"\n[outbox]\npath = "state/o.sqlite"\n'
                    '[devices.ghost]\n')
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    keys = [line.split(": ")[1] for line in _config_error_lines(capsys.readouterr().err)]
    assert keys == ["devices.ghost", "mqtt.ca_file", "outbox.path"]


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    """The console script as systemd starts it: exit code and stderr of the real process."""
    path = tmp_path / "agent.toml"
    path.write_bytes(IDENTITY.replace("gs-test", "gs-t\udcfcst").encode("utf-8", "surrogateescape"))
    result = subprocess.run([sys.executable, "-m", "cabinet_agent", "run", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_CONFIG == 78
    assert _config_error_lines(result.stderr) == [
        f"{path}: cabinet.site (line 2, column 13): not valid UTF-8 (byte 0xfc); save the file as UTF-8"]
