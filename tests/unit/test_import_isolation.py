"""The agent runs on a Raspberry Pi: importing it must not pull in server-side packages."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("server", "influxdb_client", "fastapi", "starlette", "uvicorn", "jinja2", "babel",
             "simulators")


def test_importing_every_agent_module_imports_no_server_code() -> None:
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import cabinet_agent\n"
        "for m in pkgutil.walk_packages(cabinet_agent.__path__, 'cabinet_agent.'):\n"
        "    if m.name != 'cabinet_agent.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    modules = json.loads(out.stdout)
    assert "cabinet_agent.service" in modules  # the walk really imported the agent
    leaked = [m for m in modules if m.split(".")[0] in FORBIDDEN]
    assert leaked == []
