"""Typed, strict configuration from a TOML file plus ``LADEWACHE_…`` environment overrides.

Shared by agent and server: the server imports this module, never the other way round.
Environment variables win over the file (``LADEWACHE_MQTT__HOST=…`` sets ``[mqtt] host``).

Every problem is reported as one line ``SOURCE: KEY: WHAT`` (docs/deploy.md, "Config errors"):
SOURCE is the config file, or ``environment LADEWACHE_…`` for a value that came from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import PrivateAttr, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .errors import ConfigError, validation_problems

__all__ = [
    "ENV_PREFIX",
    "FileSettings",
    "Provenance",
    "config_hash",
    "directory_problem",
    "file_problem",
    "load_settings",
    "problem",
    "read_toml",
    "redacted",
    "tls_problems",
]

S = TypeVar("S", bound="FileSettings")
ENV_PREFIX = "LADEWACHE_"
_NESTED = "__"


def env_name(loc: Sequence[str]) -> str:
    """The environment variable that sets the key at ``loc``: ``LADEWACHE_MQTT__PORT``."""
    return ENV_PREFIX + _NESTED.join(loc).upper()


@dataclass(frozen=True)
class Provenance:
    """Where the keys of a loaded config came from: its file, or a ``LADEWACHE_…`` variable."""

    file: Path | None
    env: Mapping[str, Any] = field(default_factory=dict)  # what the environment set, nested
    env_names: Mapping[str, str] = field(default_factory=dict)  # upper-case name -> as spelt

    @property
    def file_text(self) -> str:
        return str(self.file) if self.file is not None else "(no config file)"

    def of(self, loc: Sequence[str]) -> str:
        """``environment LADEWACHE_MQTT__PORT`` when that set the key, else the file."""
        file = self.file_text
        if not loc:
            return file
        node: Any = self.env
        var = None
        for depth, part in enumerate(loc, 1):
            if not isinstance(node, Mapping) or part not in node:
                return file
            node = node[part]
            # A whole section can come as JSON (LADEWACHE_MQTT='{"port": 1}'): the longest
            # variable that exists names the key.
            var = self.env_names.get(env_name(loc[:depth]), var)
        if not isinstance(node, Mapping):
            return f"environment {var or env_name(loc)}"
        # An error of a whole section (a rule across its keys), some of them set from the environment.
        prefix = env_name(loc) + _NESTED
        names = sorted(name for upper, name in self.env_names.items() if upper.startswith(prefix))
        return f"{file} with environment {', '.join(names)}" if names else file


class FileSettings(BaseSettings):
    """Base for agent and server settings: env over file, unknown keys rejected."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=_NESTED,
        extra="forbid",
        frozen=True,
    )
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _provenance: Provenance = PrivateAttr(default_factory=lambda: Provenance(None))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init kwargs; the environment overrides them.
        return (env_settings, init_settings)


def problem(settings: FileSettings, key: str | None, what: str) -> str:
    """One line: ``SOURCE: key: what``, SOURCE the file or the variable that set ``key``."""
    if key is None:
        return f"{settings._provenance.file_text}: {what}"
    return f"{settings._provenance.of(key.split('.'))}: {key}: {what}"


# -- reading the file --------------------------------------------------------------------------

