"""``cabinet-server``: run the collector, or check a config file.

Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cabinet_agent.configfile import redacted
from cabinet_agent.sdnotify import SdNotifier

from .alerts_cli import list_alerts
from .app import serve
from .auth.cli import add_user_commands, run_user_command
from .config import ServerSettings, load_server_settings
from .errors import ConfigError, ServerError
from .i18n import DEFAULT_LANGUAGE, LANGUAGES
from .provision import add_provision_commands, run_provision_command
from .version import __version__

__all__ = ["main"]

log = logging.getLogger("server")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cabinet-server",
                                     description="Ladewache central collector")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the collector until SIGTERM/SIGINT")
    check = commands.add_parser("check-config", help="validate a config and print it redacted")
    alerts = commands.add_parser(
        "alerts", help="list what fires and why (German by default), from the state file")
    alerts.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE,
                        help="language of the texts (default: de)")
    alerts.add_argument("--all", action="store_true", help="also list resolved alerts")
    add_user_commands(commands)
    add_provision_commands(commands)
    for sub in (run, check, alerts):
        sub.add_argument("--config", type=Path, default=None,
                         help="TOML config file (default: built-in defaults + environment)")
    return parser


def _print_ready(url: str) -> None:
    # The one line on stdout that tests and supervisors wait for.
    print(f"READY http={url}", flush=True)
    SdNotifier.from_env().ready(f"serving {url}")  # systemd Type=notify; no-op elsewhere


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "provision":  # needs no server config: it writes broker and agent files
        return run_provision_command(args)
    try:
        settings: ServerSettings = load_server_settings(args.config)
    except ConfigError as exc:
        print(f"cabinet-server: configuration error:\n{exc}", file=sys.stderr)
        return 2
    effective = json.dumps(redacted(settings), sort_keys=True, default=str)
    if args.command == "check-config":
        print(json.dumps(redacted(settings), indent=2, sort_keys=True, default=str))
        return 0
    if args.command == "alerts":
        try:
            return list_alerts(settings, args.lang, args.all, sys.stdout)
        except (ConfigError, ServerError) as exc:
            print(f"cabinet-server: {exc}", file=sys.stderr)
            return 2
    if args.command == "user":
        return run_user_command(args, settings, sys.stdout)
    _setup_logging(settings.log_level)
    log.info("cabinet-server %s starting; config %s: %s", __version__,
             args.config or "(none)", effective)
    try:
        asyncio.run(serve(settings, _print_ready))
    except ConfigError as exc:  # found only when building (e.g. an unreadable calendar file)
        print(f"cabinet-server: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except ServerError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
    return 0
