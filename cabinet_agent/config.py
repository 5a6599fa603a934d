"""The agent's configuration: one TOML file, ``LADEWACHE_…`` environment overrides.

Every key is described here once; ``deploy/examples/agent.toml`` is checked against this model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from .configfile import FileSettings, load_settings

__all__ = ["AgentSettings", "CabinetSection", "MqttSection", "PollingSection", "TcpBus", "load"]

_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CabinetSection(_Section):
    site: str = Field(default="demo-school", pattern=_ID, description="school id, part of every topic")
    id: str = Field(default="cabinet-1", pattern=_ID, description="cabinet id within the school")
    model: str = Field(
        default="ladewache-16",
        description="shipped cabinet model name, or path to a model .toml (relative to this file)",
    )
    asset_tags: dict[int, str] = Field(
        default_factory=dict, description="slot number -> asset tag of the iPad that lives there"
    )


class TcpBus(_Section):
    transport: Literal["tcp"] = "tcp"
    host: str = Field(default="127.0.0.1", description="Modbus TCP server or RS-485 gateway")
    port: int = Field(default=502, ge=1, le=65535)
    timeout_s: float = Field(default=0.5, gt=0, le=30, description="per-request reply timeout")


class MqttSection(_Section):
    host: str = Field(default="127.0.0.1", description="broker host")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive; the broker "
                             "sends the Last Will after 1.5 x this without traffic")
    tls: bool = Field(default=False, description="connect with TLS")
    ca_file: Path | None = Field(default=None, description="CA bundle for TLS (relative to this file)")
    client_id: str | None = Field(default=None, description="default: ladewache-<site>-<cabinet>")
    reconnect_min_s: float = Field(default=1.0, gt=0, description="first reconnect delay")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="longest reconnect delay")

    @model_validator(mode="after")
    def _delays(self) -> MqttSection:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self


class PollingSection(_Section):
    interval_s: float = Field(default=1.0, ge=0.05, le=3600, description="one poll cycle this often")
    telemetry_interval_s: float = Field(
        default=10.0, ge=0.1, le=3600, description="telemetry (the heartbeat) this often"
    )


class AgentSettings(FileSettings):
    cabinet: CabinetSection = CabinetSection()
    buses: dict[str, TcpBus] = Field(
        default_factory=lambda: {"main": TcpBus()},
        description="named buses; the cabinet model's devices name the bus they sit on",
    )
    mqtt: MqttSection = MqttSection()
    polling: PollingSection = PollingSection()

    def resolve(self, path: Path | None) -> Path | None:
        """A path from the config, relative to the config file's folder."""
        if path is None or path.is_absolute():
            return path
        return self.base_dir / path

    @property
    def base_dir(self) -> Path:
        return getattr(self, "_base_dir", Path.cwd())

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"ladewache-{self.cabinet.site}-{self.cabinet.id}"


def load(path: Path | None) -> AgentSettings:
    return load_settings(AgentSettings, path)
