"""Lightweight publishers: stand-ins for agents beyond what full agents on one machine can hold.

One MQTT connection publishes for many cabinets on each cabinet's own topics, from pre-encoded
templates (``fleet_messages``): retained status, birth and state at start (``births``), telemetry
once per ``telemetry_s`` per cabinet with the phases spread evenly, and slot changes (an event
plus the new retained state, as an agent sends them) at ``events_per_hour`` per cabinet.
``ts`` is the wall-clock time of publication, so a receiver can measure its lag.

What this does not simulate: one TCP connection and Last Will per cabinet (the broker's share of
a real fleet), and the slot physics (the payloads rotate through a few variants).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .fleet_messages import CabinetTemplates, MessageTemplate, iso_ts
from .fleet_plan import CabinetPlan

__all__ = ["LightFleet", "LightOptions", "LightStats"]

log = logging.getLogger(__name__)

TICK_S = 0.02
CHUNK = 2000  # QoS 1 messages queued before waiting for their PUBACKs (paho loses >65,535)


@dataclass(frozen=True, slots=True)
class LightOptions:
    broker_host: str
    broker_port: int
    telemetry_s: float = 60.0
    events_per_hour: float = 6.0
    births: str = "full"  # full: status, birth, state; minimal: status, birth; none
    probe_interval_s: float = 1.0  # probe cabinets send telemetry this often
    client_id: str = "ladewache-fleet-light"
    telemetry_qos: int | None = None  # None: the protocol's (1); 0: as agents before issue 21


@dataclass(slots=True)
class LightStats:
    cabinets: int
    telemetry: int = 0
    events: int = 0
    retained: int = 0
    probes: int = 0

    @property
    def messages(self) -> int:
        return self.telemetry + 2 * self.events + self.retained + self.probes


class LightFleet:
    def __init__(self, plans: list[CabinetPlan], options: LightOptions,
                 probes: list[CabinetPlan] | None = None, seed: int = 1) -> None:
        self.options = options
        self.cabinets = [CabinetTemplates(p, telemetry_interval_s=options.telemetry_s)
                         for p in plans]
        self.probes = [CabinetTemplates(p, telemetry_interval_s=options.probe_interval_s)
                       for p in probes or []]
        self.stats = LightStats(len(self.cabinets))
        self._rng = random.Random(seed)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=options.client_id,
                                   clean_session=True)
        self._client.max_inflight_messages_set(100)

    def _send(self, cabinet: CabinetTemplates, template: MessageTemplate) -> mqtt.MQTTMessageInfo:
        payload = template.render(cabinet.next_seq(), iso_ts(time.time()))
        qos = template.qos
        if self.options.telemetry_qos is not None and template.topic.endswith("/telemetry"):
            qos = self.options.telemetry_qos
        return self._client.publish(template.topic, payload, qos, template.retain)

    def _publish_births(self, stop: threading.Event) -> None:
        last: mqtt.MQTTMessageInfo | None = None
        for n, cabinet in enumerate(self.cabinets + self.probes, 1):
            templates: tuple[MessageTemplate, ...] = (cabinet.status, cabinet.birth)
            if self.options.births == "full":
                templates += (cabinet.state,)
            for template in templates:
                last = self._send(cabinet, template)
                self.stats.retained += 1
            if n % (CHUNK // 3) == 0 and last is not None:
                last.wait_for_publish(30)
            if stop.is_set():
                return
        if last is not None:
            last.wait_for_publish(30)

    def run(self, stop: threading.Event, progress: Callable[[LightStats], None] | None = None,
            progress_s: float = 5.0) -> LightStats:
        o = self.options
        self._client.connect(o.broker_host, o.broker_port, keepalive=60)
        self._client.loop_start()
        try:
            if o.births != "none":
                self._publish_births(stop)
            self._steady(stop, progress, progress_s)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
        return self.stats

    def _steady(self, stop: threading.Event, progress: Callable[[LightStats], None] | None,
                progress_s: float) -> None:
        o = self.options
        n, p = len(self.cabinets), len(self.probes)
        start = time.monotonic()
        sent = probe_sent = 0  # telemetry slots handed out so far (cyclic over the cabinets)
        change_rate = n * o.events_per_hour / 3600.0
        changes_due = 0.0
        last = start
        next_progress = start + progress_s
        while not stop.wait(TICK_S):
            now = time.monotonic()
            # Cabinet k sends its j-th telemetry at start + (j + k / n) * telemetry_s.
            due = int((now - start) / o.telemetry_s * n) + 1 if n else 0
            while sent < due:
                cabinet = self.cabinets[sent % n]
                self._send(cabinet, cabinet.telemetry[(sent // n) % len(cabinet.telemetry)])
                sent += 1
                self.stats.telemetry += 1
            probe_due = int((now - start) / o.probe_interval_s * p) + 1 if p else 0
            while probe_sent < probe_due:
                probe = self.probes[probe_sent % p]
                self._send(probe, probe.telemetry[0])
                probe_sent += 1
                self.stats.probes += 1
            changes_due += change_rate * (now - last)
            last = now
            while changes_due >= 1.0:
                changes_due -= 1.0
                cabinet = self._rng.choice(self.cabinets)
                self._send(cabinet, self._rng.choice(cabinet.events))
                self._send(cabinet, cabinet.state)
                self.stats.events += 1
            if progress is not None and now >= next_progress:
                progress(self.stats)
                next_progress = now + progress_s
