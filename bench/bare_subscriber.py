"""The ceiling: a bare paho subscriber that only decodes JSON (ceilings.md's method).

    python bench/bare_subscriber.py PORT COUNT [--store TSDB_URL]

Persistent session, QoS 1 subscription to every cabinet's topics. Prints ``READY`` once
subscribed, then ``DONE count=… last=<epoch s>`` when COUNT messages arrived (or 15 s after
the last one), and exits.

``--store``: the *storing* ceiling — also write what a collector must write, one line per slot
and one per cabinet of every telemetry and state message (measurements ``bare_slot`` and
``bare_cabinet``), built with the cheapest f-strings and no validation, in batches of 5,000
lines with influxdb-client's SYNCHRONOUS API as one string (ceilings.md's fastest style), from a
writer thread so that decoding goes on while the TSDB ingests (at most two batches queued).
``last`` is then when the final batch was written.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

_CODES = {"empty": 0, "charging": 1, "charged": 2, "present_idle": 3, "fault": 4, "unknown": 5}


def _lines(raw: dict) -> list[str]:
    """The points of one telemetry or state message, as cheaply as Python builds them."""
    kind = raw.get("type")
    if kind not in ("telemetry", "state"):
        return []
    tags = f"site={raw['site']},cabinet={raw['cabinet']}"
    ts = int(datetime.fromisoformat(raw["ts"]).timestamp() * 1e9)
    if kind == "telemetry":
        slots = zip(range(1, len(raw["states"]) + 1), raw["states"], raw["power_w"], strict=False)
    else:
        slots = ((s["slot"], s["state"], s["power_w"]) for s in raw["slots"])
    out = [f"bare_slot,{tags},slot={n} power_w={p},state={_CODES[st]}i {ts}" if p is not None
           else f"bare_slot,{tags},slot={n} state={_CODES[st]}i {ts}" for n, st, p in slots]
    faulty = sum(1 for d in raw["devices"] if not d["ok"])
    out.append(f"bare_cabinet,{tags} devices_faulty={faulty}i {ts}")
    return out


def main() -> int:
    port, expected = int(sys.argv[1]), int(sys.argv[2])
    store_url = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--store" else None
    state = {"count": 0, "bad": 0, "last": 0.0}
    buffer: list[str] = []
    write = None
    if store_url is not None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        api = InfluxDBClient(url=store_url, token="-", org="-").write_api(write_options=SYNCHRONOUS)
        batches: queue.Queue[str | None] = queue.Queue(maxsize=2)

        def writer() -> None:
            while (text := batches.get()) is not None:
                api.write(bucket="-", org="-", record=text)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()

        def write(batch: list[str]) -> None:
            batches.put("\n".join(batch))

    name = "bench-bare-store" if store_url else "bench-bare"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        c.subscribe("ladewache/v1/+/+/+", qos=1)

    def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: object, p: object) -> None:
        print("READY", flush=True)

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        try:
            raw = json.loads(message.payload)
            if write is not None:
                buffer.extend(_lines(raw))
                if len(buffer) >= 5000:
                    write(buffer)
                    buffer.clear()
        except (ValueError, KeyError, TypeError):
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
    if write is not None:
        if buffer:
            write(buffer)
        batches.put(None)
        thread.join()
        state["last"] = time.time()
    print(f"DONE count={state['count']} bad={state['bad']} last={state['last']:.6f}", flush=True)
    client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
