"""Server settings: defaults, strictness, environment overrides, redaction; CLI exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cabinet_agent.configfile import redacted
from server.cli import main
from server.config import ServerSettings, load_server_settings, resolve_path
from server.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_work_without_a_file() -> None:
    settings = load_server_settings(None)
    assert (settings.mqtt.host, settings.mqtt.port) == ("127.0.0.1", 1883)
    assert settings.mqtt.client_id == "ladewache-server"
    assert settings.tsdb.url is None
    assert (settings.tsdb.batch_size, settings.tsdb.flush_interval_s) == (5000, 1.0)
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.alerts.offline_pending_s == 120.0
    assert settings.alerts.silence_factor == 3.0


def test_every_field_is_described() -> None:
    def undescribed(model: type) -> list[str]:
        return [name for name, field in model.model_fields.items()  # type: ignore[attr-defined]
                if not field.description]

    assert undescribed(ServerSettings) == []
    for name in ("mqtt", "tsdb", "http", "alerts"):
        section = ServerSettings.model_fields[name].annotation
        assert undescribed(section) == [], name  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[mqtt]\nhots = 'x'\n", "mqtt.hots: unknown key"),
        ("[mqtt]\nport = 0\n", "mqtt.port"),
        ("[tsdb]\nurl = 'ftp://x'\n", "tsdb.url"),
        ("[tsdb]\nbatch_size = 10\nmax_buffer_points = 5\n", "tsdb"),
        ("[alerts]\nsilence_factor = 0.5\n", "alerts.silence_factor"),
        ("[webhook]\nurl = 'x'\n", "webhook: unknown key"),
        ("[mqtt\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_server_settings(path)
    assert str(path) in str(info.value)
    assert where in str(info.value)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "[mqtt]\nport = 1884\n[tsdb]\nurl = 'http://tsdb:8428'\n")
    monkeypatch.setenv("LADEWACHE_MQTT__PORT", "1999")
    settings = load_server_settings(path)
    assert settings.mqtt.port == 1999
    assert settings.tsdb.url == "http://tsdb:8428"


def test_secrets_are_redacted_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[mqtt]\nusername = 'collector'\npassword = 'geheim'\n"
                            "tls = true\nca_file = 'certs/ca.pem'\n"
                            "[tsdb]\nurl = 'http://x:8086'\ntoken = 'tok'\n")
    settings = load_server_settings(path)
    data = redacted(settings)
    assert data["mqtt"]["password"] == "***"
    assert data["tsdb"]["token"] == "***"
    assert "geheim" not in json.dumps(data, default=str)
    assert settings.mqtt.ca_file is not None
    assert resolve_path(settings, settings.mqtt.ca_file) == tmp_path.resolve() / "certs/ca.pem"


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "deploy" / "examples" / "server.toml"
    settings = load_server_settings(example)
    assert settings.http.port == 8080


def test_cli_bad_config_exits_2_naming_file_and_key(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "[http]\nprot = 1\n")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: http.prot: unknown key" in err


def test_cli_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_cli_check_config_prints_redacted(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "[mqtt]\npassword = 'geheim'\n")
    assert main(["check-config", "--config", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mqtt"]["password"] == "***"


def test_the_example_config_shows_the_organisation() -> None:
    example = Path(__file__).parents[2] / "deploy" / "examples" / "server.toml"
    settings = load_server_settings(example)
    org = settings.organisation
    assert org.state == "SL" and org.timezone == "Europe/Berlin"
    assert org.team_for("gs-park").id == "kreis-it"  # type: ignore[union-attr]
    assert org.team_for("igs-neustadt").id == "it-neustadt"  # type: ignore[union-attr]
    assert org.school("gs-park").policy == "shared_pool"  # type: ignore[union-attr]
    assert org.cabinet("gs-park", "schrank-1").slots[1] == "GS-PARK-0001"  # type: ignore[union-attr]
    assert resolve_path(settings, org.school_holidays[0]).exists()
    assert settings.notify.smtp.security == "starttls"
    assert settings.alerts.rules.over_temperature.warn_c == 40.0


_ORG = """
[organisation]
district_team = "it"
[[organisation.teams]]
id = "it"
name = "IT"
[[organisation.municipalities]]
id = "m"
name = "M"
[[organisation.schools]]
site = "s"
name = "S"
municipality = "m"
"""


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[notify]\ngroup_wait_s = 0\n", "notify.group_wait_s"),
        ("[notify]\ngroup_interval_s = 0\n", "notify.group_interval_s"),
        ("[notify]\nrepeat_interval_s = 0\n", "notify.repeat_interval_s"),
        ("[notify.smtp]\nsecurty = 'tls'\n", "notify.smtp.securty: unknown key"),
        ("[alerts.rules.door_open]\npending = 5\n", "alerts.rules.door_open.pending: unknown key"),
        ("[alerts.rules.over_temperature]\nwarn_c = 60\n", "critical_c must be above warn_c"),
        ("[alerts.rules.nonsense]\nenabled = true\n", "alerts.rules.nonsense: unknown key"),
        (_ORG + "colour = 'blue'\n", "organisation.schools.0.colour: unknown key"),
        (_ORG + "policy = 'sometimes'\n", "organisation.schools.0.policy"),
        (_ORG + "hours = '8-16'\n", "organisation.schools.0.hours"),
        (_ORG.replace('municipality = "m"', 'municipality = "x"'), "school 's': no municipality 'x'"),
        (_ORG.replace('district_team = "it"', 'district_team = "y"'), "district_team: no team 'y'"),
        (_ORG + "[[organisation.cabinets]]\nschool = 'q'\nid = 'k1'\n", "cabinet 'k1': no school 'q'"),
        (_ORG + "[[organisation.cabinets]]\nschool = 's'\nid = 'k1'\nslots = { 1 = 'A', 2 = 'A' }\n",
         "asset tags used twice"),
        (_ORG + "[organisation.schools.contacts]\nemail = ['not-an-address']\n", "not an e-mail"),
        ("[organisation]\ntimezone = 'Mars/Olympus'\n", "organisation.timezone"),
    ],
)
def test_bad_alerting_config_names_the_key(tmp_path: Path, text: str, where: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_server_settings(path)
    assert where in str(info.value)


def test_alerting_sections_are_described() -> None:
    from server.alerts.rules import RulesSettings
    from server.notify.settings import NotifySettings, SmtpSettings, WebhookSettings

    for model in (NotifySettings, SmtpSettings, WebhookSettings, RulesSettings):
        assert [n for n, f in model.model_fields.items() if not f.description] == [], model
    for name, field in RulesSettings.model_fields.items():
        section = field.annotation
        assert [n for n, f in section.model_fields.items()  # type: ignore[union-attr]
                if not f.description] == [], name


def test_smtp_password_and_apprise_urls_are_redacted(tmp_path: Path) -> None:
    path = _write(tmp_path, "[notify.smtp]\nhost = 'mail'\npassword = 'geheim'\n" + _ORG
                  + "[organisation.schools.contacts]\napprise = ['tgram://bot-token/123']\n"
                  "webhooks = [{ url = 'https://x.example/h', secret = 'hmac-key' }]\n")
    text = json.dumps(redacted(load_server_settings(path)), default=str)
    assert "geheim" not in text and "bot-token" not in text and "hmac-key" not in text


@pytest.mark.parametrize(("tick_s", "took_s", "pause"), [(1.0, 0.01, 1.0), (1.0, 0.25, 1.0),
                                                         (1.0, 0.5, 2.0), (5.0, 2.0, 8.0)])
def test_alert_evaluation_gets_at_most_a_fifth_of_the_time(tick_s: float, took_s: float,
                                                           pause: float) -> None:
    from server.app import alert_pause

    assert alert_pause(tick_s, took_s) == pytest.approx(pause)
