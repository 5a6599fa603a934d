"""``cabinet-agent``: run the agent, or check a config before installing it."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from .cabinet_model import LoadedCabinet, load_cabinet_model
from .config import AgentSettings, load
from .configfile import redacted
from .errors import ConfigError

__all__ = ["main"]

log = logging.getLogger("cabinet_agent")


def _load_all(path: Path | None) -> tuple[AgentSettings, LoadedCabinet]:
    settings = load(path)
    cabinet = load_cabinet_model(settings.cabinet.model, settings.base_dir)
    slots = cabinet.model.slots
    for slot in settings.cabinet.asset_tags:
        if not 1 <= slot <= slots:
            raise ConfigError(f"{path}: cabinet.asset_tags.{slot}: model {cabinet.model.name} "
                              f"has slots 1..{slots}")
    for name, spec in cabinet.model.devices.items():
        if spec.bus not in settings.buses:
            raise ConfigError(f"{path}: buses: device {name!r} of model {cabinet.model.name} sits "
                              f"on bus {spec.bus!r}; configured buses: {sorted(settings.buses)}")
    return settings, cabinet


def _cmd_check(args: argparse.Namespace) -> int:
    settings, cabinet = _load_all(args.config)
    print(f"config OK: cabinet {settings.cabinet.site}/{settings.cabinet.id}, "
          f"model {cabinet.model.name} ({cabinet.model.slots} slots, "
          f"{len(cabinet.model.devices)} devices), broker {settings.mqtt.host}:{settings.mqtt.port}")
    if args.show:
        print(json.dumps(redacted(settings), indent=2, default=str))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .service import Agent, run_until_signalled
    from .sources import transport_factory

    settings, cabinet = _load_all(args.config)
    log.info("cabinet-agent starting: %s", json.dumps(redacted(settings), default=str))

    async def _main() -> str:
        buses = {name: transport_factory(bus.transport)(name, bus)
                 for name, bus in settings.buses.items()}
        agent = Agent(settings, cabinet, buses)
        log.info("boot id %s, model %s, %d slots", agent.boot_id, cabinet.model.name,
                 cabinet.model.slots)
        return await run_until_signalled(agent)

    reason = asyncio.run(_main())
    log.info("cabinet-agent %s", reason)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cabinet-agent", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="poll the cabinet and publish over MQTT until SIGTERM")
    run.add_argument("--config", type=Path, help="agent TOML file (defaults if omitted)")
    run.set_defaults(func=_cmd_run)
    check = sub.add_parser("check-config", help="validate config and cabinet model, then exit")
    check.add_argument("--config", type=Path, required=True)
    check.add_argument("--show", action="store_true", help="print the effective config (redacted)")
    check.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"cabinet-agent: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
