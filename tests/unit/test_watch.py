"""``cabinet-agent watch``'s screen, rendered from one reading."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import cabinet_agent
from cabinet_agent.cabinet_model import load_cabinet_model
from cabinet_agent.common.protocol import DeviceHealth, DoorState, MainsState
from cabinet_agent.poller import CabinetReading
from cabinet_agent.watch import render, watch


class CountingSource:
    name = "meter"

    def counters(self) -> dict[str, int]:
        return {"accepted": 12, "rejected_bad_checksum": 3}

    async def read(self) -> dict[str, object]:
        return {}


def test_the_screen_shows_readings_faults_unknowns_and_states() -> None:
    cabinet = load_cabinet_model("ladewache-8")
    reading = CabinetReading(
        slot_power=(19.84, None, 0.0, 2.5, 0.0, 0.0, 0.0, 0.0), door=DoorState.UNKNOWN,
        mains=MainsState.ON, temperature_c=None,
        devices=(DeviceHealth(name="meter", ok=True), DeviceHealth(name="io", ok=True),
                 DeviceHealth(name="climate", ok=False, error="unit 3: no reply within 130 ms")),
        duration_s=0.0421,
        raw={"meter": {"power": [19.84, None, 0.0]}, "io": {"input": [False, True]}})
    states = ["charging", "unknown", "empty", "charged", "empty", "empty", "empty", "empty"]
    screen = render(cabinet, reading, states, [CountingSource()], "site/cab",  # type: ignore[list-item]
                    datetime(2026, 11, 30, 8, 0, tzinfo=UTC), width=120)
    lines = screen.splitlines()
    assert lines[0] == "site/cab  model ladewache-8 (8 slots)  2026-11-30 08:00:00  poll 42.1 ms"
    assert lines[1] == "door unknown   mains on   temperature ?"
    assert "meter        ok     [accepted=12 rejected_bad_checksum=3]  power=19.84 ? 0" in screen
    assert "io           ok     input=0 1" in screen
    assert "climate      FAULT  unit 3: no reply within 130 ms" in screen
    assert "   1    19.8 charging" in screen and "   2       ? unknown" in screen
    assert len(render(cabinet, reading, states, [], "t", datetime.now(UTC), width=40)
               .splitlines()[0]) == 40


class _OneReadingPoller:
    """What ``watch`` needs of a poller: the same reading every poll."""

    def __init__(self, reading: CabinetReading) -> None:
        self.reading = reading
        self.sources = SimpleNamespace(devices=[])

    async def poll(self) -> CabinetReading:
        return self.reading

    async def close(self) -> None:
        pass


def _watch_screen(model: str | Path) -> str:
    cabinet = load_cabinet_model(model)
    reading = CabinetReading(
        slot_power=(40.0,) + (0.0,) * 7, door=DoorState.CLOSED, mains=MainsState.ON,
        temperature_c=21.0, devices=(), duration_s=0.01)
    out = io.StringIO()
    asyncio.run(watch(cabinet, _OneReadingPoller(reading), "t",  # type: ignore[arg-type]
                      interval_s=0.001, cycles=1, out=out, clear=False))
    return out.getvalue()


def test_watch_classifies_with_the_models_thresholds(tmp_path: Path) -> None:
    # 40 W is above the default rating (30 W): a fault. A model rated 60 W calls it charging, and
    # so must watch, or an installer sees a state the running agent never publishes.
    shipped = (Path(cabinet_agent.__file__).parent / "data/models/ladewache-8.toml").read_text()
    custom = tmp_path / "rated-60.toml"
    custom.write_text(shipped + "\n[thresholds]\nrating_w = 60.0\n", encoding="utf-8")
    assert "   1      40 fault" in _watch_screen("ladewache-8")
    assert "   1      40 charging" in _watch_screen(custom)
