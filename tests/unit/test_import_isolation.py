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


def _agent_imports(package: str) -> set[str]:
    """The ``cabinet_agent`` modules that files under ``package`` import (read, not run)."""
    import ast
    from pathlib import Path

    found: set[str] = set()
    root = Path(__file__).resolve().parents[2]
    for path in (root / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.startswith("cabinet_agent"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("cabinet_agent"))
    return found


# What the server takes from the agent beyond the shared layer: the agent's own config and cabinet
# model, to write and check agent configs when provisioning a cabinet (server/provision.py,
# server/cli.py). Everything else both sides need lives in cabinet_agent/common.
PROVISIONING = {"cabinet_agent.config", "cabinet_agent.cabinet_model", "cabinet_agent.ha_discovery",
                "cabinet_agent.thresholds"}


def test_the_server_imports_the_agent_only_through_the_shared_layer() -> None:
    outside = {m for m in _agent_imports("server")
               if not m.startswith("cabinet_agent.common") and m not in PROVISIONING}
    assert outside == set()


def test_the_shared_layer_imports_nothing_of_the_agent_beyond_itself() -> None:
    from pathlib import Path

    common = Path(__file__).resolve().parents[2] / "cabinet_agent" / "common"
    relative_out = [path.name for path in common.glob("*.py")
                    if "from .." in path.read_text(encoding="utf-8")]
    assert relative_out == []
    assert {m for m in _agent_imports("cabinet_agent/common")
            if not m.startswith("cabinet_agent.common")} == set()