_TABLE = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*([A-Za-z0-9_\-."' ]+?)\s*=""")
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _where(text: str, line: int, column: int) -> str:
    """``mqtt.port (line 3, column 8)``: the key when the line is a ``key = value`` line."""
    lines = text.splitlines()
    at = f"line {line}, column {column}"
    match = _KEY.match(lines[line - 1]) if 0 < line <= len(lines) else None
    if match is None:
        return at
    table = ""
    for previous in lines[:line - 1]:
        header = _TABLE.match(previous)
        if header is not None:
            table = header.group(1)
    key = ".".join(part.strip().strip("\"'") for part in (*table.split("."), *match.group(1).split("."))
                   if part.strip())
    return f"{key} ({at})"


def read_toml(path: Path, what: str = "config") -> dict[str, Any]:
    """The one reader of TOML files (configs, cabinet models, device profiles): ConfigError
    naming the file, the key and line of a mistake, or why the file cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {file_problem(path) or exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[start:exc.start].decode("utf-8", errors="replace")) + 1
        where = _where(raw.decode("utf-8", errors="replace"), line, column)
        raise ConfigError(f"{path}: {where}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
                          "save the file as UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_AT.search(message)
        where = _where(text, int(match.group(1)), int(match.group(2))) if match else "(end of file)"
        reason = _TOML_AT.sub("", message).removesuffix(" (at end of document)")
        raise ConfigError(f"{path}: {where}: not valid TOML: {reason}") from exc


def _environment(cls: type[FileSettings]) -> tuple[dict[str, Any], dict[str, str]]:
    """What the environment sets (nested like the file), and the variables' names as spelt."""
    names = {name.upper(): name for name in os.environ if name.upper().startswith(ENV_PREFIX)}
    try:
        return dict(EnvSettingsSource(cls)()), names
    except SettingsError as exc:  # a section given as JSON that is not JSON
        match = re.search(r'field "([^"]+)"', str(exc))
        section = match.group(1) if match else "?"
        var = names.get(env_name([section]), env_name([section]))
        cause = exc.__cause__
        why = f"not valid JSON: {cause}" if isinstance(cause, json.JSONDecodeError) else str(cause or exc)
        raise ConfigError(f"environment {var}: {section}: {why}") from exc


def _missing(loc: tuple[str, ...]) -> str:
    # A list item (organisation.schools.0.name) has no variable of its own.
    if any(part.isdigit() for part in loc):
        return "Field required"
    return f"Field required (set it in the file or as {env_name(loc)})"


def load_settings(cls: type[S], path: Path | None) -> S:
    """Read ``path`` (or nothing) into ``cls``; raise ConfigError naming the file and key."""
    data = read_toml(path) if path is not None else {}
    env, names = _environment(cls)
    provenance = Provenance(path, env, names)
    try:
        settings = cls(**data)
    except ValidationError as exc:
        lines = []
        for loc, kind, message in validation_problems(exc):
            key = ".".join(loc) or "(top level)"
            lines.append(f"{provenance.of(loc)}: {key}: "
                         f"{_missing(loc) if kind == 'missing' else message}")
        raise ConfigError("\n".join(lines)) from exc
    settings._base_dir = path.parent.resolve() if path is not None else Path.cwd()
    settings._provenance = provenance
    return settings


# -- what the services open at start: checked before, so that a mistake is a line, not a traceback

def file_problem(path: Path) -> str | None:
    """Why this process could not read the file at ``path``, or None."""
    try:
        with path.open("rb") as file:
            file.read(1)
    except FileNotFoundError:
        return "file not found"
    except IsADirectoryError:
        return "is a directory, not a file"
    except PermissionError:
        return "not readable (permission denied for this user)"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def directory_problem(directory: Path) -> str | None:
    """Why this process could not create files in ``directory``, or None. A missing directory is
    fine when it can be created: the services create their own."""
    existing = directory
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == directory:
            return f"{directory} is not writable for this user"
        return f"cannot create {directory}: {existing} is not writable for this user"
    return None


def _no_passphrase() -> bytes:
    # The services cannot type a passphrase; without this, OpenSSL would ask on the terminal.
    return b""


def tls_problems(settings: FileSettings, section: str,
                 resolve: Callable[[Path], Path]) -> list[str]:
    """The CA, certificate and key files of ``[section]`` (an MQTT section with ``tls``,
    ``ca_file``, ``cert_file``, ``key_file``): there, readable, and usable by TLS."""
    mqtt = getattr(settings, section)
    if not mqtt.tls:
        return []  # the files are not opened without TLS
    problems: list[str] = []
    files: dict[str, Path] = {}
    for name in ("ca_file", "cert_file", "key_file"):
        value = getattr(mqtt, name)
        if value is None:
            continue
        path = resolve(value)
        why = file_problem(path)
        if why is None:
            files[name] = path
        else:
            problems.append(problem(settings, f"{section}.{name}", f"{path}: {why}"))
    if problems:
        return problems
    context = ssl.create_default_context()
    if "ca_file" in files:
        try:
            context.load_verify_locations(cafile=str(files["ca_file"]))
        except ssl.SSLError as exc:
            problems.append(problem(settings, f"{section}.ca_file",
                                    f"{files['ca_file']}: not a PEM CA certificate ({exc.reason or exc})"))
    if "cert_file" in files:
        try:
            context.load_cert_chain(str(files["cert_file"]), files.get("key_file"),
                                    password=_no_passphrase)
        except ssl.SSLError as exc:
            key = f" with {files['key_file']}" if "key_file" in files else ""
            problems.append(problem(settings, f"{section}.cert_file",
                                    f"{files['cert_file']}{key}: not a usable certificate and "
                                    f"unencrypted private key ({exc.reason or exc})"))
    return problems


def redacted(settings: BaseSettings) -> dict[str, Any]:
    """The settings as JSON-able data with every secret replaced by ``***``."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "***" if value.get_secret_value() else ""
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return walk(dict(settings.model_dump(mode="python")))  # type: ignore[no-any-return]


def config_hash(settings: BaseSettings) -> str:
    """Stable short hash of the effective configuration, secrets excluded."""
    text = json.dumps(redacted(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
