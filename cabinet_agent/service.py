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
from .config import AgentSettings
from .configfile import config_hash
from .mqtt_link import MqttLink
from .poller import CabinetReading, Poller
from .protocol import (
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
from .schedule import ticks
from .sources.assemble import SourceSet

__all__ = ["Agent"]

log = logging.getLogger(__name__)


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        cabinet: LoadedCabinet,
        sources: SourceSet,
        *,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.cabinet = cabinet
        self.boot_id = uuid.uuid4().hex
        self._clock = clock
        self._monotonic = monotonic
        self._clock_status = ClockStatus()
        self._seq = itertools.count()
        self._seq_lock = threading.Lock()
        self._config_hash = config_hash(settings)
        self.poller = Poller(cabinet, sources, monotonic=monotonic)
        self.classifier = CabinetClassifier(
            cabinet.model.slots,
            cabinet.model.effective_thresholds(),
            asset_tags=dict(settings.cabinet.asset_tags),
            windows=settings.charging.parsed(),
        )
        self._last_reading: CabinetReading | None = None
        self._snapshot_lock = threading.Lock()
        site, cab = settings.cabinet.site, settings.cabinet.id
        self.link = MqttLink(
            settings.mqtt, settings.client_id,
            will_topic=topic_for(site, cab, Channel.STATUS),
            make_will=lambda: encode(self._status(AgentStatus.OFFLINE, "connection lost (Last Will)")),
            on_connected=self._on_connected,
            ca_file=settings.resolve(settings.mqtt.ca_file),
        )

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
        tags = self.settings.cabinet.asset_tags
        slots = self.cabinet.model.slots
        return BirthMessage(
            **self._envelope(),
            agent_version=__version__,
            config_hash=self._config_hash,
            cabinet_model=self.cabinet.model.name,
            slot_count=slots,
            slots=[SlotInfo(slot=i, asset_tag=tags.get(i)) for i in range(1, slots + 1)],
            poll_interval_s=self.settings.polling.interval_s,
            telemetry_interval_s=self.settings.polling.telemetry_interval_s,
        )

    def _state(self) -> StateMessage:
        c = self.classifier
        return StateMessage(**self._envelope(), slots=c.snapshots(), door=c.door,
                            temperature_c=c.temperature_c, mains=c.mains, devices=list(c.devices))

    def _event(self, change: Change) -> EventMessage:
        return EventMessage(**self._envelope(), event=change.kind, slot=change.slot,
                            device=change.device, old=change.old, new=change.new,
                            power_w=change.power_w, detail=change.detail, door=change.door,
                            session=change.session)

    def _telemetry(self, reading: CabinetReading) -> TelemetryMessage:
        c = self.classifier
        return TelemetryMessage(
            **self._envelope(), power_w=list(reading.slot_power), states=c.states(),
            temperature_c=reading.temperature_c, door=reading.door, mains=reading.mains,
            devices=list(reading.devices), poll_ms=round(reading.duration_s * 1000, 2),
        )

    def _publish(self, message: Any) -> None:
        channel = Channel(message.type)
        topic = topic_for(self.settings.cabinet.site, self.settings.cabinet.id, channel)
        self.link.publish(topic, encode(message), QOS[channel], channel in RETAINED)

    # -- runs in the MQTT thread after each (re)connect -------------------------------------------
    def _on_connected(self) -> None:
        with self._snapshot_lock:
            self._publish(self._status(AgentStatus.ONLINE, None))
            self._publish(self._birth())
            if self._last_reading is not None:
                self._publish(self._state())

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
            if changes or first:
                self._publish(self._state())
        return changes

    async def run(self) -> None:
        polling = self.settings.polling
        self.link.start()
        next_telemetry = self._monotonic()
        try:
            async for _ in ticks(polling.interval_s, self._monotonic):
                await self.poll_once()
                now = self._monotonic()
                if now >= next_telemetry and self._last_reading is not None:
                    self._publish(self._telemetry(self._last_reading))
                    next_telemetry = now + polling.telemetry_interval_s
        finally:
            await self.poller.close()

    def stop(self, reason: str) -> None:
        site, cab = self.settings.cabinet.site, self.settings.cabinet.id
        status = encode(self._status(AgentStatus.STOPPED, reason))
        self.link.stop(topic_for(site, cab, Channel.STATUS), status)


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
