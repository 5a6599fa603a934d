"""The agent's main loop: poll → classify → publish, with a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import __version__
from .cabinet_model import LoadedCabinet
from .classify import CabinetClassifier, Change
from .clock import ClockStatus, utcnow
from .common.configfile import config_hash
from .common.protocol import (
    PROTOCOL_VERSION,
    QOS,
    RETAINED,
    AgentStatus,
    BirthMessage,
    Channel,
    EventMessage,
    SlotInfo,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
    encode,
    topic_for,
)
from .common.sdnotify import SdNotifier
from .config import AgentSettings
from .ha_discovery import discovery_messages
from .mqtt_link import MqttLink
from .outbox import Outbox, Priority
from .poller import CabinetReading, Poller
from .schedule import ticks
from .sender import OutboxSender
from .sources.assemble import SourceSet

__all__ = ["Agent"]

log = logging.getLogger(__name__)

# Status and birth describe the connection itself: sent directly on connect, never replayed.
_DIRECT = frozenset({Channel.STATUS, Channel.BIRTH})
_PRIORITY = {Channel.EVENT: Priority.EVENT, Channel.STATE: Priority.STATE,
             Channel.TELEMETRY: Priority.TELEMETRY}
# On SIGTERM, wait this long at most for the outbox to empty while connected.
STOP_DRAIN_S = 2.0


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        cabinet: LoadedCabinet,
        sources: SourceSet,
        *,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings = settings
        self.cabinet = cabinet
        self.boot_id = uuid.uuid4().hex
        self._clock = clock
        self._monotonic = monotonic
        self._clock_status = ClockStatus(trusted=settings.clock.trust_system_clock)
        self._seq = itertools.count()
        self._seq_lock = threading.Lock()
        self._events_created = 0  # event_seq of the newest event (protocol revision 3)
        self._config_hash = config_hash(settings)
        self.poller = Poller(cabinet, sources, monotonic=monotonic)
        self.classifier = CabinetClassifier(
            cabinet.model.slots,
            cabinet.model.effective_thresholds(),
            windows=settings.charging.parsed(),
            counters=cabinet.counters,
            time_scale=settings.simulation.speed,
        )
        self._last_reading: CabinetReading | None = None
        self.notifier = SdNotifier.from_env()  # systemd Type=notify + WatchdogSec (issue 7)
        self._ready_sent = False
        self._snapshot_lock = threading.Lock()
        self._will: bytes | None = None
        self._will_registered = False
        site, cab = settings.cabinet.site, settings.cabinet.id
        self.link = MqttLink(
            settings.mqtt, settings.client_id,
            will_topic=topic_for(site, cab, Channel.STATUS),
            make_will=self._make_will,
            on_connected=self._on_connected,
            ca_file=settings.resolve(settings.mqtt.ca_file),
            cert_file=settings.resolve(settings.mqtt.cert_file),
            key_file=settings.resolve(settings.mqtt.key_file),
            on_published=lambda mid: self.sender.on_published(mid),
            on_disconnected=lambda: self.sender.on_disconnected(),
        )
        # Events, states and telemetry go to disk first and leave it on the broker's PUBACK.
        ob = settings.outbox
        self.outbox = outbox if outbox is not None else Outbox(
            settings.outbox_path(), max_bytes=int(ob.max_mb * 1024 * 1024))
        self.sender = OutboxSender(self.outbox, self.link.publish, lambda: self.link.connected,
                                   window=ob.window, replay_rate_per_s=ob.replay_rate_per_s,
                                   sync_interval_s=ob.sync_interval_s, monotonic=monotonic)

    # -- message building ----------------------------------------------------------------------
    def _envelope(self) -> dict[str, Any]:
        with self._seq_lock:  # seq must follow publication order across threads
            seq = next(self._seq)
        return {
            "v": PROTOCOL_VERSION,
            "site": self.settings.cabinet.site,
            "cabinet": self.settings.cabinet.id,
            "boot_id": self.boot_id,
            "seq": seq,
            "ts": self._clock(),
            "clock_synced": self._clock_status.synced(self._monotonic()),
        }

    def _status(self, status: AgentStatus, reason: str | None) -> StatusMessage:
        return StatusMessage(**self._envelope(), status=status, reason=reason)

    def _birth(self) -> BirthMessage:
        slots = self.cabinet.model.slots
        return BirthMessage(
            **self._envelope(),
            agent_version=__version__,
            config_hash=self._config_hash,
            cabinet_model=self.cabinet.model.name,
            slot_count=slots,
            # No asset tags: the server's inventory is their one home (protocol.md, revision 4).
            slots=[SlotInfo(slot=i) for i in range(1, slots + 1)],
            poll_interval_s=self.settings.polling.interval_s,
            telemetry_interval_s=self.settings.polling.telemetry_interval_s,
            sensing=self.cabinet.sensing(self.classifier.thresholds, self.classifier.time_scale),
        )

    def _state(self) -> StateMessage:
        c = self.classifier
        return StateMessage(**self._envelope(), slots=c.snapshots(), door=c.door,
                            temperature_c=c.temperature_c, mains=c.mains, devices=list(c.devices))

    def _event(self, change: Change) -> EventMessage:
        with self._seq_lock:
            self._events_created += 1
            event_seq = self._events_created
        return EventMessage(**self._envelope(), event=change.kind, slot=change.slot,
                            device=change.device, old=change.old, new=change.new,
                            power_w=change.power_w, detail=change.detail, door=change.door,
                            session=change.session, event_seq=event_seq)

    def _telemetry(self, reading: CabinetReading) -> TelemetryMessage:
        c = self.classifier
        return TelemetryMessage(
            **self._envelope(), power_w=list(reading.slot_power), states=c.states(),
            temperature_c=reading.temperature_c, door=reading.door, mains=reading.mains,
            devices=list(reading.devices), poll_ms=round(reading.duration_s * 1000, 2),
            outbox_queued=len(self.outbox), outbox_dropped=sum(self.outbox.dropped().values()),
            event_seq=self._events_created, points=self.cabinet.points(reading.raw),
        )

    def _publish(self, message: Any) -> None:
        channel = Channel(message.type)
        topic = topic_for(self.settings.cabinet.site, self.settings.cabinet.id, channel)
        if channel in _DIRECT:
            self.link.publish(topic, encode(message), QOS[channel], channel in RETAINED)
            return
        offline = not self.link.connected
        if offline:  # created while the broker is away: it is a replay when it is sent
            message = message.model_copy(update={"replayed": True})
        self.outbox.put(topic, encode(message), qos=QOS[channel], retain=channel in RETAINED,
                        priority=_PRIORITY[channel], offline=offline)
        self.sender.notify()

    # -- runs in the MQTT thread after each (re)connect -------------------------------------------
    def _make_will(self) -> bytes:
        # A new Will (with its own seq) only once the last one was registered with a broker: failed
        # attempts during an outage must not burn sequence numbers the server then counts as gaps.
        if self._will is None or self._will_registered:
            self._will = encode(self._status(AgentStatus.OFFLINE, "connection lost (Last Will)"))
            self._will_registered = False
        return self._will

    def _on_connected(self) -> None:
        self._will_registered = True
        with self._snapshot_lock:
            self._publish(self._status(AgentStatus.ONLINE, None))
            self._publish(self._birth())
            if self._last_reading is not None:
                self._publish(self._state())
        ha = self.settings.home_assistant
        if ha.enabled:
            c = self.settings.cabinet
            for topic, payload in discovery_messages(c.site, c.id, self.cabinet.model.slots,
                                                     __version__, ha.prefix):
                self.link.publish(topic, payload, 1, True)
        self.sender.notify()

    # -- the loop --------------------------------------------------------------------------------
    async def poll_once(self) -> list[Change]:
        reading = await self.poller.poll()
        now = self._clock()
        with self._snapshot_lock:
            first = self._last_reading is None
            changes = self.classifier.update(reading, now)
            self._last_reading = reading
            for change in changes:
                log.info("%s %s: %s -> %s", change.kind.value, change.slot or change.device or "",
                         change.old, change.new)
                self._publish(self._event(change))
            if changes or first or self.classifier.evidence_changed:
                self._publish(self._state())
        return changes

    async def run(self) -> None:
        polling = self.settings.polling
        self.link.start()
        self.sender.start()
        next_telemetry = self._monotonic()
        try:
            async for _ in ticks(polling.interval_s, self._monotonic):
                await self.poll_once()
                self._loop_alive()
                now = self._monotonic()
                if now >= next_telemetry and self._last_reading is not None:
                    self._publish(self._telemetry(self._last_reading))
                    next_telemetry = now + polling.telemetry_interval_s
        finally:
            await self.poller.close()

    def _loop_alive(self) -> None:
        # Only the poll loop pings systemd's watchdog: if a poll hangs, the pings stop.
        if not self._ready_sent:
            self._ready_sent = True
            self.notifier.ready(f"polling {self.settings.cabinet.site}/{self.settings.cabinet.id}")
        self.notifier.watchdog()

    def stop(self, reason: str) -> None:
        self.notifier.stopping(reason)
        site, cab = self.settings.cabinet.site, self.settings.cabinet.id
        status = encode(self._status(AgentStatus.STOPPED, reason))
        if self.link.connected:  # a moment for what is in flight to be acknowledged
            deadline = time.monotonic() + STOP_DRAIN_S
            while len(self.outbox) and time.monotonic() < deadline and self.link.connected:
                time.sleep(0.02)
        self.sender.stop()
        self.link.stop(topic_for(site, cab, Channel.STATUS), status)
        self.outbox.close()


async def run_until_signalled(agent: Agent) -> str:
    """Run the agent until SIGTERM/SIGINT; returns why it stopped."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    reason = "stopped"

    def _on_signal(sig: signal.Signals) -> None:
        nonlocal reason
        reason = f"stopped by {sig.name}"
        log.info("received %s, stopping", sig.name)
        if task is not None:
            task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig)
    try:
        await agent.run()
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await asyncio.to_thread(agent.stop, reason)
    return reason
