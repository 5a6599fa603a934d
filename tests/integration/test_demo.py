"""`make demo` runs `cabinet-sim demo`: it must come up with its organisation and users, show three
cabinets, and stop cleanly."""

from __future__ import annotations

import json
import re
import signal
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from simulators.demo_org import CABINETS, PRESENCE_CABINET, SITE, USERS
from tests.support.procs import ManagedProcess, console_script, wait_until

pytestmark = pytest.mark.integration

USER_LINE = re.compile(r"^ {4}(?P<name>[a-z0-9-]+) / (?P<password>\S+) {2,}\S")


def _login(http: str, name: str, password: str) -> urllib.request.OpenerDirector:
    """Logs in through the login form with a printed password, as a person would."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{http}/login", timeout=5) as response:
        csrf = re.search(r'name="csrf" value="([^"]+)"', response.read().decode()).group(1)  # type: ignore[union-attr]
    form = urllib.parse.urlencode({"name": name, "password": password, "csrf": csrf}).encode()
    opener.open(f"{http}/login", data=form, timeout=5).close()
    return opener


def _get(opener: urllib.request.OpenerDirector, url: str) -> Any:
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())


def test_demo_runs_a_school_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    demo = ManagedProcess("demo", [console_script("cabinet-sim"), "demo", "--workdir", str(tmp_path)])
    try:
        line = demo.wait_for_line(lambda text: text.strip().startswith("server "), timeout=60)
        http = re.search(r"(http://\S+)", line).group(1)  # type: ignore[union-attr]
        demo.wait_for_line(lambda text: text.strip().startswith("simulated time runs"), timeout=10)
        passwords = {m["name"]: m["password"] for ln in demo.lines if (m := USER_LINE.match(ln))}
        assert sorted(passwords) == sorted(u.name for u in USERS), demo.output()

        admin = _login(http, "admin", passwords["admin"])
        cabinets = wait_until(lambda: (c := _get(admin, f"{http}/api/fleet")["cabinets"]) and len(c) == 3
                              and all(x["status"] == "online" and x["slots"] for x in c) and c,
                              30, "three cabinets online")
        assert sorted(c["slot_count"] for c in cabinets) == [8, 16, 32]
        assert {c["cabinet"]: c["model"] for c in cabinets} == {c.id: c.model for c in CABINETS}
        assert any(s["state"] == "charging" for c in cabinets for s in c["slots"])
        # the slots carry the inventory's asset tags (filled once from the organisation config)
        presence = next(c for c in cabinets if c["cabinet"] == PRESENCE_CABINET.id)
        assert [s["asset_tag"] for s in presence["slots"]] == list(PRESENCE_CABINET.asset_tags(16).values())

        overview = _get(admin, f"{http}/api/overview")  # lists the schools that have cabinets
        assert overview["district"] == "Landkreis Musterland"
        schools = {s["site"]: s for m in overview["municipalities"] for s in m["schools"]}
        assert [m["name"] for m in overview["municipalities"]] == ["Gemeinde Musterdorf"]
        assert schools[SITE]["name"] == "Grundschule am Lindenplatz"
        assert sorted(c["name"] for c in schools[SITE]["cabinets"]) == ["Raum 12", "Raum 14", "Raum 21"]
        found = _get(admin, f"{http}/api/search?q=schule")["hits"]  # every school of the organisation
        assert sorted(h["label"] for h in found if h["kind"] == "school") == [
            "Gemeinschaftsschule Neustadt", "Grundschule am Lindenplatz"]  # names, not ids
        assert {h["site"] for h in found if h["kind"] == "school"} == {"gems-neustadt", SITE}

        expected = {  # name: (role, sites it sees, may act)
            "admin": ("admin", None, True),
            "technik-musterdorf": ("technician", [SITE], True),
            "technik-neustadt": ("technician", ["gems-neustadt"], True),
            "sekretariat-lindenplatz": ("viewer", [SITE], False),
        }
        for name, password in passwords.items():
            me = _get(_login(http, name, password), f"{http}/api/me")
            assert (me["role"], me["sites"], me["can_write"]) == expected[name], me
    finally:
        demo.signal(signal.SIGINT)  # what Ctrl-C does
        code = demo.proc.wait(60)
    assert code == 0, demo.output()
    assert "all stopped." in demo.output()
    for name in ("agent-schrank-a", "agent-schrank-b", "agent-schrank-c"):
        assert "stopped by SIGTERM" in (tmp_path / "logs" / f"{name}.log").read_text()
