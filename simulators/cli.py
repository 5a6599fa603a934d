"""``cabinet-sim``: run simulated hardware.

    cabinet-sim cabinet --model ladewache-16 --modbus-port 5020 --control-port 8091 --speed 60

When every server listens, one line goes to stdout (and is flushed), for tests and demos to wait
for instead of sleeping:

    READY modbus=127.0.0.1:5020 control=http://127.0.0.1:8091

Logs go to stderr. SIGTERM and SIGINT stop the simulator cleanly with exit status 0.
Subcommands are a table, so a later ``fleet`` (many cabinets in one process) slots in beside
``cabinet``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from cabinet_agent.cabinet_model import load_cabinet_model, shipped_models
from cabinet_agent.errors import ConfigError

from .cabinet import CabinetSim
from .control import ControlServer
from .modbus_server import CabinetModbusServer
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


def _add_cabinet(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("cabinet", help="one cabinet: Modbus TCP devices + control API")
    p.add_argument("--model", default="ladewache-16",
                   help=f"cabinet model name or .toml path (shipped: {', '.join(shipped_models())})")
    p.add_argument("--host", default="127.0.0.1", help="address both servers bind to")
    p.add_argument("--modbus-port", type=_port, default=5020, help="Modbus TCP port, 0 = free")
    p.add_argument("--control-port", type=_port, default=8091, help="HTTP control port, 0 = free")
    p.add_argument("--speed", type=_positive, default=1.0,
                   help="simulated seconds per wall-clock second")
    p.add_argument("--start", type=_start, default=None,
                   help="simulated start time, ISO 8601 (default: now, local time)")
    p.add_argument("--seed", type=int, default=1, help="seed for everything random")
    p.add_argument("--fill", type=_share, default=1.0, help="share of slots holding an iPad")
    p.add_argument("--asset-prefix", default="IPAD-", help="asset tags are PREFIX + slot (001..)")
    p.add_argument("--scenario", choices=SCENARIOS, default="none",
                   help="scripted events: school-day = out in the morning, back after lessons")
    p.add_argument("--reply-delay-ms", type=_non_negative, default=0.0,
                   help="delay before each Modbus reply, like a slow RS-485 slave")
    p.set_defaults(run=_run_cabinet)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cabinet-sim", description=__doc__.split("\n")[0])
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_cabinet(commands)
    _add_demo(commands)
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
                     asset_prefix=args.asset_prefix, scenario=scenario)
    try:
        asyncio.run(_serve(sim, args))
    except OSError as exc:  # a port in use, an address not on this host
        print(f"cabinet-sim: cannot listen: {exc}", file=sys.stderr)
        return 1
    except Exception:  # the top of the process: log what killed it
        log.exception("simulator failed")
        return 1
    return 0


async def _serve(sim: CabinetSim, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    modbus = CabinetModbusServer(sim, host=args.host, port=args.modbus_port,
                                 reply_delay_s=args.reply_delay_ms / 1000.0)
    try:
        mhost, mport = await modbus.start()
    except RuntimeError as exc:  # pymodbus reports a failed bind as RuntimeError
        raise OSError(f"Modbus {args.host}:{args.modbus_port}: {exc}") from exc
    try:
        control = ControlServer(sim, host=args.host, port=args.control_port)
    except OSError:
        await modbus.stop()
        raise
    control.start()
    ticker = asyncio.create_task(_tick(sim), name="sim-ticker")
    modbus_addr = f"[{mhost}]:{mport}" if ":" in mhost else f"{mhost}:{mport}"
    print(f"READY modbus={modbus_addr} control={control.url}", flush=True)
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
        control.stop()
        await modbus.stop()


async def _tick(sim: CabinetSim) -> None:
    """Advance the simulation by wall time × speed, forever."""
    sim.tick()  # sets the wall-clock reference
    while True:
        await asyncio.sleep(TICK_INTERVAL_S)
        sim.tick()
