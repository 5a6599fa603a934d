"""A cabinet model's extra points (``signals.points``, protocol revision 4): polled, validated when
the model loads, published raw with telemetry."""

from __future__ import annotations

from pathlib import Path

import pytest

import cabinet_agent
from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model, wired_points
from cabinet_agent.common.errors import ConfigError
from cabinet_agent.common.protocol import PointReading
from cabinet_agent.registers import Value

SHIPPED = (Path(cabinet_agent.__file__).parent / "data/models/ladewache-8.toml").read_text()


def _model(tmp_path: Path, points: str) -> LoadedCabinet:
    path = tmp_path / "with-points.toml"
    path.write_text(SHIPPED.replace("[signals]\n", f"[signals]\npoints = {points}\n"),
                    encoding="utf-8")
    return load_cabinet_model(path)


def test_a_model_without_points_publishes_none() -> None:
    cabinet = load_cabinet_model("ladewache-8")
    assert cabinet.points({"climate": {"humidity": 40.0}}) is None
    assert "humidity" not in wired_points(cabinet.model)["climate"]  # not even polled


def test_named_points_are_polled_and_published_raw_with_their_units(tmp_path: Path) -> None:
    cabinet = _model(tmp_path, '["climate.humidity", "meter.current[2:4]"]')
    assert wired_points(cabinet.model)["climate"] == {"temperature", "humidity"}
    assert wired_points(cabinet.model)["meter"] == {"power", "current"}
    readings: dict[str, dict[str, Value | list[Value]]] = {
        "climate": {"temperature": 21.0, "humidity": 45.5},
                "meter": {"current": [0.0, 0.1, 0.2, None, 0.4]}}
    assert cabinet.points(readings) == [  # an unknown reading is left out, never 0
        PointReading(device="climate", point="humidity", value=45.5, unit="%"),
        PointReading(device="meter", point="current", channel=2, value=0.2, unit="A"),
    ]
    assert cabinet.points({}) == []  # every device silent: nothing to say, still a list


@pytest.mark.parametrize(("points", "problem"), [
    ('["nosuch.humidity"]', "names a device that is not under"),
    ('["climate.dewpoint"]', "has no point 'dewpoint'"),
    ('["io.input[0]"]', "on/off input"),
    ('["meter.current[0:17]"]', "channels"),
    ('["climate humidity"]', "is not 'device.point'"),
])
def test_a_bad_point_is_refused_when_the_model_loads(tmp_path: Path, points: str,
                                                     problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        _model(tmp_path, points)
