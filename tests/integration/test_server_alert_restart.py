"""The real collector with SQLite state, restarted in the middle of an incident: the alert keeps
firing, the webhook receiver gets exactly one notification, and `cabinet-server alerts` says what
fires and why, in German by default."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Channel,
    SlotInfo,
    StatusMessage,
    encode,
    topic_for,
)
from tests.support.api_auth import admin_token, api_get
from tests.support.http_receiver import Receiver, http_receiver
from tests.support.notify_config import webhook_district
from tests.support.procs import ManagedProcess, console_script, wait_until
from tests.support.services import Broker

pytestmark = pytest.mark.integration

SECRET = "hook-secret"
BOOT = "f" * 32


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _config(tmp_path: Path, broker: Broker, receiver: Receiver, site: str) -> Path:
    config = tmp_path / "server.toml"
    config.write_text(f"""
[mqtt]
host = "{broker.host}"
port = {broker.port}
client_id = "collector-{uuid.uuid4().hex[:8]}"
reconnect_min_s = 0.2
reconnect_max_s = 1.0
[http]
port = 0
[alerts]
offline_pending_s = 0.5
tick_s = 0.1
settle_s = 1.0
[state]
dir = "state"
{webhook_district(receiver.url, [(site, "Grundschule am Park")], secret=SECRET)}""",
                      encoding="utf-8")
    return config


def _start(config: Path) -> tuple[ManagedProcess, str]:
    process = ManagedProcess("cabinet-server",
                             [console_script("cabinet-server"), "run", "--config", str(config)])
    line = process.wait_for_line(lambda ln: ln.startswith("READY http="), timeout=30)
    return process, line.split("=", 1)[1]


def _firing(url: str, site: str, token: str) -> dict[str, Any] | None:
    alerts = api_get(f"{url}/api/alerts?state=firing", token)["alerts"]
    return next((a for a in alerts if a["labels"].get("site") == site), None)


def _cli(config: Path, *extra: str) -> str:
    result = subprocess.run([console_script("cabinet-server"), "alerts", "--config", str(config),
                             *extra], capture_output=True, text=True, timeout=30, check=True)
    return result.stdout


def test_a_restart_mid_incident_sends_no_duplicate(tmp_path: Path, broker: Broker,
                                                  publish: Callable[[str, bytes], None]) -> None:
    site, cabinet = f"gs-{uuid.uuid4().hex[:8]}", "k1"
    env = {"v": 1, "site": site, "cabinet": cabinet, "boot_id": BOOT, "seq": 0,
           "ts": datetime.now(UTC), "clock_synced": True}
    publish(topic_for(site, cabinet, Channel.BIRTH), encode(BirthMessage(
        **env, agent_version="0.1.0", config_hash="0123abcd", cabinet_model="m",  # type: ignore[arg-type]
        slot_count=1, slots=[SlotInfo(slot=1)], poll_interval_s=1.0, telemetry_interval_s=10.0)))
    publish(topic_for(site, cabinet, Channel.STATUS),
            encode(StatusMessage(**env, status=AgentStatus.OFFLINE)))  # type: ignore[arg-type]

    with http_receiver() as receiver:
        config = _config(tmp_path, broker, receiver, site)
        token = admin_token(tmp_path / "state")
        first, url = _start(config)
        wait_until(lambda: receiver.delivered(), 20, "the first notification")
        before = _firing(url, site, token)
        assert before is not None
        assert first.stop() == 0

        second, url = _start(config)
        # The restarted collector has the alert from its state file and, once its group is due,
        # finds in the notification log that this group was already sent.
        second.wait_for_line(lambda ln: "up to date" in ln and site in ln, timeout=20)
        after = _firing(url, site, token)
        assert after is not None
        assert (after["fingerprint"], after["starts_at"]) == (before["fingerprint"],
                                                              before["starts_at"])
        # The API names the school the organisation names (the cabinet has no name: its id).
        assert after["summary"] == (f"Schrank {cabinet} (Grundschule am Park) ist offline: "
                                    "Verbindung verloren (Last Will)")

        (request,) = receiver.delivered()
        expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-Ladewache-Signature"], expected)
        payload = request.json()
        assert payload["status"] == "firing" and payload["school"] == "Grundschule am Park"
        assert [a["labels"]["alertname"] for a in payload["alerts"]] == ["cabinet_offline"]

        german = _cli(config)
        assert "AKTIV     kritisch  " in german
        # names and local time for people; the stored labels on the "why" line for technicians
        assert (f"Schrank {cabinet} (Grundschule am Park) ist offline: Verbindung verloren "
                "(Last Will)") in german
        assert not re.search(r"\d{4}-\d\d-\d\dT|UTC", german)
        assert f"Grund: cabinet_offline [cabinet={cabinet}, site={site}] reason=lwt" in german
        english = _cli(config, "--lang", "en")
        assert f"Cabinet {cabinet} (Grundschule am Park) is offline" in english
        assert "FIRING" in english

        # The cabinet comes back: one more message, the resolution.
        env["ts"] = datetime.now(UTC)
        publish(topic_for(site, cabinet, Channel.STATUS),
                encode(StatusMessage(**env, status=AgentStatus.ONLINE)))  # type: ignore[arg-type]
        wait_until(lambda: len(receiver.delivered()) == 2, 20, "the resolved notification")
        assert receiver.delivered()[1].json()["status"] == "resolved"
        assert second.stop() == 0
    assert _cli(config).strip() == "Keine Alarme."
