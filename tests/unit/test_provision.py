from __future__ import annotations

import base64
import hashlib
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from cabinet_agent.config import load as load_agent
from server.broker_files import hash_password
from server.cli import main
from server.config import MqttSettings
from server.provision import COLLECTOR_USER, cabinet_identity


def _run(tmp_path: Path, *args: str) -> int:
    return main(["provision", *args, "--dir", str(tmp_path / "prov"), "--passwd-file",
                 str(tmp_path / "passwd"), "--acl-file", str(tmp_path / "acl"), "--hasher", "builtin"])


def _add(tmp_path: Path, *extra: str, site: str = "gs-park", cabinet: str = "schrank-1") -> int:
    return _run(tmp_path, "add", "--site", site, "--cabinet", cabinet, "--model", "ladewache-8",
                "--asset-tag", "1=GS-0001", "--broker-host", "broker.example", *extra)


def _password(tmp_path: Path, site: str = "gs-park", cabinet: str = "schrank-1") -> str:
    env = tmp_path / "prov" / "cabinets" / site / cabinet / "agent.env"
    return env.read_text().split("LADEWACHE_MQTT__PASSWORD=", 1)[1].strip()


def _verify(line: str, password: str) -> bool:
    _, seven, iterations, salt, digest = line.split(":", 1)[1].split("$")
    assert seven == "7"
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return computed == base64.b64decode(digest)


def test_builtin_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    assert _verify("u:" + hash_password("pw"), "pw") and not _verify("u:" + hash_password("pw"), "px")
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    passwd = tmp_path / "p"
    passwd.touch()
    subprocess.run([tool, "-b", str(passwd), "alice", "s3cret"], check=True)
    assert _verify(passwd.read_text().strip(), "s3cret")  # the same scheme mosquitto writes


def test_add_writes_a_valid_config_an_env_file_and_acl(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(tmp_path) == 0
    out = capsys.readouterr().out
    password = _password(tmp_path)
    assert password not in out and "--show-password" in out
    folder = tmp_path / "prov" / "cabinets" / "gs-park" / "schrank-1"
    assert stat.S_IMODE((folder / "agent.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "passwd").stat().st_mode) == 0o600
    assert main(["provision", "list", "--dir", str(tmp_path / "prov")]) == 0
    assert "cabinet gs-park/schrank-1 user=gs-park.schrank-1" in capsys.readouterr().out
    acl = (tmp_path / "acl").read_text()
    assert "user gs-park.schrank-1\ntopic readwrite ladewache/v1/gs-park/schrank-1/#\n" in acl
    assert "pattern" not in acl.replace("no pattern lines", "")
    assert "password" not in (folder / "agent.toml").read_text().split("[mqtt]")[1].replace(
        "The password", "")
    [line] = (tmp_path / "passwd").read_text().splitlines()
    assert line.startswith("gs-park.schrank-1:$7$") and _verify(line, password)


def test_show_password_prints_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(tmp_path, "--show-password") == 0
    assert f"password for gs-park.schrank-1: {_password(tmp_path)}" in capsys.readouterr().out


def test_a_second_add_is_refused_and_rotate_changes_only_the_password(tmp_path: Path) -> None:
    assert _add(tmp_path) == 0
    assert _add(tmp_path, site="gs-park", cabinet="schrank-2") == 0
    first, other = _password(tmp_path), _password(tmp_path, cabinet="schrank-2")
    assert _add(tmp_path) == 2
    assert _run(tmp_path, "rotate", "--site", "gs-park", "--cabinet", "schrank-1") == 0
    assert _password(tmp_path) != first
    assert _password(tmp_path, cabinet="schrank-2") == other
    lines = dict(line.split(":", 1) for line in (tmp_path / "passwd").read_text().splitlines())
    assert _verify(f"x:{lines['gs-park.schrank-1']}", _password(tmp_path))
    assert _run(tmp_path, "remove", "--site", "gs-park", "--cabinet", "schrank-1") == 0
    assert "gs-park.schrank-1" not in (tmp_path / "passwd").read_text()
    assert "gs-park.schrank-1" not in (tmp_path / "acl").read_text()
    assert _run(tmp_path, "rotate", "--site", "gs-park", "--cabinet", "schrank-1") == 2


@pytest.mark.parametrize(("extra", "why"), [
    (("--asset-tag", "9=GS-9"), "slots 1..8"),
    (("--model", "no-such-model"), "no-such-model"),
    (("--plaintext", "--broker-host", "x"), None),  # plaintext is a choice, not an error
])
def test_the_agent_loader_validates_what_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...],
        why: str | None) -> None:
    code = _add(tmp_path, *extra)
    if why is None:
        assert code == 0
        return
    assert code == 2 and why in capsys.readouterr().err
    assert not (tmp_path / "passwd").exists()  # nothing half-written
    assert not (tmp_path / "prov" / "cabinets" / "gs-park" / "schrank-1" / "agent.toml").exists()


def test_bad_ids_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(tmp_path, site="GS/Park") == 2
    assert "cabinet.site" in capsys.readouterr().err


@pytest.mark.parametrize(("one", "other", "collide"), [
    (("gs-a", "schrank_1"), ("gs-a", "schrank-1"), True),
    (("gs-a", "schrank-1"), ("GS-A", "Schrank-1"), True),
    (("gs-a", "schrank-1"), ("gs_a", "SCHRANK_1"), True),
    (("gs-a", "b"), ("gs", "a-b"), True),  # one Home Assistant node and ACL grant: ladewache_gs_a_b
    (("gs-a", "schrank-1"), ("gs-a", "schrank-2"), False),
    (("gs-a", "schrank-1"), ("gs-b", "schrank-1"), False),
    (("gs-a", "schrank-1"), ("gs-a", "schrank-10"), False),
    (("gs-a", "schrank1"), ("gs-a", "schrank-1"), False),  # a "-" is not nothing
])
def test_cabinet_identity_folds_case_and_dash_vs_underscore(
        one: tuple[str, str], other: tuple[str, str], collide: bool) -> None:
    assert (cabinet_identity(*one) == cabinet_identity(*other)) is collide


def test_a_colliding_cabinet_is_refused_naming_both_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(tmp_path, cabinet="schrank_1") == 0
    capsys.readouterr()
    files = [tmp_path / "passwd", tmp_path / "acl", tmp_path / "prov" / "cabinets.json"]
    before = [f.read_bytes() for f in files]
    for site, cabinet in (("gs-park", "schrank-1"), ("gs-park", "Schrank_1"), ("gs_park", "schrank_1")):
        assert _add(tmp_path, site=site, cabinet=cabinet) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"cabinet-server provision: cabinet {site}/{cabinet} collides with "
                              "cabinet gs-park/schrank_1: ") and err.count("\n") == 1, err
        assert not (tmp_path / "prov" / "cabinets" / site / cabinet).exists()
    assert [f.read_bytes() for f in files] == before
    assert _add(tmp_path, "--replace", cabinet="schrank_1") == 0  # a cabinet does not collide with itself


