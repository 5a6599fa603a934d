"""Instructions per message of the ingest path's parts: what other work on the machine cannot move.

    .venv/bin/python bench/ingest_instructions.py               # ~5 min; needs valgrind and gcc
    .venv/bin/python bench/ingest_instructions.py --parts decode fleet

Each part runs in its own process under callgrind (valgrind), with instrumentation switched on
only around the measured loop (a tiny C helper, compiled on the fly, issues callgrind's client
requests) and every thread counted: 1,000 telemetry messages of ``ingest_ceiling.py``'s mix, after
2,000 messages that make every cabinet known. Everything is driven through public interfaces: the
fleet with the history observer, ``InfluxSink`` with its journal and a batch writer that only joins
the lines. ``paho`` receives the same messages from a Mosquitto started here (``on_message``
empty); ``json+store-lines`` is what the storing ceiling (``bare_subscriber.py --store``) does per
message besides paho's part and the HTTP request.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fleet_support import ROOT, Services

PARTS = ("paho", "json", "json+store-lines", "decode", "lines", "typed-lines", "integrity", "boundary",
         "fleet", "fleet+history", "pipeline")
_HELPER = """#include <valgrind/callgrind.h>
void on(void) { CALLGRIND_START_INSTRUMENTATION; }
void off(void) { CALLGRIND_DUMP_STATS; CALLGRIND_STOP_INSTRUMENTATION; }
"""


def _messages(count: int) -> list[tuple[str, bytes, int]]:
    from ingest_ceiling import _stream

    from simulators.fleet_messages import iso_ts
    return [(t.topic, t.render(c.next_seq(), iso_ts(time.time())), t.qos)
            for c, t in _stream(2000 + 3 * count)]


def _measure(part: str, count: int, helper: ctypes.CDLL, port: int) -> None:
    """One part, in this process (run under callgrind by ``main``)."""
    import json

    from bare_subscriber import _lines

    from cabinet_agent.common.protocol import decode
    from server.boundary import Boundary
    from server.config import TsdbSettings
    from server.fleet import Fleet
    from server.history import HistoryRecorder
    from server.ingest import ACK_GROUP
    from server.integrity import Integrity
    from server.pipeline import Pipeline
    from server.store.engine import open_store
    from server.tsdb.influx import InfluxSink
    from server.tsdb.lines import message_lines, typed_lines
    from server.tsdb.spill import Journal

    everything = _messages(count)
    warm = everything[:2000]
    raw = [m for m in everything[2000:] if m[0].endswith("/telemetry")][:count]
    tmp = Path(tempfile.mkdtemp(prefix="ladewache-instructions-"))
    now = datetime.now(UTC)
    history = HistoryRecorder(open_store(tmp / "state.sqlite"), lambda: now)
    fleet = Fleet(observer=history.see if part in ("fleet+history", "pipeline") else None)
    sink = InfluxSink(TsdbSettings(url="http://127.0.0.1:1"), lambda batch: "\n".join(batch).encode(),
                      journal=Journal(tmp / "journal"))
    pipeline, integrity, boundary = Pipeline(fleet, sink), Integrity(), Boundary()
    for topic, payload, _ in warm:
        pipeline.handle(topic, payload)
    history.flush()
    sink.flush(60)
    if part == "integrity":  # every cabinet known to it, as to the pipeline's
        for topic, payload, _ in warm:
            integrity.observe(decode(topic, payload), now)
    # only where needed: objects kept alive cost every part their share of garbage collection
    decoded = [decode(topic, payload) for topic, payload, _ in raw] \
        if part not in ("paho", "json", "json+store-lines", "decode", "pipeline") else []
    slots = [fleet.get(m.site, m.cabinet).slots for m in decoded]  # type: ignore[union-attr]
    client = None
    if part == "paho":
        client = _paho_backlog(port, raw)
    received = [0]
    helper.on()
    if part == "paho":
        assert client is not None
        while received[0] < len(raw):
            client.loop(1.0)
            received[0] = client.user_data_get()["n"]  # type: ignore[index]
    elif part == "json":
        for _, payload, _ in raw:
            json.loads(payload)
    elif part == "json+store-lines":
        buffer: list[str] = []
        for _, payload, _ in raw:
            buffer += _lines(json.loads(payload))
            if len(buffer) >= 5000:
                "\n".join(buffer).encode()
                buffer = []
    elif part == "decode":
        for topic, payload, _ in raw:
            decode(topic, payload)
    elif part == "lines":
        for message, own in zip(decoded, slots, strict=True):
            message_lines(message, {s.slot: s.asset_tag for s in own if s.asset_tag}, now)
    elif part == "typed-lines":
        typed_lines([(message, own, now) for message, own in zip(decoded, slots, strict=True)])
    elif part == "integrity":
        for message in decoded:
            integrity.observe(message, now)
    elif part == "boundary":
        for message in decoded:
            boundary.check_counts(message, 64)
            boundary.normalise(message, message.ts, now)
    elif part in ("fleet", "fleet+history"):
        for message in decoded:
            fleet.apply(message, now)
    elif part == "pipeline":
        unsettled = 0
        for topic, payload, qos in raw:
            pipeline.handle(topic, payload)
            unsettled += qos
            if unsettled >= ACK_GROUP:  # as the collector settles before its acknowledgements
                pipeline.settle()
                unsettled = 0
        sink.flush(600)
    helper.off()
    sink.close(5)


def _paho_backlog(port: int, raw: list[tuple[str, bytes, int]]) -> object:
    """A subscribed paho client with ``raw`` waiting for it in the broker (as the drain's)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    def on_message(c: mqtt.Client, userdata: dict[str, int], message: mqtt.MQTTMessage) -> None:
        userdata["n"] += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="instructions", userdata={"n": 0})
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=600)
    client.subscribe("ladewache/v1/+/+/+", qos=1)
    for _ in range(20):
        client.loop(0.05)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="instructions-publisher")
    publisher.max_inflight_messages_set(100)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    for topic, payload, qos in raw:
        publisher.publish(topic, payload, qos)
    publisher.publish("bench/end", b"", qos=1).wait_for_publish(60)
    publisher.disconnect()
    publisher.loop_stop()
    return client


def _run(part: str, count: int, helper: Path, port: int, out: Path) -> int:
    """Instructions of one part (all threads), from callgrind's dump."""
    dump = out / f"callgrind.{part}"
    subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={dump}",
                    sys.executable, __file__, "--worker", part, "--messages", str(count),
                    "--helper", str(helper), "--port", str(port)],
                   check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    totals = [int(line.split()[1]) for path in out.glob(f"callgrind.{part}*")
              for line in path.read_text().splitlines() if line.startswith("totals:")]
    return max(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--worker", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--helper", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _measure(args.worker, args.messages, ctypes.CDLL(args.helper), args.port)
        return 0
    with tempfile.TemporaryDirectory(prefix="ladewache-instructions-") as tmp, \
            Services("ladewache-instructions-") as services:
        out = Path(tmp)
        (out / "helper.c").write_text(_HELPER, encoding="ascii")
        helper = out / "helper.so"
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(helper), str(out / "helper.c")],
                       check=True)
        print(f"instructions per telemetry message ({args.messages} messages, callgrind, all threads):")
        for part in args.parts:
            total = _run(part, args.messages, helper, services.broker_port, out)
            print(f"  {part:16s} {total / args.messages / 1000:8.1f} k", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    raise SystemExit(main())
