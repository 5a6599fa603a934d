"""``cabinet-sim``: run simulated hardware.

    cabinet-sim cabinet --model ladewache-16 --modbus-port 5020 --control-port 8091 --speed 60
    cabinet-sim cabinet --model ladewache-32 --rtu --baud 19200 --serial-dir /tmp/dev
    cabinet-sim line-board --serial-dir /tmp/dev

When every server listens, one line goes to stdout (and is flushed), for tests and demos to wait
for instead of sleeping:

    READY modbus=127.0.0.1:5020 control=http://127.0.0.1:8091
    READY modbus=127.0.0.1:5020 control=http://127.0.0.1:8091 rtu=/tmp/dev/main
    READY control=http://127.0.0.1:8091 line=/tmp/dev/board

``rtu=`` / ``line=`` name the symlink an agent opens, one per simulated serial bus (``rtu-<bus>=``
when a model has several). The Modbus devices are served over TCP always, and with ``--rtu`` also
over RTU on a virtual serial port (pty); line boards always on a pty.

Logs go to stderr. SIGTERM and SIGINT stop the simulator cleanly with exit status 0.
Subcommands are a table, so a later ``fleet`` (many cabinets in one process) slots in beside
``cabinet``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model, shipped_models
from cabinet_agent.common.errors import ConfigError
from cabinet_agent.line_profile import LineProfile

from .cabinet import CabinetSim
from .control import ControlServer, SerialEndpoint
from .line_board import LineBoardServer
from .modbus_server import CabinetModbusServer
from .rtu_server import CabinetRtuServer
from .scenario import Scenario, SchoolDay

__all__ = ["main"]

log = logging.getLogger("simulators")

TICK_INTERVAL_S = 0.1  # how often the running simulator advances its clock (wall time)
SCENARIOS = ("none", "school-day")
EXIT_USAGE = 2


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 (0 = pick a free one), not {port}")
    return port


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def _start(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time like 2026-11-30T07:00: {text}") \
            from None


BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def _baud(text: str) -> int:
    baud = int(text)
    if baud not in BAUD_RATES:
        raise argparse.ArgumentTypeError(f"baud rate must be one of {BAUD_RATES}, not {text}")
    return baud


def _add_cabinet(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("cabinet", help="one cabinet: Modbus TCP (and RTU) devices + control API")
    _cabinet_arguments(p, "ladewache-16")
    p.add_argument("--rtu", action="store_true",
                   help="also serve the Modbus devices over RTU on a virtual serial port (pty)")
    p.add_argument("--baud", type=_baud, default=19200, help="RTU baud rate the slaves listen at")
    p.add_argument("--bits-per-char", type=int, choices=[10, 11], default=11,
                   help="RTU wire timing: 11 = 8E1/8N2 (Modbus standard), 10 = 8N1")
    p.add_argument("--turnaround-ms", type=_non_negative, default=4.0,
                   help="RTU slave think time between request and reply (a Garo meter: 4 ms, "
                        "hardware.md §3)")


def _add_line_board(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("line-board", help="a cabinet watched by a line-protocol board on a pty")
    _cabinet_arguments(p, "ladewache-16-line")
    p.set_defaults(rtu=False, baud=19200, bits_per_char=11, turnaround_ms=0.0)


def _cabinet_arguments(p: argparse.ArgumentParser, default_model: str) -> None:
    p.add_argument("--model", default=default_model,
                   help=f"cabinet model name or .toml path (shipped: {', '.join(shipped_models())})")
    p.add_argument("--serial-dir", type=Path, default=None,
                   help="where the serial links are made, one per bus (default: a temporary dir)")
    p.add_argument("--line-period-ms", type=_positive, default=None,
                   help="line boards send every reading this often (default: the profile's)")
    p.add_argument("--host", default="127.0.0.1", help="address both servers bind to")
    p.add_argument("--modbus-port", type=_port, default=5020, help="Modbus TCP port, 0 = free")
    p.add_argument("--control-port", type=_port, default=8091, help="HTTP control port, 0 = free")
    p.add_argument("--speed", type=_positive, default=1.0,
                   help="simulated seconds per wall-clock second")
    p.add_argument("--start", type=_start, default=None,
                   help="simulated start time, ISO 8601 (default: now, local time)")
    p.add_argument("--seed", type=int, default=1, help="seed for everything random")
    p.add_argument("--fill", type=_share, default=1.0, help="share of slots holding an iPad")
    p.add_argument("--meter-start-wh", type=_non_negative, default=0.0,
                   help="what every slot meter's energy counter reads at the start (e.g. just "
                        "below a PZEM-016's wrap at 4294967296 Wh)")
    p.add_argument("--asset-prefix", default="IPAD-", help="asset tags are PREFIX + slot (001..)")
    p.add_argument("--scenario", choices=SCENARIOS, default="none",
                   help="scripted events: school-day = out in the morning, back after lessons")
    p.add_argument("--reply-delay-ms", type=_non_negative, default=0.0,
                   help="delay before each Modbus TCP reply, like a slow RS-485 slave")
    p.set_defaults(run=_run_cabinet)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cabinet-sim", description=__doc__.split("\n")[0])
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_cabinet(commands)
    _add_line_board(commands)
    _add_demo(commands)
    from .fleet import add_fleet_parser  # many cabinets in a few processes

    add_fleet_parser(commands, _positive, _start)
    return parser


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("demo", help="a simulated school: broker, 3 cabinets, agents, server")
    p.add_argument("--speed", type=_positive, default=60.0, help="simulated seconds per real second")
    p.add_argument("--workdir", type=Path, default=None, help="configs and logs (default var/demo)")
    p.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto",
                   help="auto: the system's Mosquitto if installed, else the embedded amqtt broker")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run  # the demo starts processes; nothing else needs it

    return run(speed=args.speed, workdir=args.workdir, broker=args.broker)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


def _run_cabinet(args: argparse.Namespace) -> int:
    try:
        cabinet = load_cabinet_model(args.model)
    except ConfigError as exc:
        print(f"cabinet-sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    scenario: Scenario | None = None
    if args.scenario == "school-day":
        scenario = SchoolDay(args.seed, cabinet.model.slots)
    sim = CabinetSim(cabinet, start=args.start or datetime.now().replace(microsecond=0),
                     speed=args.speed, seed=args.seed, fill=args.fill,
                     asset_prefix=args.asset_prefix, scenario=scenario,
                     meter_start_wh=args.meter_start_wh)
    try:
        asyncio.run(_serve(sim, args))
    except OSError as exc:  # a port in use, an address not on this host
        print(f"cabinet-sim: cannot listen: {exc}", file=sys.stderr)
        return 1
    except Exception:  # the top of the process: log what killed it
        log.exception("simulator failed")
        return 1
    return 0


def _buses(cabinet: LoadedCabinet) -> tuple[list[str], dict[str, str]]:
    """The Modbus buses of a model, and ``{line bus: its board}``."""
    modbus: list[str] = []
    lines: dict[str, str] = {}
    for name, spec in cabinet.model.devices.items():
        if isinstance(cabinet.profiles[name], LineProfile):
            lines[spec.bus] = name
        elif spec.bus not in modbus:
            modbus.append(spec.bus)
    return modbus, lines


def _fields(kind: str, links: dict[str, Path]) -> list[str]:
    if len(links) == 1:
        return [f"{kind}={next(iter(links.values()))}"]
    return [f"{kind}-{bus}={link}" for bus, link in links.items()]


async def _serve(sim: CabinetSim, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    modbus_buses, line_buses = _buses(sim.cabinet)
    own_dir = args.serial_dir is None and (args.rtu or bool(line_buses))
    serial_dir: Path = args.serial_dir or Path(tempfile.mkdtemp(prefix="ladewache-sim-"))
    async with contextlib.AsyncExitStack() as stack:
        if own_dir:
            stack.callback(shutil.rmtree, serial_dir, True)
        fields: list[str] = []
        if modbus_buses:
            modbus = CabinetModbusServer(sim, host=args.host, port=args.modbus_port,
                                         reply_delay_s=args.reply_delay_ms / 1000.0)
            try:
                mhost, mport = await modbus.start()
            except RuntimeError as exc:  # pymodbus reports a failed bind as RuntimeError
                raise OSError(f"Modbus {args.host}:{args.modbus_port}: {exc}") from exc
            stack.push_async_callback(modbus.stop)
            fields.append(f"modbus=[{mhost}]:{mport}" if ":" in mhost else f"modbus={mhost}:{mport}")
        serial: dict[str, SerialEndpoint] = {}
        rtu_links: dict[str, Path] = {}
        for bus in modbus_buses if args.rtu else []:
            rtu = CabinetRtuServer(sim, serial_dir / bus, bus=bus, baudrate=args.baud,
                                   bits_per_char=args.bits_per_char,
                                   turnaround_s=args.turnaround_ms / 1000.0)
            rtu_links[bus] = await rtu.start()
            stack.push_async_callback(rtu.stop)
            serial[bus] = rtu
        line_links: dict[str, Path] = {}
        for bus, device in line_buses.items():
            period = args.line_period_ms / 1000.0 if args.line_period_ms else None
            board = LineBoardServer(sim, device, serial_dir / bus, period_s=period, seed=args.seed)
            line_links[bus] = await board.start()
            stack.push_async_callback(board.stop)
            serial[bus] = board
        control = ControlServer(sim, host=args.host, port=args.control_port, serial=serial)
        control.start()
        stack.callback(control.stop)
        fields += [f"control={control.url}", *_fields("rtu", rtu_links), *_fields("line", line_links)]
        ticker = asyncio.create_task(_tick(sim), name="sim-ticker")
        print("READY " + " ".join(fields), flush=True)
        stopping = asyncio.create_task(stop.wait(), name="sim-stop")
        try:
            await asyncio.wait({ticker, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if ticker.done():  # the clock died: better to exit than to serve a frozen cabinet
                ticker.result()
            log.info("stopping")
        finally:
            stopping.cancel()
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


async def _tick(sim: CabinetSim) -> None:
    """Advance the simulation by wall time × speed, forever."""
    sim.tick()  # sets the wall-clock reference
    while True:
        await asyncio.sleep(TICK_INTERVAL_S)
        sim.tick()
