"""``cabinet-agent``: run the agent; for installers: check a config, scan a bus, watch the readings.

    cabinet-agent run --config agent.toml
    cabinet-agent check-config --config agent.toml
    cabinet-agent scan --port /dev/serial/by-id/usb-… --bauds 9600,19200 --addresses 1-247
    cabinet-agent watch --config agent.toml [--once]

Exit codes: 0 done, 1 runtime failure (scan: nothing found), 2 wrong arguments, 78 config error
(one line per problem on stderr: ``cabinet-agent: config error: SOURCE: KEY: WHAT``; the systemd
unit does not restart on it). docs/deploy.md, "Config errors".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path

from .cabinet_model import LoadedCabinet, load_cabinet_model
from .common.configfile import problem, redacted
from .common.durations import duration_text
from .common.errors import EXIT_CONFIG, EXIT_USAGE, BusUnavailable, ConfigError
from .config import AgentSettings, LineBus, RtuBus, SerialBus, load, preflight
from .registers import DeviceProfile
from .sources.serial_port import resolve_port

__all__ = ["main", "sensing_notes"]

log = logging.getLogger("cabinet_agent")

EXIT_NOT_FOUND = 1


def _model(settings: AgentSettings) -> LoadedCabinet:
    """The cabinet model, its errors prefixed with the config key that named it."""
    name = settings.cabinet.model
    try:
        return load_cabinet_model(name, settings.base_dir)
    except ConfigError as exc:
        raise ConfigError("\n".join(problem(settings, "cabinet.model", line)
                                    for line in str(exc).splitlines())) from exc


def _load_all(path: Path | None, *, starting: bool = False) -> tuple[AgentSettings, LoadedCabinet]:
    """Config, cabinet model and profiles, checked against each other; nothing is opened.
    ``starting``: also what ``run`` opens at start (TLS files, the outbox's directory)."""
    from .sources import open_sources

    settings = load(path)
    cabinet = _model(settings)
    problems = []
    for name, spec in cabinet.model.devices.items():
        if spec.bus not in settings.buses:
            problems.append(problem(settings, "buses", f"device {name!r} of model "
                                    f"{cabinet.model.name} sits on bus {spec.bus!r}; configured "
                                    f"buses: {sorted(settings.buses)}"))
    for name in settings.devices:
        if name not in cabinet.model.devices:
            problems.append(problem(settings, f"devices.{name}", f"model {cabinet.model.name} has "
                                    f"no such device; it has {', '.join(cabinet.model.devices)}"))
    if not problems:
        try:
            open_sources(settings, cabinet)  # builds, opens nothing: a device that misfits its bus
        except ConfigError as exc:
            problems.append(problem(settings, None, str(exc)))
    if starting:
        problems += preflight(settings)
    if problems:
        raise ConfigError("\n".join(problems))
    return settings, cabinet


def _serial_notes(settings: AgentSettings, cabinet: LoadedCabinet) -> list[str]:
    """What an installer should know: is the adapter there, do the devices' defaults match."""
    notes: list[str] = []
    for bus_name, bus in settings.buses.items():
        if not isinstance(bus, SerialBus):
            continue
        try:
            where = f"present at {resolve_port(bus.port)}"
        except BusUnavailable as exc:
            where = f"NOT present now ({exc}); the agent starts anyway and keeps looking"
        framing = f"{bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}"
        notes.append(f"bus {bus_name}: {bus.transport} {bus.port} {framing}: {where}")
        for name, spec in cabinet.model.devices.items():
            profile = cabinet.profiles[name]
            if spec.bus != bus_name:
                continue
            d = profile.serial
            default = f"{d.baudrate} {d.bytesize}{d.parity}{d.stopbits}"
            if default != framing and isinstance(bus, RtuBus | LineBus):
                kind = "factory setting" if isinstance(profile, DeviceProfile) else "profile"
                notes.append(f"  note: {name} ({profile.name}) {kind} is {default}; set the device "
                             f"to {framing} before connecting it")
    return notes


def sensing_notes(cabinet: LoadedCabinet) -> list[str]:
    """What the model's hardware observes, and what that means for a school (German, then
    English): a cabinet that measures slot power without presence inputs cannot see a full iPad
    being taken out — only the absence of top-up pulses over the evidence window tells."""
    window_s = cabinet.model.effective_thresholds().evidence_window_s
    sensing = cabinet.sensing()
    yes = {True: "yes", False: "no"}
    lines = [f"senses: slot power {yes[sensing.slot_power]}, presence inputs "
             f"{yes[sensing.presence]}, door contact {yes[sensing.door]}"]
    counted = sum(counter is not None for counter in cabinet.counters)
    if counted:  # docs/classification.md, "How the energy is measured"
        where = "every slot" if counted == cabinet.model.slots else \
            f"{counted} of {cabinet.model.slots} slots, power over time on the others"
        lines.append(f"session energy: the meters' own energy counters on {where}")
    if sensing.slot_power and not sensing.presence:
        lines += [
            f"  Hinweis: Dieser Schrank misst nur Strom: ob ein volles iPad entnommen wurde, zeigt "
            f"sich erst, wenn es nachlädt (bis zu {duration_text(window_s, 'de')}). Präsenzschalter oder "
            f"Steckererkennung geben bis zur Rückgabeprüfung eine sichere Antwort.",
            f"  note: this cabinet measures power only: whether a full iPad was taken out shows "
            f"only when it tops up (up to {duration_text(window_s, 'en')}). Presence switches or plug "
            f"detection give a certain answer by the return check.",
        ]
    elif not sensing.slot_power:
        lines += [
            "  Hinweis: Dieser Schrank misst keinen Strom je Fach: kein Fach kann beurteilt "
            "werden, nur Tür, Netz und Temperatur.",
            "  note: this cabinet has no power meter per slot: no slot can be judged, only door, "
            "mains and temperature.",
        ]
    return lines


def tag_notes(settings: AgentSettings) -> list[str]:
    """An agent.toml from before the inventory: its asset tags are read no more."""
    if not settings.cabinet.asset_tags:
        return []
    return ["note: " + problem(settings, "cabinet.asset_tags", "ignored: asset tags live in the "
                               "server's inventory now (dashboard: Inventar, or `cabinet-server "
                               "inventory import`); remove the section")]


def _cmd_check(args: argparse.Namespace) -> int:
    settings, cabinet = _load_all(args.config, starting=True)
    buses = ", ".join(f"{n} ({b.transport})" for n, b in settings.buses.items())
    print(f"config OK: cabinet {settings.cabinet.site}/{settings.cabinet.id}, "
          f"model {cabinet.model.name} ({cabinet.model.slots} slots, "
          f"{len(cabinet.model.devices)} devices), buses {buses}, "
          f"broker {', then '.join(map(str, settings.mqtt.brokers))}")
    for note in sensing_notes(cabinet) + tag_notes(settings):
        print(note)
    for note in _serial_notes(settings, cabinet):
        print(note)
    if args.show:
        print(json.dumps(redacted(settings), indent=2, default=str))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .service import Agent, run_until_signalled
    from .sources import open_sources

    settings, cabinet = _load_all(args.config, starting=True)
    log.info("cabinet-agent starting: %s", json.dumps(redacted(settings), default=str))
    for note in tag_notes(settings):
        log.warning("%s", note)
    if settings.simulation.speed != 1.0:  # a real cabinet must never run with this
        log.warning("simulation.speed = %g: durations count as simulated seconds, for a simulator "
                    "running that much faster than real time", settings.simulation.speed)

    async def _main() -> str:
        agent = Agent(settings, cabinet, open_sources(settings, cabinet))
        log.info("boot id %s, model %s, %d slots", agent.boot_id, cabinet.model.name,
                 cabinet.model.slots)
        return await run_until_signalled(agent)

    reason = asyncio.run(_main())
    log.info("cabinet-agent %s", reason)
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from .scan import ScanHit, parse_addresses, parse_bauds, scan

    try:
        bauds, addresses = parse_bauds(args.bauds), parse_addresses(args.addresses)
    except ValueError as exc:
        print(f"cabinet-agent scan: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"scanning {args.port}: {len(addresses)} address(es) at {', '.join(map(str, bauds))} "
          f"baud, {args.parity}, FC{args.function:02d} register {args.register}", flush=True)

    def show(hit: ScanHit) -> None:
        mark = "found" if hit.present else "noise"
        print(f"{mark} baud={hit.baudrate} address={hit.address} answer={hit.answer}", flush=True)

    try:
        hits = asyncio.run(scan(args.port, bauds, addresses, parity=args.parity,
                                stopbits=args.stopbits, timeout_s=args.timeout_ms / 1000,
                                function=args.function, register=args.register, on_hit=show))
    except BusUnavailable as exc:
        print(f"cabinet-agent scan: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    found = [h for h in hits if h.present]
    print(f"{len(found)} device(s) found")
    return 0 if found else EXIT_NOT_FOUND


def _cmd_watch(args: argparse.Namespace) -> int:
    from .poller import Poller
    from .sources import open_sources
    from .watch import watch

    settings, cabinet = _load_all(args.config)
    interval = args.interval or settings.polling.interval_s
    title = f"{settings.cabinet.site}/{settings.cabinet.id}"

    async def _main() -> None:
        poller = Poller(cabinet, open_sources(settings, cabinet))
        await watch(cabinet, poller, title, interval_s=interval,
                    cycles=args.cycles if args.once else None, clear=not args.once,
                    windows=settings.charging.parsed(), time_scale=settings.simulation.speed)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a live watch ends
        asyncio.run(_main())
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cabinet-agent", description=__doc__.split("\n")[0])
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="poll the cabinet and publish over MQTT until SIGTERM")
    run.add_argument("--config", type=Path,
                     help="agent TOML file (if omitted: the LADEWACHE_… environment only)")
    run.set_defaults(func=_cmd_run)
    check = sub.add_parser("check-config", help="validate config, cabinet model and profiles, "
                                                "and the files and directories run would open")
    check.add_argument("--config", type=Path, required=True)
    check.add_argument("--show", action="store_true", help="print the effective config (redacted)")
    check.set_defaults(func=_cmd_check)
    scan = sub.add_parser("scan", help="find Modbus RTU devices on a serial port: address and baud")
    scan.add_argument("--port", required=True, help="serial device, by-id link or glob")
    scan.add_argument("--bauds", default="9600,19200,2400,4800,38400,115200",
                      help="baud rates to try, in this order")
    scan.add_argument("--addresses", default="1-247", help="e.g. 1-247 or 1,2,5-9")
    scan.add_argument("--parity", choices=["N", "E", "O"], default="N")
    scan.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    scan.add_argument("--timeout-ms", type=_positive, default=100.0,
                      help="answer time allowed per probe, on top of the wire time")
    scan.add_argument("--function", type=int, choices=[1, 2, 3, 4], default=3,
                      help="function code of the probe (an exception answer counts as found)")
    scan.add_argument("--register", type=int, default=0, help="address the probe reads")
    scan.set_defaults(func=_cmd_scan)
    watch = sub.add_parser("watch", help="live table of raw readings and slot states (no MQTT)")
    watch.add_argument("--config", type=Path, required=True)
    watch.add_argument("--once", action="store_true", help="print one table (after --cycles polls)")
    watch.add_argument("--cycles", type=int, default=1, help="polls before the --once table")
    watch.add_argument("--interval", type=_positive, default=None,
                       help="seconds between polls (default: polling.interval_s)")
    watch.set_defaults(func=_cmd_watch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for line in str(exc).splitlines():  # one line per problem, each greppable on its own
            print(f"cabinet-agent: config error: {line}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
