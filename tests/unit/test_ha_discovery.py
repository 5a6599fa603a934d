"""Home Assistant discovery: configs that HA accepts and that read our own retained topics."""

from __future__ import annotations

import json
import re

from cabinet_agent.common.protocol import StateMessage
from cabinet_agent.config import AgentSettings
from cabinet_agent.ha_discovery import discovery_messages


def test_one_config_per_slot_plus_door_mains_temperature() -> None:
    messages = discovery_messages("gs-park", "k-1", 3, "0.1.0")
    topics = [t for t, _ in messages]
    assert topics[0] == "homeassistant/sensor/ladewache_gs_park_k_1/slot1/config"
    assert len(topics) == 3 + 3 and len(set(topics)) == len(topics)
    # One ACL line covers them all (mosquitto wildcards fill whole levels).
    pattern = r"homeassistant/[a-z_]+/ladewache_gs_park_k_1/[a-z0-9]+/config"
    assert all(re.fullmatch(pattern, t) for t in topics)
    payloads = [json.loads(p) for _, p in messages]
    assert payloads[1]["name"] == "Fach 2"  # no asset tag: the agent carries none
    assert {p["state_topic"] for p in payloads} == {"ladewache/v1/gs-park/k-1/state"}
    assert payloads[0]["availability"][0]["topic"] == "ladewache/v1/gs-park/k-1/status"
    assert len({p["unique_id"] for p in payloads}) == len(payloads)


def test_templates_name_fields_the_state_message_has() -> None:
    fields = StateMessage.model_fields
    for _, payload in discovery_messages("s", "c", 1, "0.1.0"):
        template = json.loads(payload)["value_template"]
        used = set(re.findall(r"value_json\.(\w+)", template))
        assert used <= set(fields), used - set(fields)


def test_off_by_default() -> None:
    cabinet = {"site": "s", "id": "c", "model": "ladewache-8"}
    assert AgentSettings(cabinet=cabinet).home_assistant.enabled is False  # type: ignore[arg-type]
