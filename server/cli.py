"""``cabinet-server``: run the collector, or check a config file.

Exit codes: 0 clean stop, 1 runtime failure, 2 wrong arguments, 78 config error (one line per
problem on stderr: ``cabinet-server: config error: SOURCE: KEY: WHAT``; the systemd unit does not
restart on it). docs/deploy.md, "Config errors".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cabinet_agent.common.configfile import problem, redacted
from cabinet_agent.common.durations import duration_text
from cabinet_agent.common.sdnotify import SdNotifier
from cabinet_agent.thresholds import Thresholds

from .alerts_cli import list_alerts
from .app import make_calendars, serve
from .auth.cli import add_user_commands, run_user_command
from .config import ServerSettings, load_server_settings, preflight
from .errors import EXIT_CONFIG, EXIT_RUNTIME, ConfigError, ServerError
from .history.cli import add_history_commands, run_history_command
from .i18n import DEFAULT_LANGUAGE, LANGUAGES
from .inventory.cli import add_inventory_commands, run_inventory_command
from .org import Organisation, Policy
from .provision import add_provision_commands, run_provision_command
from .retire import retire as retire_collector
from .version import __version__

__all__ = ["main"]

log = logging.getLogger("server")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cabinet-server",
                                     description="Ladewache central collector")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the collector until SIGTERM/SIGINT")
    check = commands.add_parser("check-config", help="validate a config and the files and "
                                "directories run would open; print the config redacted")
    alerts = commands.add_parser(
        "alerts", help="list what fires and why (German by default), from the state file")
    alerts.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE,
                        help="language of the texts (default: de)")
    alerts.add_argument("--all", action="store_true", help="also list resolved alerts")
    retire = commands.add_parser(
        "retire", help="take this collector out of service for good: end its broker sessions "
        "(what they queued is discarded) and remove it from the cluster; stop it first")
    retire.add_argument("--force", action="store_true",
                        help="also when no other collector receives from the broker now")
    add_user_commands(commands)
    add_provision_commands(commands)
    add_inventory_commands(commands)
    add_history_commands(commands)
    for sub in (run, check, alerts, retire):
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


_NAMED_SCHOOLS = 5  # the paragraph names this many shared-pool schools, then counts the rest


def shared_pool_note(org: Organisation) -> str | None:
    """One paragraph (German, then English) for the shared-pool schools: on cabinets that measure
    power only, "not returned" for a full iPad can only be decided after the agent's evidence
    window; presence inputs answer at the check. The server does not know cabinet models (each
    agent reports its own in its birth message), so it names the default window. None when no
    school has a shared pool."""
    names = [s.name for s in org.schools if s.policy is Policy.SHARED_POOL]
    if not names:
        return None
    window_s = Thresholds().evidence_window_s
    shown = ", ".join(names[:_NAMED_SCHOOLS])
    more = len(names) - _NAMED_SCHOOLS
    de_names = shown + (f" und {more} weitere" if more > 0 else "")
    en_names = shown + (f" and {more} more" if more > 0 else "")
    return (
        f"Hinweis für Schulen mit gemeinsamem iPad-Pool ({de_names}): An Schränken, die nur Strom "
        f"messen, lässt sich „nicht zurückgegeben“ für ein volles iPad erst nach dem Beweisfenster "
        f"des Agenten entscheiden (Standard {duration_text(window_s, 'de')}; bis dahin heißt das "
        f"Fach „nicht bestätigt“). Präsenzschalter oder Steckererkennung geben zur "
        f"Rückgabeprüfung eine sichere Antwort. Welche Schränke nur Strom messen, zeigen "
        f"`cabinet-agent check-config` und das Dashboard.\n"
        f"Note for shared-pool schools ({en_names}): on cabinets that measure power only, "
        f"\"not returned\" for a full iPad can only be decided after the agent's evidence window "
        f"(default {duration_text(window_s, 'en')}; until then the slot is \"not confirmed\"). "
        f"Presence switches or plug detection give a certain answer at the return check. "
        f"`cabinet-agent check-config` and the dashboard show which cabinets measure power only."
    )


def _config_error(exc: ConfigError) -> int:
    for line in str(exc).splitlines():  # one line per problem, each greppable on its own
        print(f"cabinet-server: config error: {line}", file=sys.stderr)
    return EXIT_CONFIG


def _check_startup(settings: ServerSettings) -> None:
    """Everything ``run`` would fail on while starting, raised as one ConfigError."""
    problems = preflight(settings)
    # The calendar files are there and readable (else preflight named their keys): parse them as
    # the collector will.
    if not any(": organisation." in line for line in problems):
        try:
            make_calendars(settings)
        except ConfigError as exc:
            problems.append(problem(settings, "organisation", str(exc)))
    if problems:
        raise ConfigError("\n".join(problems))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "provision":  # needs no server config: it writes broker and agent files
        return run_provision_command(args)
    try:
        settings: ServerSettings = load_server_settings(args.config)
        if args.command in ("run", "check-config"):
            _check_startup(settings)
    except ConfigError as exc:
        return _config_error(exc)
    effective = json.dumps(redacted(settings), sort_keys=True, default=str)
    if args.command == "check-config":
        print(json.dumps(redacted(settings), indent=2, sort_keys=True, default=str))
        note = shared_pool_note(settings.organisation)
        if note is not None:  # on stderr: stdout stays the effective config as JSON
            print(note, file=sys.stderr)
        return 0
    if args.command == "alerts":
        try:
            return list_alerts(settings, args.lang, args.all, sys.stdout)
        except ConfigError as exc:
            return _config_error(exc)
        except ServerError as exc:
            print(f"cabinet-server: {exc}", file=sys.stderr)
            return EXIT_RUNTIME
    tools = {"retire": lambda: retire_collector(settings, args.force, sys.stdout),
             "user": lambda: run_user_command(args, settings, sys.stdout),
             "inventory": lambda: run_inventory_command(args, settings),
             "history": lambda: run_history_command(args, settings)}
    if args.command in tools:
        try:
            return tools[args.command]()
        except ServerError as exc:  # why not, or the store cannot be opened: one line
            print(f"cabinet-server: {exc}", file=sys.stderr)
            return EXIT_RUNTIME
    _setup_logging(settings.log_level)
    log.info("cabinet-server %s starting; config %s: %s", __version__,
             args.config or "(none)", effective)
    try:
        asyncio.run(serve(settings, _print_ready))
    except ConfigError as exc:  # found only when building; _check_startup should have said it
        return _config_error(exc)
    except ServerError as exc:
        log.error("%s", exc)
        return EXIT_RUNTIME
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
    return 0
