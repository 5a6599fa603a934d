"""A timeline harness for alerting, in the style of Alertmanager's acceptance tests.

    tl = AlertTimeline(...)
    tl.at(1, cab.offline)                # at t=1 push this
    tl.run(until=120)
    assert tl.sent_between(61, 62) ...   # between t=61 and t=62 expect that

Everything runs on one fake clock in fixed steps: scheduled actions, then a rule evaluation, then a
notification flush whose deliveries are recorded with their time. Nothing sleeps; an hour of
alerting runs in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Certainty,
    DeviceHealth,
    DoorState,
    MainsState,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
)
from server.alerts.engine import AlertEngine
from server.alerts.routing import Receiver, Router
from server.alerts.rules import BatteryHealthSource, CabinetOffline, RulesSettings, build_rules
from server.alerts.state import StoredState
from server.alerts.status import AlertStatus, alert_statuses
from server.assets import AssetRegister
from server.notify import Notification, Notifier
from server.notify.dispatch import Dispatcher, GroupTiming
from server.org import Organisation
from server.schoolcal import Calendars

__all__ = ["T0", "AlertTimeline", "Cabinet", "Sent"]

# A Monday in November (Europe/Berlin is UTC+1 then): 2026-11-02 00:00 UTC = 01:00 local.
T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
HOLIDAYS_ICS = Path(__file__).parents[2] / "deploy" / "calendars" / "saarland-schulferien-2025-2027.ics"


@dataclass(frozen=True)
class Sent:
    t: float
    receiver: str
    notifier: str
    notification: Notification

    @property
    def firing(self) -> list[str]:
        return sorted(a["labels"]["alertname"] for a in self.notification.payload.get("alerts", [])
                      if a["status"] == "firing")

    @property
    def resolved(self) -> list[str]:
        return sorted(a["labels"]["alertname"] for a in self.notification.payload.get("alerts", [])
                      if a["status"] == "resolved")

    @property
    def cabinet(self) -> str | None:
        return self.notification.payload.get("cabinet")


@dataclass
class _Recorder:
    receiver: str
    name: str
    sink: list[tuple[str, str, Notification]]
    fail: Callable[[], bool] = lambda: False

    def send(self, notification: Notification) -> None:
        from server.notify import NotifyError

        if self.fail():
            raise NotifyError("receiver down")
        self.sink.append((self.receiver, self.name, notification))


@dataclass
class Cabinet:
    """Builds the messages of one cabinet; every builder takes the time from the timeline."""

    tl: AlertTimeline
    site: str = "gs-park"
    cabinet: str = "k1"
    slots: int = 4
    tags: Mapping[int, str] = field(default_factory=dict)
    boot: str = "a" * 32
    seq: int = 0
    telemetry_interval_s: float = 3600.0  # what the birth says (silence: a multiple of it)

    def _env(self) -> dict[str, object]:
        self.seq += 1
        return {"v": 1, "site": self.site, "cabinet": self.cabinet, "boot_id": self.boot,
                "seq": self.seq, "ts": self.tl.clock(), "clock_synced": True}

    def online(self) -> list[object]:
        # In the order an agent publishes them (seq grows): a birth numbered before the status
        # would be folded in after it as an older message, and dropped.
        status = StatusMessage(**self._env(), status=AgentStatus.ONLINE)  # type: ignore[arg-type]
        birth = BirthMessage(**self._env(), agent_version="0.1.0",  # type: ignore[arg-type]
                             config_hash="abcdef12", cabinet_model="test", slot_count=self.slots,
                             slots=[SlotInfo(slot=n) for n in range(1, self.slots + 1)],
                             poll_interval_s=1.0, telemetry_interval_s=self.telemetry_interval_s)
        return [status, birth]

    def offline(self) -> list[object]:
        return [StatusMessage(**self._env(), status=AgentStatus.OFFLINE)]  # type: ignore[arg-type]

    def telemetry(self, states: Sequence[SlotState] | None = None,
                  power: Sequence[float | None] | None = None, *, door: DoorState = DoorState.CLOSED,
                  mains: MainsState = MainsState.ON, temperature: float | None = 22.0,
                  devices: Sequence[DeviceHealth] = (),
                  certainty: Sequence[Certainty] | None = None) -> list[object]:
        states = list(states or [SlotState.CHARGED] * self.slots)
        power = list(power or [0.5 if s is SlotState.CHARGED else None for s in states])
        return [TelemetryMessage(**self._env(), power_w=power, states=states,  # type: ignore[arg-type]
                                 temperature_c=temperature, door=door, mains=mains,
                                 devices=list(devices),
                                 certainty=list(certainty) if certainty is not None else None)]

    def state(self, slots: Sequence[tuple[SlotState, Certainty, datetime | None, datetime | None]],
              *, door: DoorState = DoorState.CLOSED,
              faults: Mapping[int, str] | None = None) -> list[object]:
        """A state message: per slot (state, certainty, last_draw_at, unseen_since), as the agent
        sends it on every change; ``since`` is now for every slot; ``faults``: slot → reason."""
        now = self.tl.clock()
        faults = faults or {}
        snaps = [SlotSnapshot(slot=n, state=state, power_w=0.05, since=now, certainty=certainty,
                              last_draw_at=drew, unseen_since=unseen, fault=faults.get(n))
                 for n, (state, certainty, drew, unseen) in enumerate(slots, start=1)]
        return [StateMessage(**self._env(), slots=snaps, door=door,  # type: ignore[arg-type]
                             temperature_c=22.0, mains=MainsState.ON, devices=[])]


class AlertTimeline:
    def __init__(self, *, org: Organisation | None = None, rules: RulesSettings | None = None,
                 offline_pending_s: float = 60.0, group_wait_s: float = 30.0,
                 group_interval_s: float = 300.0, repeat_interval_s: float = 3600.0,
                 step_s: float = 1.0, start: datetime = T0, send_resolved: bool = True,
                 school_alerts: Sequence[str] = ("ipad_not_returned",),
                 battery: BatteryHealthSource | None = None, digest: bool = False,
                 state: StoredState | None = None, extra_ics: Mapping[str, Sequence[Path]] | None = None
                 ) -> None:
        self.start = start
        self.now = start
        self.step = timedelta(seconds=step_s)
        self.org = org or Organisation()
        self.calendars = Calendars(self.org.zone, self.org.state, [HOLIDAYS_ICS], extra_ics)
        self.register = AssetRegister.from_org(self.org)  # the config's slots fill the inventory
        self.fleet = self.register.fleet()
        self.state = state or StoredState.in_memory()
        offline = CabinetOffline(pending_s=offline_pending_s, silence_factor=3.0, min_silence_s=1e9)
        self.engine = AlertEngine(build_rules(rules or RulesSettings(), offline, battery),
                                  self.state, self.fleet, self.clock, org=self.org,
                                  calendars=self.calendars, resolved_retention=timedelta(days=7))
        self.deliveries: list[tuple[str, str, Notification]] = []
        self.sent: list[Sent] = []
        self.receiver_down = False
        timing = GroupTiming(timedelta(seconds=group_wait_s), timedelta(seconds=group_interval_s),
                             timedelta(seconds=repeat_interval_s), send_resolved)
        self.dispatcher = Dispatcher(
            org=self.org, router=Router(self.org, school_alerts), timing=timing,
            notifiers=self._notifiers, log_store=self.state, calendars=self.calendars,
            digest_time=time(7, 15) if digest else None)
        self._actions: list[tuple[datetime, Callable[[], object]]] = []

    def clock(self) -> datetime:
        return self.now

    def _notifiers(self, receiver: Receiver) -> list[Notifier]:
        return [_Recorder(receiver.id, "rec", self.deliveries, lambda: self.receiver_down)]

    def cabinet(self, **kwargs: object) -> Cabinet:
        """A cabinet; its ``tags`` go into the inventory (the agent carries none)."""
        cabinet = Cabinet(self, **kwargs)  # type: ignore[arg-type]
        if cabinet.tags:
            self.register.inventory.seed({(cabinet.site, cabinet.cabinet): cabinet.tags}, "test")
        return cabinet

    def moment(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)

    def t(self) -> float:
        return (self.now - self.start).total_seconds()

    def at(self, t: float, *actions: Callable[[], object]) -> AlertTimeline:
        """At t, run each action; one that returns messages has them applied to the fleet."""
        for action in actions:
            self._actions.append((self.moment(t), action))
        self._actions.sort(key=lambda item: item[0])
        return self

    def run(self, until: float) -> AlertTimeline:
        end = self.moment(until)
        while self.now <= end:
            self._step()
            self.now += self.step
        self.now = end
        return self

    def _step(self) -> None:
        while self._actions and self._actions[0][0] <= self.now:
            _, action = self._actions.pop(0)
            result = action()
            if isinstance(result, list):
                for message in result:
                    self.fleet.apply(message, self.now)  # type: ignore[arg-type]
        self.engine.tick()
        for delivery in self.dispatcher.due(self.statuses(), self.now):
            before = len(self.deliveries)
            try:
                delivery.notifier.send(delivery.notification)
            except Exception:
                continue
            self.dispatcher.sent(delivery)
            for receiver, name, notification in self.deliveries[before:]:
                self.sent.append(Sent(self.t(), receiver, name, notification))

    def statuses(self) -> list[AlertStatus]:
        return alert_statuses(self.state.all(), self.state.silences(), self.state.acks(), self.now)

    def active(self, name: str | None = None) -> list[AlertStatus]:
        return [s for s in self.statuses() if s.state.value != "resolved"
                and (name is None or s.alert.name == name)]

    def firing(self) -> list[str]:
        return sorted(s.alert.name for s in self.statuses() if s.state.value == "firing")

    def sent_between(self, a: float, b: float) -> list[Sent]:
        return [s for s in self.sent if a <= s.t <= b]
