"""The ceiling: a bare paho subscriber that only decodes JSON (ceilings.md's method).

    python bench/bare_subscriber.py PORT COUNT

Persistent session, QoS 1 subscription to every cabinet's topics. Prints ``READY`` once
subscribed, then ``DONE count=… last=<epoch s>`` when COUNT messages arrived (or 15 s after
the last one), and exits.
"""

from __future__ import annotations

import json
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main() -> int:
    port, expected = int(sys.argv[1]), int(sys.argv[2])
    state = {"count": 0, "bad": 0, "last": 0.0}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=False)

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        c.subscribe("ladewache/v1/+/+/+", qos=1)

    def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: object, p: object) -> None:
        print("READY", flush=True)

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        try:
            json.loads(message.payload)
        except ValueError:
            state["bad"] += 1
        state["count"] += 1
        state["last"] = time.time()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=120)
    idle_since = time.monotonic()
    seen = 0
    # Idle time counts only once messages flow: the benchmark holds this process (SIGSTOP).
    while state["count"] < expected and (seen == 0 or time.monotonic() - idle_since < 15):
        client.loop(timeout=0.1)
        if state["count"] != seen:
            seen, idle_since = state["count"], time.monotonic()
    print(f"DONE count={state['count']} bad={state['bad']} last={state['last']:.6f}", flush=True)
    client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
