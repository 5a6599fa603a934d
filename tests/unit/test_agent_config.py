from __future__ import annotations

import logging
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
    path.write_text('[mqtt]\nhost = "from-file"\nport = 1883\n')
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
