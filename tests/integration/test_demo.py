"""`make demo` runs `cabinet-sim demo`: it must come up, show three cabinets, and stop cleanly."""

from __future__ import annotations

import json
import re
import signal
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support.procs import ManagedProcess, console_script, wait_until

pytestmark = pytest.mark.integration


def _cabinets(http: str, password: str) -> list[dict]:
    """Logs in as the demo's admin with the password it printed, as a person would."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{http}/login", timeout=5) as response:
        csrf = re.search(r'name="csrf" value="([^"]+)"', response.read().decode()).group(1)  # type: ignore[union-attr]
    form = urllib.parse.urlencode({"name": "admin", "password": password, "csrf": csrf}).encode()
    opener.open(f"{http}/login", data=form, timeout=5).close()
    with opener.open(f"{http}/api/fleet", timeout=5) as response:
        return list(json.loads(response.read())["cabinets"])


def test_demo_runs_a_school_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    demo = ManagedProcess("demo", [console_script("cabinet-sim"), "demo", "--workdir", str(tmp_path)])
    try:
        line = demo.wait_for_line(lambda text: text.strip().startswith("server "), timeout=60)
        http = re.search(r"(http://\S+)", line).group(1)  # type: ignore[union-attr]
        login = demo.wait_for_line(lambda text: text.strip().startswith("dashboard "), timeout=10)
        password = login.split("admin / ", 1)[1].split()[0]
        cabinets = wait_until(lambda: (c := _cabinets(http, password)) and len(c) == 3 and all(
            x["status"] == "online" and x["slots"] for x in c) and c, 30, "three cabinets online")
        assert sorted(c["slot_count"] for c in cabinets) == [8, 16, 32]
        assert any(s["state"] == "charging" for c in cabinets for s in c["slots"])
    finally:
        demo.signal(signal.SIGINT)  # what Ctrl-C does
        code = demo.proc.wait(60)
    assert code == 0, demo.output()
    assert "all stopped." in demo.output()
    for name in ("agent-schrank-a", "agent-schrank-b", "agent-schrank-c"):
        assert "stopped by SIGTERM" in (tmp_path / "logs" / f"{name}.log").read_text()
