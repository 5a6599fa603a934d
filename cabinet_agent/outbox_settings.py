"""``[outbox]``: where the agent keeps what the broker has not acknowledged yet, and how much."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SYSTEMD_STATE_DIR", "OutboxSection", "default_outbox_path"]

# systemd's StateDirectory=ladewache (deploy/systemd/cabinet-agent.service) exports this.
SYSTEMD_STATE_DIR = Path("/var/lib/ladewache")


class OutboxSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = Field(
        default=None,
        description="SQLite file of the outbox (relative to this file). Default: "
                    "outbox-<site>-<cabinet>.sqlite in systemd's StateDirectory ($STATE_DIRECTORY, "
                    "/var/lib/ladewache); when that is not writable (a run by hand), in "
                    "$XDG_STATE_HOME/ladewache (~/.local/state/ladewache)")
    max_mb: float = Field(default=64.0, gt=0.004, le=4096,
                          description="size bound; beyond it telemetry is dropped first, events last, "
                                      "and counted (telemetry outbox_dropped)")
    sync_interval_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="checkpoint (one fsync) this often: the most a power cut can lose. A crash or "
                    "SIGKILL loses nothing")
    window: int = Field(default=100, ge=1, le=1000,
                        description="messages sent but not yet acknowledged by the broker, at most "
                                    "(paho loses QoS 1 messages past 65,535 queued)")
    replay_rate_per_s: float = Field(
        default=200.0, gt=0, le=100_000,
        description="pace of sending the backlog after an outage, so live polling keeps its CPU")


def default_outbox_path(site: str, cabinet: str) -> Path:
    """The StateDirectory when it is ours to write, else a per-cabinet file in the user's state dir."""
    env = os.environ.get("STATE_DIRECTORY")
    candidates = [Path(env.split(":")[0])] if env else []
    candidates.append(SYSTEMD_STATE_DIR)
    # Named per cabinet everywhere: two agents on one machine (a test rig, a fleet simulator, a Pi
    # that was re-provisioned) must never share, and so send, each other's backlog.
    name = f"outbox-{site}-{cabinet}.sqlite"
    for directory in candidates:
        if directory.is_dir() and os.access(directory, os.W_OK):
            return directory / name
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "ladewache" / name
