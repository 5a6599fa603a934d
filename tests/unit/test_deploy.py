"""deploy/: systemd units verify, the install script is sound, the examples refuse plain MQTT."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from cabinet_agent.cli import main as agent_main
from cabinet_agent.common.errors import ConfigError
from cabinet_agent.config import load as load_agent
from server.cli import main as server_main
from server.config import load_server_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
INSTALL = DEPLOY / "install-agent.sh"


def _unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # As shipped, the only complaint may be the ExecStart binary, which exists once installed.
    shipped = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    complaints = [line for line in shipped.stderr.splitlines() if line.strip()]
    assert all("/opt/ladewache/venv/bin/cabinet-" in line and "is not executable" in line
               for line in complaints), complaints
    # A copy whose ExecStart names an existing binary must verify cleanly: every other
    # directive (sandboxing, watchdog, devices) is understood by this systemd.
    copy = tmp_path / unit.name
    text = unit.read_text()
    binary = "/opt/ladewache/venv/bin/" + unit.stem
    assert binary in text
    copy.write_text(text.replace(binary, shutil.which("true") or "/bin/true"))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_agent_unit_watchdog_sandbox_and_serial_access() -> None:
    service = dict(_unit(DEPLOY / "systemd" / "cabinet-agent.service")["Service"])
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) >= 30
    assert service["Restart"] == "always"
    assert service["SupplementaryGroups"] == "dialout"
    assert service["StateDirectory"] == "ladewache"
    assert service["ProtectSystem"] == "strict"
    assert service["DevicePolicy"] == "closed"
    assert "PrivateDevices" not in service  # it would hide /dev/ttyUSB*
    assert service["RestrictAddressFamilies"].split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[key] == "yes", key
    text = (DEPLOY / "systemd" / "cabinet-agent.service").read_text()
    assert "DeviceAllow=char-ttyUSB rw" in text and "DeviceAllow=char-ttyACM rw" in text
    assert "SystemCallFilter=@system-service" in text


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_a_unit_does_not_restart_on_the_code_its_command_exits_with_on_a_config_error(
        unit: Path, tmp_path: Path) -> None:
    """A config error does not go away by restarting: the unit stops instead of looping every 5 s.
    The code is the one the real command returns for a config file that is not there."""
    main = {"cabinet-agent.service": agent_main, "cabinet-server.service": server_main}[unit.name]
    code = main(["run", "--config", str(tmp_path / "missing.toml")])
    service = _unit(unit)["Service"]
    assert service["Restart"] == "always"  # any other failure: restarted
    assert service["RestartPreventExitStatus"].split() == [str(code)]
    assert code not in (0, 1, 2)  # not a clean stop, a runtime failure or an argparse usage error


def test_server_unit_is_sandboxed_too() -> None:
    service = dict(_unit(DEPLOY / "systemd" / "cabinet-server.service")["Service"])
    assert service["Type"] == "notify"
    assert service["ProtectSystem"] == "strict" and service["PrivateDevices"] == "yes"
    assert service["StateDirectory"] == "ladewache"


def test_install_script_parses_and_passes_shellcheck() -> None:
    subprocess.run(["bash", "-n", str(INSTALL)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run([shellcheck, str(INSTALL)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_install_script_dry_run_changes_nothing_and_shows_every_step(tmp_path: Path) -> None:
    env = tmp_path / "agent.env"
    env.write_text("LADEWACHE_MQTT__PASSWORD=x\n")
    etc = tmp_path / "etc"
    result = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--config", str(DEPLOY / "examples" / "agent.toml"),
         "--env", str(env), "--etc", str(etc), "--prefix", str(tmp_path / "opt")],
        capture_output=True, text=True, check=True)
    out = result.stdout
    assert not etc.exists() and not (tmp_path / "opt").exists()
    assert f"install -m 0600 -o root -g root {env} {etc}/agent.env" in out
    assert f"{tmp_path}/opt/venv/bin/pip install" in out
    assert "systemctl enable cabinet-agent.service" in out
    assert "cabinet-agent.service /etc/systemd/system/cabinet-agent.service" in out
    bad = subprocess.run(["bash", str(INSTALL), "--dry-run", "--bogus"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_broker_config_is_tls_only_without_anonymous_access() -> None:
    lines = [line.split("#")[0].strip() for line in
             (DEPLOY / "mosquitto" / "ladewache.conf").read_text().splitlines()]
    lines = [line for line in lines if line]
    assert "allow_anonymous false" in lines
    assert [line for line in lines if line.startswith("listener")] == ["listener 8883"]
    assert any(line.startswith("certfile ") for line in lines)
    assert any(line.startswith("password_file ") for line in lines)
    assert any(line.startswith("acl_file ") for line in lines)


def test_production_examples_use_tls_and_refuse_plaintext(tmp_path: Path) -> None:
    agent = load_agent(DEPLOY / "examples" / "agent.toml")
    server = load_server_settings(DEPLOY / "examples" / "server.toml")
    assert agent.mqtt.tls and server.mqtt.tls
    assert agent.mqtt.port == server.mqtt.port == 8883
    for name in ("agent.toml", "agent-rtu.toml", "server.toml"):
        text = (DEPLOY / "examples" / name).read_text().replace("tls = true", "tls = false")
        plain = tmp_path / name
        plain.write_text(text)
        with pytest.raises(ConfigError, match=r"plain MQTT to broker\.schulen\.example is refused"):
            (load_server_settings if name == "server.toml" else load_agent)(plain)
    assert tomllib.loads((DEPLOY / "examples" / "agent.toml").read_text())["mqtt"]["username"] \
        == "gs-am-park.schrank-3a"


@pytest.mark.parametrize(("mqtt", "error"), [
    ('host = "127.0.0.1"', None),  # make demo and the tests: loopback, plain
    ('host = "localhost"', None),
    ('host = "::1"', None),
    ('host = "broker.example"', "plain MQTT to broker.example is refused"),
    ('host = "10.0.0.5"', "plain MQTT to 10.0.0.5 is refused"),
    ('host = "broker.example"\nallow_plaintext = true', None),
    ('host = "broker.example"\ntls = true', None),
    ('host = "broker.example"\ntls = true\ncert_file = "c.pem"\nkey_file = "k.pem"', None),
    ('host = "127.0.0.1"\ncert_file = "c.pem"', "cert_file/key_file need tls = true"),
    ('host = "b"\ntls = true\nkey_file = "k.pem"', "key_file needs cert_file"),
])
def test_plaintext_rule_is_the_same_for_agent_and_server(tmp_path: Path, mqtt: str,
                                                          error: str | None) -> None:
    path = tmp_path / "c.toml"
    identity = '[cabinet]\nsite = "s"\nid = "c"\nmodel = "ladewache-8"\n'  # the agent needs it
    for loader, head in ((load_agent, identity), (load_server_settings, "")):
        path.write_text(f"{head}[mqtt]\n{mqtt}\n")
        if error is None:
            loader(path)
        else:
            with pytest.raises(ConfigError) as info:
                loader(path)
            assert error in str(info.value)


def _env_lines(path: Path) -> dict[str, str]:
    """A systemd EnvironmentFile's assignments (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_two_machines_share_one_config_and_differ_by_their_env_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/deploy.md 6b: the same server.toml and unit on both machines; each machine's
    /etc/ladewache/server.env names its collector, its login and the shared store."""
    unit = _unit(DEPLOY / "systemd" / "cabinet-server.service")
    assert unit.get("Service", "EnvironmentFile").lstrip("-") == "/etc/ladewache/server.env"
    seen = []
    for env in sorted((DEPLOY / "examples" / "two-machines").glob("collector-*.env")):
        with monkeypatch.context() as patch:
            for key, value in _env_lines(env).items():
                patch.setenv(key, value)
            settings = load_server_settings(DEPLOY / "examples" / "server.toml")
        assert settings.state.url is not None
        url = settings.state.url.get_secret_value()
        assert url.startswith("postgresql+psycopg://")
        seen.append((settings.cluster.node, settings.mqtt.username, url))
    assert len(seen) == 2
    (node_1, user_1, url_1), (node_2, user_2, url_2) = seen
    assert node_1 != node_2 and user_1 != user_2 and url_1 == url_2
