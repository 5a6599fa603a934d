"""Typed, strict configuration from a TOML file plus ``LADEWACHE_…`` environment overrides.

Shared by agent and server: the server imports this module, never the other way round.
Environment variables win over the file (``LADEWACHE_MQTT__HOST=…`` sets ``[mqtt] host``).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError, describe_validation_error

__all__ = ["FileSettings", "config_hash", "load_settings", "redacted"]

S = TypeVar("S", bound="FileSettings")
ENV_PREFIX = "LADEWACHE_"


class FileSettings(BaseSettings):
    """Base for agent and server settings: env over file, unknown keys rejected."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

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


def load_settings(cls: type[S], path: Path | None) -> S:
    """Read ``path`` (or nothing) into ``cls``; raise ConfigError naming the file and key."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        settings = cls(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path or "environment")) from exc
    base = path.parent.resolve() if path is not None else Path.cwd()
    object.__setattr__(settings, "_base_dir", base)
    return settings


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
