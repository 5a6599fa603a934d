"""``[mqtt] failover``: a list of further brokers, each entry checked and named when it is wrong,
the plain-MQTT rule applied to every broker, and check-config saying which brokers it will use."""

from __future__ import annotations

from pathlib import Path

import pytest

from cabinet_agent.cli import main
from cabinet_agent.common.broker_address import BrokerAddress
from cabinet_agent.common.errors import EXIT_CONFIG, ConfigError
from cabinet_agent.config import load

IDENTITY = '[cabinet]\nsite = "gs-test"\nid = "k1"\nmodel = "ladewache-8"\n'
PREFIX = "cabinet-agent: config error: "


def _write(tmp_path: Path, mqtt: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f"{IDENTITY}[mqtt]\n{mqtt}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("mqtt", "brokers"), [
    ('host = "127.0.0.1"', ["127.0.0.1:1883"]),  # no failover: one broker, as before
    ('host = "127.0.0.1"\nfailover = []', ["127.0.0.1:1883"]),
    ('host = "127.0.0.1"\nport = 1884\nfailover = ["localhost", "127.0.0.2:1885", "[::1]"]',
     ["127.0.0.1:1884", "localhost:1884", "127.0.0.2:1885", "[::1]:1884"]),
    ('host = "a.example"\ntls = true\nport = 8883\nfailover = ["b.example", "[fd00::2]:18883"]',
     ["a.example:8883", "b.example:8883", "[fd00::2]:18883"]),
    ('host = "a.example"\nallow_plaintext = true\nfailover = ["b.example:1883", "10.0.0.9"]',
     ["a.example:1883", "b.example:1883", "10.0.0.9:1883"]),
    # the same host on another port is another broker
    ('host = "127.0.0.1"\nfailover = ["127.0.0.1:1884"]', ["127.0.0.1:1883", "127.0.0.1:1884"]),
])
def test_failover_brokers_follow_host_and_port_in_their_order(
        tmp_path: Path, mqtt: str, brokers: list[str]) -> None:
    settings = load(_write(tmp_path, mqtt))
    assert [str(b) for b in settings.mqtt.brokers] == brokers
    assert settings.mqtt.brokers[0] == BrokerAddress(settings.mqtt.host, settings.mqtt.port)


def test_the_list_may_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADEWACHE_MQTT__FAILOVER", '["127.0.0.2", "127.0.0.3:2883"]')
    settings = load(_write(tmp_path, 'host = "127.0.0.1"'))
    assert [str(b) for b in settings.mqtt.brokers] == ["127.0.0.1:1883", "127.0.0.2:1883",
                                                       "127.0.0.3:2883"]


_PLAIN = "plain MQTT to {} is refused: set tls = true"

# the [mqtt] section; the one line expected after "<file>: "
BAD: dict[str, tuple[str, str]] = {
    "empty entry": ('failover = ["127.0.0.2", ""]', "mqtt.failover: entry 2 '': empty entry"),
    "empty host": ('failover = [":1884"]', "mqtt.failover: entry 1 ':1884': empty host"),
    "port 0": ('failover = ["127.0.0.2:0"]',
               "mqtt.failover: entry 1 '127.0.0.2:0': port 0 is not in 1-65535"),
    "port too high": ('failover = ["127.0.0.2:65536"]',
                      "mqtt.failover: entry 1 '127.0.0.2:65536': port 65536 is not in 1-65535"),
    "port not a number": ('failover = ["127.0.0.2:mqtt"]',
                          "mqtt.failover: entry 1 '127.0.0.2:mqtt': port 'mqtt' is not a number"),
    "a URL": ('failover = ["mqtt://127.0.0.2"]',
              "mqtt.failover: entry 1 'mqtt://127.0.0.2': give host or host:port, not a URL"),
    "IPv6 without brackets": ('failover = ["::1:1884:x"]',
                              "mqtt.failover: entry 1 '::1:1884:x': an IPv6 address with a port "
                              "is written [address]:port"),
    "the primary again": ('port = 1884\nfailover = ["127.0.0.2", "127.0.0.1"]',
                          "mqtt.failover: entry 2 '127.0.0.1': is host:port itself "
                          "(127.0.0.1:1884); list only the others"),
    "the primary with its port": ('failover = ["127.0.0.1:1883"]',
                                  "mqtt.failover: entry 1 '127.0.0.1:1883': is host:port itself"),
    "listed twice": ('failover = ["127.0.0.2", "127.0.0.2:1883"]',
                     "mqtt.failover: entry 2 '127.0.0.2:1883': 127.0.0.2:1883 is listed twice"),
    "not a list": ('failover = "127.0.0.2"', "mqtt.failover: Input should be a valid list"),
    "plain to a remote failover": ('failover = ["127.0.0.2", "b.example:1883"]',
                                   "mqtt.failover: entry 2 'b.example:1883': "
                                   + _PLAIN.format("b.example")),
    "plain to a private address": ('failover = ["10.0.0.9"]',
                                   "mqtt.failover: entry 1 '10.0.0.9': " + _PLAIN.format("10.0.0.9")),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_failover_entry_is_one_line_naming_the_file_key_and_entry(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mqtt, expected = BAD[case]
    path = _write(tmp_path, f'host = "127.0.0.1"\n{mqtt}')
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith(f"{PREFIX}{path}: {expected}"), line


def test_an_entry_from_the_environment_is_named_by_its_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADEWACHE_MQTT__FAILOVER", '["127.0.0.2:0"]')
    with pytest.raises(ConfigError) as info:
        load(_write(tmp_path, 'host = "127.0.0.1"'))
    assert str(info.value) == ("environment LADEWACHE_MQTT__FAILOVER: mqtt.failover: "
                               "entry 1 '127.0.0.2:0': port 0 is not in 1-65535")


@pytest.mark.parametrize(("mqtt", "error"), [
    # TLS covers every broker; allow_plaintext every broker too
    ('host = "a.example"\ntls = true\nfailover = ["b.example", "10.0.0.9"]', None),
    ('host = "a.example"\nallow_plaintext = true\nfailover = ["b.example"]', None),
    # a loopback primary does not make a remote failover plain-safe, nor the other way round
    ('host = "127.0.0.1"\nfailover = ["b.example"]', "mqtt.failover: entry 1 'b.example': "
                                                     + _PLAIN.format("b.example")),
    ('host = "b.example"\nfailover = ["127.0.0.1:1884"]', "mqtt: " + _PLAIN.format("b.example")),
    ('host = "127.0.0.1"\nfailover = ["localhost:1884", "[::1]:1885"]', None),
])
def test_the_plaintext_rule_holds_for_every_broker(tmp_path: Path, mqtt: str, error: str | None) -> None:
    path = _write(tmp_path, mqtt)
    if error is None:
        load(path)
        return
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: {error}"), info.value


def test_check_config_names_every_broker_in_order(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, 'host = "127.0.0.1"\nfailover = ["127.0.0.2:1884"]')
    assert main(["check-config", "--config", str(path)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("broker 127.0.0.1:1883, then 127.0.0.2:1884"), first
