"""Wiring and lifecycle: build the parts from settings, run them, stop them in order.

One asyncio core runs the HTTP API, the alert ticker and the notifications (judged on the loop,
sent in the notify thread pool, receivers side by side: ``server.notify.sender``); MQTT and the
TSDB writer each have their own thread (blocking libraries). Stop order: HTTP, MQTT (no new
messages), then the TSDB buffer is flushed, each step bounded by a timeout; tries at receivers
under way get NOTIFY_STOP_TIMEOUT_S, what is not delivered stays in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Final

import uvicorn
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from .alerts.engine import AlertEngine
from .alerts.routing import Receiver, Router
from .alerts.rules import CabinetOffline, Severity, build_rules
from .alerts.state import StoredState
from .alerts.status import alert_statuses
from .alerts.takeover import take_over_alerts
from .api import ApiSources, create_app
from .assets import AssetRegister, org_slots
from .auth import Auth, TakeoverError, UserStore, take_over_users
from .battery import BatteryAgeing
from .boundary import Boundary, Bounds
from .brokers import BrokerLinks, Earshot, serialised
from .clock import Clock, utcnow
from .config import MqttSettings, ServerSettings, TsdbSettings, resolve_path, store_location
from .errors import ServerError
from .events import EventLog
from .gc_policy import GcPolicy, run_gc_policy
from .hearing import Hearing
from .history import HistoryRecorder
from .history.source import ReportSource
from .ingest import MqttCollector
from .integrity import Integrity
from .inventory import Inventory, InventoryError
from .leader import LEASE_NAME, Leadership
from .lease import Lease
from .notify import Notifier, NotifySettings, build_notifiers
from .notify.blind import BlindWatch
from .notify.dispatch import Dispatcher, GroupTiming
from .notify.monthly import MonthlyReports
from .notify.sender import Sender
from .pipeline import Pipeline
from .presence import unconfirmed_for_site
from .redact import redact_url
from .schoolcal import Calendars
from .sessions import SessionRecorder
from .store import open_store
from .store.engine import is_ephemeral, where
from .tsdb.base import TimeSeriesSink
from .tsdb.null import NullSink
from .web import Dashboard, install_dashboard

__all__ = ["Collector", "make_auth", "make_calendars", "make_sink", "make_state", "serve"]

log = logging.getLogger(__name__)

HTTP_STOP_TIMEOUT_S: Final = 5.0
JOURNAL_DIR: Final = "tsdb-journal"
MQTT_STOP_TIMEOUT_S: Final = 5.0
NOTIFY_STOP_TIMEOUT_S: Final = 5.0
TSDB_CLOSE_TIMEOUT_S: Final = 10.0


def make_sink(settings: TsdbSettings, state_dir: Path | None = None) -> TimeSeriesSink:
    if settings.url is None:
        log.warning("no [tsdb] url configured: the collector stores no time series")
        return NullSink()
    from .tsdb.influx import InfluxSink  # the InfluxDB client is only loaded when needed

    log.info("writing time series to %s (org %s, bucket %s)", redact_url(settings.url), settings.org,
             settings.bucket)
    if state_dir is None or settings.spill_max_mb == 0:
        log.warning("no TSDB journal ([state] dir unset or [tsdb] spill_max_mb = 0): points "
                    "buffered in memory are lost when the collector stops while the TSDB is down")
        return InfluxSink(settings)
    from .tsdb.spill import Journal

    return InfluxSink(settings, journal=Journal(state_dir / JOURNAL_DIR,
                                                max_bytes=int(settings.spill_max_mb * 1024 * 1024)))


def make_links(settings: ServerSettings, pipeline: Pipeline, clock: Clock) -> BrokerLinks:
    """A connection to [mqtt] host:port and one to each failover broker (server/brokers.py)."""
    handle, settle = pipeline.handle, pipeline.settle
    brokers = broker_settings(settings)
    if len(brokers) == 1:
        return BrokerLinks([MqttCollector(brokers[0], handle, clock=clock, settle=settle,
                                          **mqtt_files(settings))], clock)
    handle, settle = serialised(handle, settle)  # several MQTT threads, one pipeline
    earshot = Earshot()  # which cabinet was last heard through which broker
    links = [MqttCollector(broker, earshot.hearing(i, handle), clock=clock, settle=settle,
                           **mqtt_files(settings)) for i, broker in enumerate(brokers)]
    return BrokerLinks(links, clock, earshot=earshot)


def broker_settings(settings: ServerSettings) -> list[MqttSettings]:
    """[mqtt] as it applies to each broker: host:port, then each failover broker."""
    m = settings.mqtt
    return [m.model_copy(update={"host": broker.host, "port": broker.port}) for broker in m.brokers]


def mqtt_files(settings: ServerSettings) -> dict[str, Path | None]:
    """[mqtt] TLS files, relative to the config file."""
    m = settings.mqtt
    return {"ca_file": resolve_path(settings, m.ca_file) if m.ca_file else None,
            "cert_file": resolve_path(settings, m.cert_file) if m.cert_file else None,
            "key_file": resolve_path(settings, m.key_file) if m.key_file else None}


def make_state(store: Engine, state_dir: Path | None) -> StoredState:
    """The alert state in the store; an older installation's ``ladewache-alerts.sqlite3`` in the
    state dir is taken over first, before the state reads the active alerts."""
    if state_dir is not None:
        take_over_alerts(store, state_dir)
    if is_ephemeral(store):
        log.warning("no [state] dir configured: alerts, silences and the notification log are "
                    "kept in memory only and lost on restart")
    return StoredState(store)


def make_auth(settings: ServerSettings, clock: Clock, store: Engine, state_dir: Path | None) -> Auth:
    """Users live in the store; an older installation's ``users.sqlite`` in the state dir is
    taken over once. In a store in memory there are no users, so nobody can log in."""
    if not settings.http.auth:
        log.warning("[http] auth = false: every request is treated as the district admin's; "
                    "use this for a demo on localhost only")
    if state_dir is not None:
        try:
            take_over_users(store, state_dir)
        except TakeoverError as exc:
            raise ServerError(str(exc)) from exc
    in_memory = is_ephemeral(store)
    if in_memory and settings.http.auth:
        log.warning("no [state] dir configured: there are no user accounts, so the dashboard "
                    "and API refuse every request")
    return Auth(UserStore(store), clock, enabled=settings.http.auth,
                session_lifetime=timedelta(hours=settings.http.session_hours))


def make_calendars(settings: ServerSettings) -> Calendars:
    org = settings.organisation
    return Calendars(
        org.zone, org.state, [resolve_path(settings, p) for p in org.school_holidays],
        {s.site: [resolve_path(settings, p) for p in s.calendars] for s in org.schools if s.calendars},
        weekdays=org.weekday_numbers, public_holidays=org.public_holidays,
    )


# Evaluating every rule over every cabinet held the GIL that ingest needs: at 20,000 cabinets a
# 1 s tick starved paho's thread (bench/fleet_capacity.py). A tick now evaluates what changed plus
# a slice of the fleet (server/alerts/engine.py); this share stays as a safety net (a district-wide
# incident changes every cabinet at once): evaluation gets at most this share of the time. The
# engine sizes its sweep slice from the time since the last tick, so a stretched tick still sweeps
# the fleet within [alerts] sweep_s.
ALERT_SHARE: Final = 0.2


def alert_pause(tick_s: float, took_s: float) -> float:
    """The wait before the next evaluation: ``tick_s``, or longer when one evaluation is slow."""
    return max(tick_s, took_s * (1 - ALERT_SHARE) / ALERT_SHARE)


INVENTORY_REFRESH_S: Final = 5.0  # how soon the collector sees a change the CLI made
PRUNE_EVERY_S: Final = 86_400.0
FIRST_DAILY_S: Final = 600.0  # after the start: past the burst of retained messages


def open_state(location: Path | str | None) -> Engine:
    """The store (server/store), migrated: ``[state] url``, else the file in the state dir, else
    in memory (``config.store_location``)."""
    engine = open_store(location)  # StoreError (a ServerError) names the store
    log.info("store: %s", where(location))
    return engine


def open_inventory(settings: ServerSettings, store: Engine, clock: Clock) -> Inventory:
    """The inventory in the store, filled once from ``[[cabinets]] slots`` (server/assets.py)."""
    try:
        inventory = Inventory(store, clock)
        seeded = inventory.seed(org_slots(settings.organisation), "server.toml")
    except (OSError, SQLAlchemyError, InventoryError) as exc:
        raise ServerError(f"cannot open the inventory: {exc}") from exc
    if seeded:
        log.info("took %d asset tag(s) from [[cabinets]] slots into the inventory; from now on "
                 "the inventory is their home (dashboard: Inventar)", seeded)
    return inventory


class Collector:
    """All parts, built and connected, not yet running."""

    def __init__(self, settings: ServerSettings, clock: Clock = utcnow) -> None:
        self.settings = settings
        state_dir = resolve_path(settings, settings.state.dir) if settings.state.dir else None
        self.store = open_state(store_location(settings))
        self.inventory = open_inventory(settings, self.store, clock)
        self.assets = AssetRegister(self.inventory)
        self.history = HistoryRecorder(self.store, clock)
        # its slots carry the inventory's asset tags; every change goes to the durable history
        self.fleet = self.assets.fleet(observer=self.history.see)
        self.sink = make_sink(settings.tsdb, state_dir)
        self.battery = BatteryAgeing()
        self.sessions = SessionRecorder(self.store, self.battery, legacy_dir=state_dir)
        self.events = EventLog(self.store, legacy_dir=state_dir)
        self.integrity = Integrity()
        ingest = settings.ingest
        self.pipeline = Pipeline(
            self.fleet, self.sink, clock, self.sessions, self.events, self.integrity,
            Boundary(Bounds(ingest.max_slots, ingest.max_devices, ingest.max_ahead_s,
                            ingest.max_age_days)))
        self.mqtt = make_links(settings, self.pipeline, clock)
        org = settings.organisation
        self.clock = clock
        self.state = make_state(self.store, state_dir)
        self.alerts = self.state
        self.calendars = make_calendars(settings)
        self.engine = self._make_engine()
        n = settings.notify
        self._notifiers: dict[str, list[Notifier]] = {}
        self.notify_judged_s = 0.0  # how long the last notify pass took to judge the alerts
        self.router = Router(org, n.school_alerts)
        self._receivers = {r.id: r for r in self.router.all_receivers()}
        self.dispatcher = Dispatcher(
            org=org, router=self.router,
            timing=GroupTiming(timedelta(seconds=n.group_wait_s),
                               timedelta(seconds=n.group_interval_s),
                               timedelta(seconds=n.repeat_interval_s), n.send_resolved),
            notifiers=self.notifiers_for, log_store=self.state, calendars=self.calendars,
            digest_time=n.digest_time,
            # At most twice per school and school day (the digest): a pass over the fleet is fine.
            unconfirmed=lambda site: unconfirmed_for_site(self.fleet.snapshot(), org, site),
            queued=self.state.is_queued, base_url=settings.http.public_url,
        )
        self.sender = Sender(outbox=self.state, notifier=self.notifier_named,
                             settings=n.delivery, clock=clock, dispatcher=self.dispatcher)
        self.app = create_app(ApiSources(
            fleet=self.fleet, alerts=self.state, clock=clock,
            ingest_stats=self.pipeline.stats, mqtt_stats=self.mqtt.stats,
            tsdb_stats=self.sink.stats, state=self.state, org=org,
            auth=make_auth(settings, clock, self.store, state_dir), assets=self.assets,
            leading=lambda: self.leadership.leading, unheard=self.mqtt.unheard,
            deaf=self.mqtt.deaf,
        ))
        self.reports = ReportSource(self.store, org, self.calendars, self.battery, self.inventory,
                                    settings.history.energy_price_eur_kwh, clock)
        self.monthly = MonthlyReports(
            org=org, calendars=self.calendars, reports=self.reports.report,
            notifiers=self.notifiers_for, log_store=self.state, queued=self.state.is_queued,
            send_time=n.digest_time if n.monthly_report else None,
            base_url=settings.http.public_url)
        self.blind = BlindWatch(
            org=org, notifiers=self.notifiers_for, log_store=self.state, queued=self.state.is_queued,
            silent_since=lambda: self.mqtt.stats().silent_since, unheard=self.mqtt.unheard,
            after=timedelta(seconds=n.blind_after_s) if n.blind_after_s else None)
        self.dashboard = install_dashboard(self.app, Dashboard(
            self.app.state.api_sources, self.sessions, store=self.store,
            grafana_url=settings.history.grafana_url, reports=self.reports))
        # One collector of those sharing the store leads (server/leader.py); until this one
        # does, it reads the alert state from the store instead of keeping it in memory.
        c = settings.cluster
        lease_length = timedelta(seconds=c.lease_s)
        self.leadership = Leadership(
            Lease(self.store, LEASE_NAME, c.node, lease_length, clock), clock,
            on_gain=self._lead, on_loss=self._follow,
            hearing=Hearing(self.store, c.node, lease_length, clock),
            silent_since=self.mqtt.missing_since,
            hand_over_after=timedelta(seconds=c.hand_over_after_s) if c.hand_over_after_s else None)
        self.state.lead(False)
        self._history_resync = False

    def _make_engine(self) -> AlertEngine:
        a, org = self.settings.alerts, self.settings.organisation
        offline = CabinetOffline(pending_s=a.offline_pending_s, silence_factor=a.silence_factor,
                                 min_silence_s=a.min_silence_s, severity=Severity(a.offline_severity))
        return AlertEngine(
            build_rules(a.rules, offline, self.battery), self.state, self.fleet, self.clock,
            resolved_retention=timedelta(seconds=a.resolved_retention_s),
            receiving_since=self.mqtt.receiving_since, org=org, calendars=self.calendars,
            settle=timedelta(seconds=a.settle_s), sweep=timedelta(seconds=a.sweep_s),
            deaf=self.mqtt.deaf,
        )

    def _lead(self) -> None:
        """This collector starts to lead: what another leader wrote meanwhile is the truth. The
        alert state is read again, the engine starts as after a restart (the alerts from the
        store, ``settle``), the dispatcher judges against the notification log afresh, and the
        history is compared with the fleet as it is now."""
        self.state.lead(True)
        self.engine = self._make_engine()
        self.dispatcher.reset()
        self._history_resync = True

    def _follow(self) -> None:
        """Another collector leads (or may): act on nothing, read the alert state from the store."""
        self.state.lead(False)
        self._history_resync = False

    @property
    def _notify_settings(self) -> NotifySettings:
        """[notify] with its SMTP CA file relative to the config file, like every other path."""
        n = self.settings.notify
        if n.smtp.ca_file is None:
            return n
        smtp = n.smtp.model_copy(update={"ca_file": resolve_path(self.settings, n.smtp.ca_file)})
        return n.model_copy(update={"smtp": smtp})

    def notifiers_for(self, receiver: Receiver) -> list[Notifier]:
        """Built once per receiver (the config does not change while running)."""
        if receiver.id not in self._notifiers:
            self._notifiers[receiver.id] = build_notifiers(receiver.contacts, self._notify_settings)
        return self._notifiers[receiver.id]

    def notifier_named(self, receiver_id: str, name: str) -> Notifier | None:
        """A queued notification's notifier (after a restart, from the config as it is now)."""
        receiver = self._receivers.get(receiver_id)
        if receiver is None:
            return None
        return next((n for n in self.notifiers_for(receiver) if n.name == name), None)

    async def follow_inventory(self) -> None:
        """Notice what another process (``cabinet-server inventory import``) changed."""
        while True:
            try:
                await asyncio.to_thread(self.inventory.refresh)
            except Exception:  # top of a task: a locked or vanished file must not end following
                log.exception("reading the inventory failed")
            await asyncio.sleep(INVENTORY_REFRESH_S)

    async def record_history(self) -> None:
        """Write the fleet's changes to the durable history; once a day drop what is older
        than [history] keep_days."""
        # the first daily pass soon after the start: a collector restarted every night (updates)
        # would otherwise never prune nor roll up
        pruned_at = time.monotonic() - PRUNE_EVERY_S + FIRST_DAILY_S
        while True:
            try:
                if not self.leadership.leading:
                    self.history.discard()  # the leader writes what this one saw too
                elif self._history_resync:
                    self._history_resync = False
                    await asyncio.to_thread(self.history.resync, self.fleet.snapshot())
                else:
                    await asyncio.to_thread(self.history.flush)
                if self.leadership.leading and time.monotonic() - pruned_at > PRUNE_EVERY_S:
                    pruned_at = time.monotonic()
                    await asyncio.to_thread(self.daily)
            except Exception:  # top of a task: a bad record must not end the history for good
                log.exception("recording the history failed")
            await asyncio.sleep(self.settings.history.record_s)

    def daily(self) -> None:
        """Once a day: yesterday's roll-ups for every school, and what is older than the
        retention dropped ([history] keep_days, rollup_keep_days)."""
        now, keep = self.clock(), self.settings.history
        rollups = self.reports.rollups
        yesterday = now.astimezone(self.settings.organisation.zone).date() - timedelta(days=1)
        rollups.ensure(rollups.sites(), yesterday - timedelta(days=6), yesterday, now)
        self.history.prune(keep.keep_days)
        rollups.prune(keep.rollup_keep_days, now)

    async def tick_alerts(self) -> None:
        while True:
            started = time.monotonic()
            try:
                if self.leadership.leading:
                    self.engine.tick()
            except Exception:  # top of a task: a rule bug must not end alerting for good
                log.exception("alert evaluation failed")
            await asyncio.sleep(alert_pause(self.settings.alerts.tick_s, time.monotonic() - started))

    async def notify_once(self) -> list[asyncio.Task[None]]:
        """Queue what is due and start the tries that are due (without waiting for them: each
        receiver is tried on its own, a slow one holds up nobody); returns the tries started."""
        now = self.clock()
        started = time.monotonic()
        statuses = alert_statuses(self.state.all(), self.state.silences(), self.state.acks(), now)
        due = self.dispatcher.due(statuses, now)
        self.notify_judged_s = time.monotonic() - started
        self.sender.submit(due)
        self.sender.submit(self.blind.due(now))  # the collector hears no broker, or not all
        # last month's school reports (reading the store: in a thread, not on the loop)
        self.sender.submit(await asyncio.to_thread(self.monthly.due, now))
        return self.sender.pump()

    async def tick_notify(self) -> None:
        while True:
            try:
                if self.leadership.leading:
                    await self.notify_once()
            except Exception:  # top of a task: one bad notification must not end them all
                log.exception("notification failed")
            # Judging every alert's status is linear in the alerts: with tens of thousands
            # standing (a district-wide incident) it gets the same bounded share of the time as
            # evaluation. Sending (network I/O in threads, not awaited here) does not count.
            await asyncio.sleep(alert_pause(self.settings.notify.tick_s, self.notify_judged_s))

    def close(self) -> None:
        self.sender.close()
        self.events.close()
        self.sessions.close()
        self.store.dispose()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: we handle SIGTERM/SIGINT and shut down in order
    (uvicorn would re-raise the signal after its shutdown and so end the process with it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """Listen on ``host:port`` ourselves so that port 0 works and the real port is known."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(settings: ServerSettings, ready: Callable[[str], None]) -> None:
    """Run until SIGTERM/SIGINT; ``ready(url)`` is called once HTTP serves requests."""
    sock = bind(settings.http.host, settings.http.port)
    try:
        collector = Collector(settings)
    except BaseException:
        sock.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # X-Forwarded-For is believed from [http] trusted_proxies only (uvicorn's default would
    # believe it from 127.0.0.1): the login limits count per client address.
    proxies = settings.http.trusted_proxies
    config = uvicorn.Config(collector.app, log_config=None, access_log=False, lifespan="off",
                            log_level=settings.log_level.lower(), proxy_headers=bool(proxies),
                            forwarded_allow_ips=proxies or None)
    http = _Server(config)
    collector.mqtt.start()
    await collector.leadership.step()  # alone on its store, a collector leads from the start
    lead_task = asyncio.create_task(collector.leadership.run(), name="leader")
    http_task = asyncio.create_task(http.serve(sockets=[sock]), name="http")
    alert_task = asyncio.create_task(collector.tick_alerts(), name="alerts")
    notify_task = asyncio.create_task(collector.tick_notify(), name="notify")
    history_task = asyncio.create_task(collector.dashboard.sample_forever(), name="history")
    gc_task = asyncio.create_task(run_gc_policy(GcPolicy()), name="gc")
    inventory_task = asyncio.create_task(collector.follow_inventory(), name="inventory")
    record_task = asyncio.create_task(collector.record_history(), name="record-history")
    stop_task = asyncio.create_task(stop.wait(), name="stop")
    try:
        while not http.started:
            if http_task.done():
                break
            await asyncio.sleep(0.01)
        if http.started:
            ready(_url(sock))
            log.info("HTTP API listening on %s", _url(sock))
        await asyncio.wait({http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if http_task.done() and not stop.is_set():
            log.error("HTTP server ended unexpectedly")
    finally:
        log.info("stopping")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stop_task.cancel()
        lead_task.cancel()
        alert_task.cancel()
        notify_task.cancel()
        history_task.cancel()
        gc_task.cancel()
        inventory_task.cancel()
        record_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await notify_task
        if not await collector.sender.drain(NOTIFY_STOP_TIMEOUT_S):
            log.warning("notifications still being sent at stop stay queued for the next start")
        with contextlib.suppress(asyncio.CancelledError):
            await lead_task
        http.should_exit = True
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(http_task, HTTP_STOP_TIMEOUT_S)
        await asyncio.to_thread(collector.mqtt.stop, MQTT_STOP_TIMEOUT_S)
        if collector.leadership.leading:  # the last changes, before the store closes
            await asyncio.to_thread(collector.history.flush)
        await asyncio.to_thread(collector.leadership.release)  # the next collector leads at once
        await asyncio.to_thread(collector.sink.close, TSDB_CLOSE_TIMEOUT_S)
        collector.close()
        sock.close()
        log.info("stopped")
    if http_task.done() and not http_task.cancelled() and http_task.exception() is not None:
        raise ServerError(f"HTTP server failed: {http_task.exception()}")
