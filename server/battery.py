"""Battery ageing from charge sessions: each iPad against its own early baseline.

Only sessions that ended ``full`` and carry ``taper_wh`` count: the energy of the taper phase
(~80–100 %) is proportional to the battery's capacity and, unlike the whole session's energy, does
not depend on how empty the iPad was when it was put in. A device's baseline is the median taper
energy of its first ``baseline_sessions`` full charges; it is worn when the median of its last
``recent_sessions`` is more than ``worn_drop`` below that. Medians, so that one odd session does
not flag a healthy iPad.

``BatteryAgeing`` is a ``BatteryHealthSource`` for the ``battery_worn`` alert rule (``worn()``).
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from cabinet_agent.common.protocol import ChargeSession, SessionEnd

__all__ = ["AgeingPolicy", "BatteryAgeing", "BatteryVerdict"]


@dataclass(frozen=True, slots=True)
class AgeingPolicy:
    baseline_sessions: int = 5
    recent_sessions: int = 5
    worn_drop: float = 0.20  # worn below (1 - worn_drop) × the baseline

    def __post_init__(self) -> None:
        if self.baseline_sessions < 1 or self.recent_sessions < 1:
            raise ValueError("baseline_sessions and recent_sessions must be >= 1")
        if not 0 < self.worn_drop < 1:
            raise ValueError("worn_drop must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class BatteryVerdict:
    asset_tag: str
    baseline_wh: float
    recent_wh: float
    remaining: float  # recent / baseline
    full_charges: int
    worn: bool


@dataclass
class _Device:
    baseline: list[float] = field(default_factory=list)
    recent: deque[float] = field(default_factory=deque)
    full_charges: int = 0
    verdict: BatteryVerdict | None = None


class BatteryAgeing:
    def __init__(self, policy: AgeingPolicy | None = None) -> None:
        self.policy = policy or AgeingPolicy()
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}

    def add(self, session: ChargeSession) -> BatteryVerdict | None:
        """Fold one session in; the device's verdict once there is enough history, else None."""
        if session.asset_tag is None or session.end is not SessionEnd.FULL or not session.taper_wh:
            return None
        policy = self.policy
        with self._lock:
            device = self._devices.setdefault(
                session.asset_tag, _Device(recent=deque(maxlen=policy.recent_sessions)))
            device.full_charges += 1
            if len(device.baseline) < policy.baseline_sessions:
                device.baseline.append(session.taper_wh)
                return None
            device.recent.append(session.taper_wh)
            if len(device.recent) < policy.recent_sessions:
                return None
            baseline = statistics.median(device.baseline)
            recent = statistics.median(device.recent)
            remaining = recent / baseline
            device.verdict = BatteryVerdict(session.asset_tag, baseline, recent, remaining,
                                            device.full_charges,
                                            worn=remaining < 1 - policy.worn_drop)
            return device.verdict

    def verdict(self, asset_tag: str) -> BatteryVerdict | None:
        with self._lock:
            device = self._devices.get(asset_tag)
            return device.verdict if device else None

    def worn(self) -> list[BatteryVerdict]:
        """Devices judged worn now, by asset tag."""
        with self._lock:
            verdicts = [d.verdict for d in self._devices.values() if d.verdict and d.verdict.worn]
        return sorted(verdicts, key=lambda v: v.asset_tag)

    def verdicts(self, asset_tags: Iterable[str] | None = None) -> list[BatteryVerdict]:
        """Every device with a verdict (of these tags), most worn first."""
        with self._lock:
            if asset_tags is None:
                found = [d.verdict for d in self._devices.values() if d.verdict]
            else:
                found = [d.verdict for tag in set(asset_tags)
                         if (d := self._devices.get(tag)) is not None and d.verdict]
        return sorted(found, key=lambda v: (v.remaining, v.asset_tag))
