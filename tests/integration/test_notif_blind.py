"""A real collector whose only broker dies tells its teams that it monitors nothing, and tells them
again when the broker is back (server/notify/blind.py; [notify] blind_after_s cut to 2 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.http_receiver import http_receiver
from tests.support.notify_config import webhook_district
from tests.support.procs import ManagedProcess, console_script
from tests.support.services import start_mosquitto

pytestmark = pytest.mark.integration


def test_a_collector_without_its_broker_says_so_and_says_when_it_hears_again(
        tmp_path: Path) -> None:
    broker = start_mosquitto(tmp_path / "broker")
    with http_receiver() as receiver:
        config = tmp_path / "server.toml"
        config.write_text(f"""
[mqtt]
host = "127.0.0.1"
port = {broker.port}
client_id = "collector-blind"
reconnect_min_s = 0.2
reconnect_max_s = 0.5
[http]
port = 0
auth = false
{webhook_district(receiver.url, [("gs-park", "Grundschule am Park")])}
""".replace("[notify]\n", "[notify]\nblind_after_s = 2\n", 1), encoding="utf-8")
        collector = ManagedProcess("collector", [console_script("cabinet-server"), "run",
                                                 "--config", str(config)])
        try:
            collector.wait_for_line(lambda ln: ln.startswith("READY http="), timeout=30)
            collector.wait_for_line(lambda ln: "subscribed to" in ln, timeout=30)
            broker.process.kill()
            assert receiver.wait_for(1, 30), collector.output()[-3000:]
            broker.restart()
            assert receiver.wait_for(2, 30), collector.output()[-3000:]
        finally:
            collector.stop()
            broker.process.stop()
        blind, back = (request.json() for request in receiver.delivered()[:2])
    assert (blind["kind"], blind["status"], back["status"]) == ("blind", "blind", "back")
    assert back["since"] == blind["since"] and back["back"] > blind["since"]
    assert len(receiver.delivered()) == 2  # once each
