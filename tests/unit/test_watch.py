"""``cabinet-agent watch``'s screen, rendered from one reading."""

from __future__ import annotations

from datetime import UTC, datetime

from cabinet_agent.cabinet_model import load_cabinet_model
from cabinet_agent.poller import CabinetReading
from cabinet_agent.protocol import DeviceHealth, DoorState, MainsState
from cabinet_agent.watch import render


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
