"""Home Assistant MQTT discovery (optional): a school's caretaker sees the cabinet in HA.

On every connect the agent publishes retained discovery configs under ``homeassistant/…``; Home
Assistant then reads the cabinet's own retained ``state`` and ``status`` topics — nothing else is
published for it. Topics use HA's node level, ``homeassistant/<component>/<node>/<object>/config``,
so one broker ACL line covers a cabinet: ``topic write homeassistant/+/ladewache_<site>_<cabinet>/#``
(docs/deploy.md). Pure: builds (topic, payload) pairs, the agent publishes them.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from .common.protocol import Channel, topic_for

__all__ = ["HomeAssistantSection", "discovery_messages", "node_id"]


class HomeAssistantSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=False, description="publish Home Assistant MQTT discovery configs")
    prefix: str = Field(default="homeassistant", pattern=r"^[a-z0-9_]+$",
                        description="Home Assistant's discovery prefix")


def node_id(site: str, cabinet: str) -> str:
    """HA's node id of a cabinet; the broker ACL grants the cabinet ``homeassistant/+/<node>/#``."""
    return f"ladewache_{site}_{cabinet}".replace("-", "_")


def discovery_messages(site: str, cabinet: str, slots: int, agent_version: str,
                       prefix: str = "homeassistant") -> list[tuple[str, bytes]]:
    """Retained discovery configs: one sensor per slot, the door, mains and temperature."""
    node = node_id(site, cabinet)
    state_topic = topic_for(site, cabinet, Channel.STATE)
    device = {"identifiers": [node], "name": f"Ladeschrank {cabinet} ({site})",
              "manufacturer": "Ladewache", "model": "cabinet agent", "sw_version": agent_version}
    availability = {"topic": topic_for(site, cabinet, Channel.STATUS),
                    "value_template": "{{ value_json.status }}",
                    "payload_available": "online", "payload_not_available": "offline"}

    def config(component: str, object_id: str, name: str, template: str,
               **extra: object) -> tuple[str, bytes]:
        payload = {"name": name, "unique_id": f"{node}_{object_id}", "object_id": f"{node}_{object_id}",
                   "state_topic": state_topic, "value_template": template, "device": device,
                   "availability": [availability], **extra}
        return (f"{prefix}/{component}/{node}/{object_id}/config",
                json.dumps(payload, separators=(",", ":")).encode())

    messages = []
    for slot in range(1, slots + 1):
        label = f"Fach {slot}"
        messages.append(config(
            "sensor", f"slot{slot}", label,
            f"{{{{ (value_json.slots | selectattr('slot', 'eq', {slot}) | first).state }}}}",
            icon="mdi:tablet"))
    messages.append(config("binary_sensor", "door", "Tür",
                           "{{ 'ON' if value_json.door == 'open' else 'OFF' }}", device_class="door"))
    messages.append(config("binary_sensor", "mains", "Netzspannung",
                           "{{ 'ON' if value_json.mains == 'on' else 'OFF' }}", device_class="power"))
    messages.append(config("sensor", "temperature", "Temperatur",
                           "{{ value_json.temperature_c }}", device_class="temperature",
                           unit_of_measurement="°C", state_class="measurement"))
    return messages
