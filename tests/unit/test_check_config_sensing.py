"""``check-config`` tells a school which cabinets cannot see a full iPad leave (issue 14): the agent
for its cabinet model, the server once for its shared-pool schools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trustme

from cabinet_agent.cabinet_model import load_cabinet_model
from cabinet_agent.cli import main as agent_main
from cabinet_agent.cli import sensing_notes
from server.cli import main as server_main
from server.cli import shared_pool_note
from server.org import Organisation

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
POWER_ONLY_DE = ("Hinweis: Dieser Schrank misst nur Strom: ob ein volles iPad entnommen wurde, zeigt "
                 "sich erst, wenn es nachlädt (bis zu 5 Tage). Präsenzschalter oder "
                 "Steckererkennung geben bis zur Rückgabeprüfung eine sichere Antwort.")


def _model(tmp_path: Path, signals: str, thresholds: str = "") -> str:
    path = tmp_path / "model.toml"
    path.write_text('name = "m"\nslots = 16\n[devices.meter]\nprofile = "ladewache-slot-meter-16"\n'
                    'address = 1\n[devices.io]\nprofile = "waveshare-io-8ch"\naddress = 2\n'
                    f"[signals]\n{signals}\n{thresholds}", encoding="utf-8")
    return str(path)


def test_a_power_only_model_gets_the_note_in_german_and_english() -> None:
    lines = sensing_notes(load_cabinet_model("ladewache-16"))
    assert lines[0] == "senses: slot power yes, presence inputs no, door contact yes"
    assert lines[1].strip() == POWER_ONLY_DE
    assert "(up to 5 days)" in lines[2] and "Presence switches or plug detection" in lines[2]


def test_a_model_with_presence_inputs_gets_no_note() -> None:
    assert sensing_notes(load_cabinet_model("ladewache-16-presence")) == [
        "senses: slot power yes, presence inputs yes, door contact yes"]


def test_the_window_comes_from_the_models_thresholds(tmp_path: Path) -> None:
    model = _model(tmp_path, 'slot_power = ["meter.power"]\ndoor = "io.input[0]"',
                   "[thresholds]\nstandby_drain_per_day = 0.02\n")
    lines = sensing_notes(load_cabinet_model(model))
    assert "(bis zu 2,5 Tage)" in lines[1] and "(up to 2.5 days)" in lines[2]


def test_a_door_only_model_says_no_slot_can_be_judged(tmp_path: Path) -> None:
    lines = sensing_notes(load_cabinet_model(_model(tmp_path, 'door = "io.input[0]"')))
    assert lines[0] == "senses: slot power no, presence inputs no, door contact yes"
    assert "kein Fach kann beurteilt werden" in lines[1] and "no slot can be judged" in lines[2]


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an installation adds to the examples: the CA beside the config, a state directory."""
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    monkeypatch.setenv("LADEWACHE_MQTT__CA_FILE", str(ca))
    monkeypatch.setenv("LADEWACHE_STATE__DIR", str(tmp_path / "state"))


@pytest.mark.usefixtures("installed")
def test_agent_check_config_prints_it_and_still_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert agent_main(["check-config", "--config", str(EXAMPLES / "agent.toml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("config OK: cabinet")  # the first line as before
    assert out[1].startswith("senses: slot power yes") and out[2].strip() == POWER_ONLY_DE


def _org(policies: list[str]) -> Organisation:
    return Organisation.model_validate({
        "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
        "municipalities": [{"id": "nord", "name": "Nord"}],
        "schools": [{"site": f"s{n}", "name": f"Schule {n}", "municipality": "nord", "policy": p}
                    for n, p in enumerate(policies)]})


def test_the_server_note_names_the_shared_pool_schools() -> None:
    note = shared_pool_note(_org(["shared_pool", "one_to_one", "shared_pool"]))
    assert note is not None
    german, english = note.splitlines()
    assert german.startswith("Hinweis für Schulen mit gemeinsamem iPad-Pool (Schule 0, Schule 2): ")
    assert "erst nach dem Beweisfenster des Agenten" in german and "Standard 5 Tage" in german
    assert "Präsenzschalter oder Steckererkennung" in german
    assert english.startswith("Note for shared-pool schools (Schule 0, Schule 2): ")
    assert "(default 5 days;" in english and "certain answer at the return check" in english
    assert shared_pool_note(_org(["one_to_one"])) is None
    assert shared_pool_note(Organisation()) is None
    many = shared_pool_note(_org(["shared_pool"] * 8))
    assert many is not None and "Schule 4 und 3 weitere" in many and "Schule 4 and 3 more" in many


@pytest.mark.usefixtures("installed")
def test_server_check_config_keeps_json_on_stdout_and_says_it_once(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert server_main(["check-config", "--config", str(EXAMPLES / "server.toml")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["organisation"]["schools"]  # stdout: the config, as before
    assert captured.err.count("Hinweis für Schulen mit gemeinsamem iPad-Pool") == 1
    assert captured.err.count("Note for shared-pool schools") == 1


def test_server_check_config_without_shared_pool_says_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "server.toml"
    path.write_text("[mqtt]\nhost = 'localhost'\n", encoding="utf-8")
    assert server_main(["check-config", "--config", str(path)]) == 0
    assert capsys.readouterr().err == ""
