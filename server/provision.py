"""``cabinet-server provision …``: register a cabinet, give it credentials, write its agent config.

    cabinet-server provision server                      # the collector's broker user
    cabinet-server provision add --site gs-park --cabinet schrank-1 --model ladewache-16 \\
        --asset-tag 1=GS-PARK-0001 --broker-host broker.example --modbus-host 192.168.5.20
    cabinet-server provision rotate --site gs-park --cabinet schrank-1
    cabinet-server provision remove --site gs-park --cabinet schrank-1
    cabinet-server provision list

The registry (``cabinets.json``) is the truth; the broker's ACL file is regenerated from it on
every change. Passwords are random, stored only hashed in the broker's password file and in
clear in the env files written with mode 0600; they are printed only with ``--show-password``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import secrets
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cabinet_agent.cabinet_model import load_cabinet_model
from cabinet_agent.common.errors import ConfigError
from cabinet_agent.config import load as load_agent_config
from cabinet_agent.ha_discovery import node_id

from .broker_files import AclEntry, BrokerFileError, PasswordFile, atomic_write, render_acl

__all__ = [
    "COLLECTOR_USER",
    "RESERVED_USERS",
    "add_provision_commands",
    "cabinet_identity",
    "cabinet_user",
    "fold",
    "run_provision_command",
    "topic_prefix",
]

DEFAULT_DIR = Path("/etc/ladewache/provision")
DEFAULT_PASSWD = Path("/etc/mosquitto/ladewache/passwd")
DEFAULT_ACL = Path("/etc/mosquitto/ladewache/acl")
REGISTRY = "cabinets.json"
ENV_KEY = "LADEWACHE_MQTT__PASSWORD"
USER_ENV_KEY = "LADEWACHE_MQTT__USERNAME"
# The collector's broker user by default (`provision server`) and its default [mqtt] client_id:
# the broker keys sessions by user name (use_username_as_clientid), so this is the collector's
# session even before `provision server` ran. No cabinet may ever be given it.
COLLECTOR_USER = "ladewache-server"
RESERVED_USERS = frozenset({COLLECTOR_USER})


class ProvisionError(Exception):
    pass


def cabinet_user(site: str, cabinet: str) -> str:
    # "." is not allowed in ids, so site "a-b"/cabinet "c" and site "a"/cabinet "b-c" differ.
    return f"{site}.{cabinet}"


def fold(name: str) -> str:
    """``name`` with case and "-" vs "_" folded: two names that fold alike are one identity to a
    reader, and some derived names (Home Assistant's node id) already fold "-" into "_"."""
    return name.casefold().replace("-", "_")


def cabinet_identity(site: str, cabinet: str) -> str:
    """What no two cabinets may share: the coarsest name derived from the ids, the Home Assistant
    node id (its ACL grant ``homeassistant/+/<node>/#``), folded. Equal broker users, default
    client ids (``ladewache-<site>-<cabinet>``) or ACL grants imply an equal identity."""
    return fold(node_id(site, cabinet))


def _cabinet_clash(registry: dict[str, Any], site: str, cabinet: str) -> str | None:
    """Why cabinet ``site/cabinet`` may not be added beside the registry's others, or None."""
    key, user = f"{site}/{cabinet}", cabinet_user(site, cabinet)
    mine = cabinet_identity(site, cabinet)
    for other, cab in sorted(registry["cabinets"].items()):
        if other != key and cabinet_identity(cab["site"], cab["cabinet"]) == mine:
            return (f"cabinet {key} collides with cabinet {other}: both are {mine} with case and "
                    "'-'/'_' ignored (broker user, client id and ACL derive from it); choose "
                    "another cabinet id")
    for name in sorted({*registry["server_users"], *RESERVED_USERS}):
        if fold(name) == fold(user):
            return (f"cabinet {key} collides with the collector's user {name}: its broker user "
                    f"would be {user}; choose another cabinet id")
    return None


def topic_prefix(site: str, cabinet: str) -> str:
    return f"ladewache/v1/{site}/{cabinet}"


def new_password() -> str:
    return secrets.token_urlsafe(24)  # 192 bits; [A-Za-z0-9_-] is safe in a systemd env file


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


# -- registry and broker files ------------------------------------------------------------------

class Provisioner:
    def __init__(self, directory: Path, passwords: PasswordFile, acl_file: Path) -> None:
        self.dir = directory
        self.passwords = passwords
        self.acl_file = acl_file
        self.registry_file = directory / REGISTRY

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The registry, locked against a second provisioning run; saved and the ACL rewritten."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            registry: dict[str, Any] = {"server_users": [], "cabinets": {}}
            if self.registry_file.exists():
                registry = json.loads(self.registry_file.read_text(encoding="utf-8"))
            yield registry
            atomic_write(self.registry_file, json.dumps(registry, indent=2, sort_keys=True) + "\n")
            atomic_write(self.acl_file, render_acl(self.acl_entries(registry)), mode=0o640)

    @staticmethod
    def acl_entries(registry: dict[str, Any]) -> list[AclEntry]:
        entries = [AclEntry(user, "the collector reads every cabinet",
                            (("read", "ladewache/v1/#"),)) for user in registry["server_users"]]
        for key, cab in sorted(registry["cabinets"].items()):
            prefix = topic_prefix(cab["site"], cab["cabinet"])
            # Read access to its own prefix only: a cabinet learns nothing it does not already know.
            # And its own Home Assistant discovery configs (cabinet_agent/ha_discovery.py), if enabled.
            node = node_id(cab["site"], cab["cabinet"])
            entries.append(AclEntry(cab["user"], f"cabinet {key}", (
                ("readwrite", f"{prefix}/#"), ("write", f"homeassistant/+/{node}/#"))))
        return entries

    def cabinet_dir(self, site: str, cabinet: str) -> Path:
        return self.dir / "cabinets" / site / cabinet


def _env_file(path: Path, what: str, password: str, user: str | None = None) -> None:
    """``user``: named too, so that one config file serves several collectors (deploy.md 6b)."""
    login = f"{USER_ENV_KEY}={user}\n" if user is not None else ""
    atomic_write(path, f"# {what}: MQTT login, written {_now()}. Keep it mode 0600.\n"
                       f"{login}{ENV_KEY}={password}\n", mode=0o600)


def render_agent_config(args: argparse.Namespace, user: str) -> str:
    if args.transport == "tcp":
        bus = f'host = {_toml(args.modbus_host)}\nport = {args.modbus_port}\n'
    else:
        bus = f"port = {_toml(args.serial_port)}\n" + (
            f"baudrate = {args.baudrate}\n" if args.baudrate else "")
    tls = (f"tls = true\nca_file = {_toml(args.ca_file)}\n" if not args.plaintext
           else "tls = false\nallow_plaintext = true      # chosen at provisioning: --plaintext\n")
    brokers = ", ".join(_toml(b) for b in args.failover_brokers)
    failover = (f"failover = [{brokers}]  # further brokers, tried in turn (docs/deploy.md 6c)\n"
                if args.failover_brokers else "")
    return (
        f"# Cabinet {args.site}/{args.cabinet}, written by `cabinet-server provision` {_now()}.\n"
        "# The password is in agent.env (LADEWACHE_MQTT__PASSWORD), not here.\n\n"
        f"[cabinet]\nsite = {_toml(args.site)}\nid = {_toml(args.cabinet)}\n"
        f"model = {_toml(args.model)}\n\n"
        f"[buses.main]\ntransport = {_toml(args.transport)}\n{bus}\n"
        f"[mqtt]\nhost = {_toml(args.broker_host)}\nport = {args.broker_port}\n"
        f"username = {_toml(user)}\n{tls}{failover}"
    )


def validate_agent_config(path: Path, asset_tags: Mapping[int, str]) -> None:
    """The agent's own loader and model checks (what `cabinet-agent check-config` does), and the
    asset tags' slots against the model (the tags go to the server's snippet, not the agent)."""
    settings = load_agent_config(path)
    model = load_cabinet_model(settings.cabinet.model, settings.base_dir).model
    for slot in asset_tags:
        if not 1 <= slot <= model.slots:
            raise ConfigError(f"asset tag for slot {slot}: model {model.name} has slots 1..{model.slots}")
    for name, spec in model.devices.items():
        if spec.bus not in settings.buses:
            raise ConfigError(f"model {model.name}: device {name} sits on bus {spec.bus!r}, "
                              "provisioning writes only bus 'main'")


# -- commands -----------------------------------------------------------------------------------

def _tell_password(out: TextIO, args: argparse.Namespace, user: str, password: str,
                   env: Path) -> None:
    if args.show_password:
        print(f"password for {user}: {password}", file=out)
    else:
        print(f"password for {user}: in {env} (mode 0600; --show-password prints it)", file=out)


def _add(p: Provisioner, args: argparse.Namespace, out: TextIO) -> int:
    user = cabinet_user(args.site, args.cabinet)
    key = f"{args.site}/{args.cabinet}"
    folder = p.cabinet_dir(args.site, args.cabinet)
    with p.locked() as registry:
        if key in registry["cabinets"] and not args.replace:
            raise ProvisionError(f"cabinet {key} is provisioned already: `provision rotate` gives "
                                 "it new credentials, --replace registers it anew")
        clash = _cabinet_clash(registry, args.site, args.cabinet)
        if clash is not None:  # before anything is written
            raise ProvisionError(clash)
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "agent.toml"
        candidate = folder / ".agent.toml.new"
        atomic_write(candidate, render_agent_config(args, user), mode=0o644)
        try:
            validate_agent_config(candidate, args.asset_tags)
        except ConfigError as exc:
            candidate.unlink()
            raise ProvisionError(f"the agent config would not load: {exc}") from exc
        candidate.replace(config)
        password = new_password()
        p.passwords.set(user, password)
        _env_file(folder / "agent.env", f"cabinet {key}", password)
        registry["cabinets"][key] = {
            "site": args.site, "cabinet": args.cabinet, "model": args.model, "user": user,
            "asset_tags": {str(k): v for k, v in sorted(args.asset_tags.items())},
            "provisioned": _now(), "rotated": None,
        }
    slots = ", ".join(f"{k} = {_toml(v)}" for k, v in sorted(args.asset_tags.items()))
    (folder / "server-snippet.toml").write_text(
        f"[[organisation.cabinets]]\nschool = {_toml(args.site)}\nid = {_toml(args.cabinet)}\n"
        f"slots = {{ {slots} }}\n", encoding="utf-8")
    print(f"cabinet {key}: broker user {user}, topics {topic_prefix(args.site, args.cabinet)}/#",
          file=out)
    print(f"agent config: {config}\nagent env:    {folder / 'agent.env'}", file=out)
    _tell_password(out, args, user, password, folder / "agent.env")
    print("next: reload the broker (systemctl reload mosquitto), then on the Pi: "
          "deploy/install-agent.sh --config agent.toml --env agent.env --ca ca.pem", file=out)
    return 0


def _rotate(p: Provisioner, args: argparse.Namespace, out: TextIO) -> int:
    key = f"{args.site}/{args.cabinet}"
    with p.locked() as registry:
        cab = registry["cabinets"].get(key)
        if cab is None:
            raise ProvisionError(f"cabinet {key} is not provisioned")
        password = new_password()
        p.passwords.set(cab["user"], password)
        env = p.cabinet_dir(args.site, args.cabinet) / "agent.env"
        _env_file(env, f"cabinet {key}", password)
        cab["rotated"] = _now()
    print(f"cabinet {key}: new password for {cab['user']}; the old one works until the broker "
          "reloads (systemctl reload mosquitto)", file=out)
    _tell_password(out, args, cab["user"], password, env)
    print("copy agent.env to /etc/ladewache/agent.env on the Pi and restart cabinet-agent", file=out)
    return 0


def _remove(p: Provisioner, args: argparse.Namespace, out: TextIO) -> int:
    key = f"{args.site}/{args.cabinet}"
    with p.locked() as registry:
        cab = registry["cabinets"].pop(key, None)
        if cab is None:
            raise ProvisionError(f"cabinet {key} is not provisioned")
        p.passwords.remove(cab["user"])
        (p.cabinet_dir(args.site, args.cabinet) / "agent.env").unlink(missing_ok=True)
    print(f"cabinet {key}: user {cab['user']} removed; reload the broker", file=out)
    return 0


def _server(p: Provisioner, args: argparse.Namespace, out: TextIO) -> int:
    with p.locked() as registry:
        for key, cab in sorted(registry["cabinets"].items()):
            if fold(cab["user"]) == fold(args.user):
                raise ProvisionError(f"collector user {args.user} collides with cabinet {key}'s "
                                     f"user {cab['user']}; choose another --user")
        password = new_password()
        p.passwords.set(args.user, password)
        if args.user not in registry["server_users"]:
            registry["server_users"].append(args.user)
        # one file per collector user: a second collector's (docs/deploy.md 6b) keeps the first's
        env = p.dir / ("server.env" if args.user == COLLECTOR_USER else f"server-{args.user}.env")
        _env_file(env, f"collector user {args.user}", password, args.user)
    print(f"collector user {args.user} reads ladewache/v1/#; env file {env} "
          "(copy to /etc/ladewache/server.env on its collector's host); reload the broker",
          file=out)
    _tell_password(out, args, args.user, password, env)
    return 0


def _list(p: Provisioner, args: argparse.Namespace, out: TextIO) -> int:
    if not p.registry_file.exists():
        print("no cabinets provisioned", file=out)
        return 0
    registry = json.loads(p.registry_file.read_text(encoding="utf-8"))
    for user in registry["server_users"]:
        print(f"collector {user}", file=out)
    for key, cab in sorted(registry["cabinets"].items()):
        print(f"cabinet {key} user={cab['user']} model={cab['model']} "
              f"provisioned={cab['provisioned']} rotated={cab['rotated'] or '-'}", file=out)
    return 0


_COMMANDS = {"add": _add, "rotate": _rotate, "remove": _remove, "server": _server, "list": _list}


def run_provision_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args.asset_tags = dict(getattr(args, "asset_tag_list", []))
    try:
        passwords = PasswordFile.choose(args.passwd_file, args.hasher)
        provisioner = Provisioner(args.dir, passwords, args.acl_file)
        return _COMMANDS[args.provision_command](provisioner, args, out)
    except (ProvisionError, BrokerFileError, OSError) as exc:
        print(f"cabinet-server provision: {exc}", file=sys.stderr)
        return 2


def _asset_tag(text: str) -> tuple[int, str]:
    slot, sep, tag = text.partition("=")
    if not sep or not slot.strip().isdigit() or not tag.strip():
        raise argparse.ArgumentTypeError(f"expected SLOT=TAG such as 1=GS-0001, not {text!r}")
    return int(slot), tag.strip()


def add_provision_commands(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser("provision", help="register cabinets, broker users and ACL")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                        help=f"registry and generated files (default {DEFAULT_DIR})")
    common.add_argument("--passwd-file", type=Path, default=DEFAULT_PASSWD,
                        help=f"the broker's password_file (default {DEFAULT_PASSWD})")
    common.add_argument("--acl-file", type=Path, default=DEFAULT_ACL,
                        help=f"the broker's acl_file, regenerated (default {DEFAULT_ACL})")
    common.add_argument("--hasher", choices=["auto", "mosquitto_passwd", "builtin"], default="auto",
                        help="auto: mosquitto_passwd when installed, else the built-in $7$ hash")
    common.add_argument("--show-password", action="store_true",
                        help="print the new password (default: only the env file holds it)")
    sub = parser.add_subparsers(dest="provision_command", required=True)
    add = sub.add_parser("add", parents=[common], help="register a cabinet, write its agent config")
    rotate = sub.add_parser("rotate", parents=[common], help="a new password for a cabinet")
    remove = sub.add_parser("remove", parents=[common], help="revoke a cabinet's broker access")
    for cmd in (add, rotate, remove):
        cmd.add_argument("--site", required=True, help="school id (a-z 0-9 _ -)")
        cmd.add_argument("--cabinet", required=True, help="cabinet id within the school")
    add.add_argument("--model", default="ladewache-16", help="cabinet model (default ladewache-16)")
    add.add_argument("--asset-tag", dest="asset_tag_list", action="append", type=_asset_tag,
                     default=[], metavar="SLOT=TAG", help="asset tag of a slot's iPad; repeatable")
    add.add_argument("--transport", choices=["tcp", "rtu", "line"], default="tcp")
    add.add_argument("--modbus-host", default="127.0.0.1", help="tcp: Modbus TCP module or gateway")
    add.add_argument("--modbus-port", type=int, default=502)
    add.add_argument("--serial-port", default="/dev/ttyUSB0",
                     help="rtu/line: serial device, better a /dev/serial/by-id/ link")
    add.add_argument("--baudrate", type=int, default=None)
    add.add_argument("--broker-host", required=True, help="the broker as the Pi reaches it")
    add.add_argument("--broker-port", type=int, default=8883)
    add.add_argument("--failover-broker", dest="failover_brokers", action="append", default=[],
                     metavar="HOST[:PORT]", help="a further broker the agent moves to when its "
                     "broker is away (repeat for more; docs/deploy.md 6c)")
    add.add_argument("--ca-file", default="ca.pem",
                     help="CA bundle path in the agent config, relative to it (default ca.pem)")
    add.add_argument("--plaintext", action="store_true",
                     help="no TLS (allow_plaintext = true): only for a trusted network")
    add.add_argument("--replace", action="store_true", help="register an existing cabinet anew")
    server = sub.add_parser("server", parents=[common], help="create or rotate the collector's user")
    server.add_argument("--user", default=COLLECTOR_USER,
                        help=f"the collector's broker user and session (default {COLLECTOR_USER})")
    sub.add_parser("list", parents=[common], help="list provisioned cabinets")
    return parser