def test_collector_users_and_cabinets_never_share_a_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, "server", "--user", "gs-park.schrank-9") == 0
    assert _add(tmp_path, cabinet="schrank_9") == 2
    assert "collides with the collector's user gs-park.schrank-9" in capsys.readouterr().err
    assert _add(tmp_path) == 0
    assert _run(tmp_path, "server", "--user", "GS-Park.Schrank_1") == 2
    assert "collides with cabinet gs-park/schrank-1's user" in capsys.readouterr().err
    assert "GS-Park" not in (tmp_path / "acl").read_text()


def test_the_collectors_default_client_id_is_its_default_user(tmp_path: Path) -> None:
    # The shipped broker keys sessions by user name (use_username_as_clientid); the collector's
    # defaults name one identity, so docs and logs that speak of either mean the same session.
    assert MqttSettings().client_id == COLLECTOR_USER
    assert _run(tmp_path, "server") == 0
    assert (tmp_path / "passwd").read_text().startswith(f"{COLLECTOR_USER}:")
    conf = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "ladewache.conf"
    assert "\nuse_username_as_clientid true\n" in conf.read_text()


def test_a_second_collector_user_gets_its_own_env_file(tmp_path: Path) -> None:
    # two collectors on two machines (docs/deploy.md 6b): the second's password must not
    # overwrite the first's file
    assert _run(tmp_path, "server") == 0
    first = (tmp_path / "prov" / "server.env").read_text()
    assert _run(tmp_path, "server", "--user", "ladewache-server-2") == 0
    assert (tmp_path / "prov" / "server.env").read_text() == first
    second = (tmp_path / "prov" / "server-ladewache-server-2.env").read_text()
    assert "LADEWACHE_MQTT__PASSWORD=" in second and second != first
    # each file names its user: the same server.toml serves both machines
    assert "\nLADEWACHE_MQTT__USERNAME=ladewache-server\n" in first
    assert "\nLADEWACHE_MQTT__USERNAME=ladewache-server-2\n" in second


def test_add_writes_the_failover_brokers_the_agent_checks(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(tmp_path, "--failover-broker", "broker2.example:8883",
                "--failover-broker", "[fd00::2]") == 0
    config = tmp_path / "prov" / "cabinets" / "gs-park" / "schrank-1" / "agent.toml"
    settings = load_agent(config)
    assert [(b.host, b.port) for b in settings.mqtt.brokers][1:] == [
        ("broker2.example", 8883), ("fd00::2", 8883)]
    # a bad entry is refused by the agent's own check, naming it; nothing is written
    assert _add(tmp_path, "--failover-broker", "broker3.example:99999", cabinet="schrank-2") == 2
    assert "broker3.example:99999" in capsys.readouterr().err
    assert not list((tmp_path / "prov" / "cabinets" / "gs-park").glob("schrank-2/*"))
    assert len((tmp_path / "passwd").read_text().splitlines()) == 1  # schrank-1's only
