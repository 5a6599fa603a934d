"""Collector ingest rate into the TSDB against the bare-subscriber ceiling, in one run.

    .venv/bin/python bench/ingest_ceiling.py                  # 60,000 messages
    .venv/bin/python bench/ingest_ceiling.py --messages 30000 --profile

Method (ceilings.md's drain of a backlog, for both sides alike): Mosquitto with unlimited queues
and VictoriaMetrics start on free loopback ports. A bare paho subscriber (``bare_subscriber.py``:
QoS 1, persistent session, ``json.loads`` only) and ``cabinet-server`` (its default config, writing
to VictoriaMetrics) subscribe, and both are frozen with SIGSTOP. One publisher then sends the same
stream to both: protocol messages from 1,000 cabinets of the district mix (90 % telemetry at
QoS 0, 5 % events and 5 % retained states at QoS 1, pre-encoded by ``simulators.fleet_messages``).
The bare subscriber is resumed first and times its drain; then the collector, whose drain ends
when ``/api/stats`` shows every message accepted and its TSDB buffer empty. Loss is counted in
VictoriaMetrics: one ``cabinet_devices_faulty`` sample per telemetry and state message.
``--profile`` adds the CPU per message of the collector's parts in-process on the same messages
(the fastest of 20 rounds each) and a cProfile of ``Pipeline.handle`` with the TSDB writer.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from fleet_support import (
    ROOT,
    Services,
    cpu_seconds,
    get_json,
    load,
    machine,
    pause,
    py_spy,
    resume,
    spy_summary,
    vm_count,
    wait_until,
)
from paho.mqtt.enums import CallbackAPIVersion

from simulators.fleet_messages import CabinetTemplates, MessageTemplate, iso_ts
from simulators.fleet_plan import plan_fleet
from tests.support.procs import ManagedProcess

CABINETS = 1000
SITE_PREFIX = "ing"


def _stream(count: int) -> list[tuple[CabinetTemplates, MessageTemplate]]:
    cabinets = [CabinetTemplates(p) for p in plan_fleet(CABINETS, seed=3, site_prefix=SITE_PREFIX)]
    out = []
    for i in range(count):
        cabinet = cabinets[i % CABINETS]
        kind = (i // CABINETS) % 20
        template = cabinet.events[0] if kind == 0 else cabinet.state if kind == 1 \
            else cabinet.telemetry[i % len(cabinet.telemetry)]
        out.append((cabinet, template))
    return out


def _bare_subscriber(services: Services, name: str, count: int, *extra: str) -> ManagedProcess:
    """``bench/bare_subscriber.py``, subscribed (its ``READY``)."""
    proc = services.process(name, [".venv/bin/python", str(ROOT / "bench/bare_subscriber.py"),
                                   str(services.broker_port), str(count), *extra])
    proc.wait_for_line(lambda line: line == "READY", 20)
    return proc


def _drain(proc: ManagedProcess, vm_pid: int, timeout: float) -> tuple[int, float, float, float]:
    """Resume a frozen bare subscriber and wait for its ``DONE``: (messages, seconds, its CPU
    seconds, VictoriaMetrics' CPU seconds meanwhile). Its CPU is NaN if it exited first."""
    cpu, vm_cpu = cpu_seconds(proc.proc.pid), cpu_seconds(vm_pid)
    started = resume(proc)
    done = proc.wait_for_line(lambda line: line.startswith("DONE"), timeout)
    fields = dict(part.split("=") for part in done.split()[1:])
    vm_cpu = cpu_seconds(vm_pid) - vm_cpu
    cpu = cpu_seconds(proc.proc.pid) - cpu if proc.proc.poll() is None else float("nan")
    return int(fields["count"]), float(fields["last"]) - started, cpu, vm_cpu


def _publish(port: int, stream: list[tuple[CabinetTemplates, MessageTemplate]]) -> float:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.monotonic()
    last: mqtt.MQTTMessageInfo | None = None
    for n, (cabinet, template) in enumerate(stream, 1):
        info = client.publish(template.topic, template.render(cabinet.next_seq(), iso_ts(time.time())),
                              template.qos, template.retain)
        if template.qos:
            last = info
        if n % 5000 == 0 and last is not None:  # an app-level window: paho loses past 65,535
            last.wait_for_publish(60)
    # A last QoS 1 message: once acknowledged, everything before it is in the broker.
    client.publish("bench/end", b"", qos=1).wait_for_publish(60)
    took = time.monotonic() - started
    client.disconnect()
    client.loop_stop()
    return took


def _profile(stream: list[tuple[CabinetTemplates, MessageTemplate]]) -> None:
    """CPU per message of the collector's parts in-process, on the same messages: the fleet with
    its history observer, the TSDB writer with its journal (a batch writer that only joins the
    lines: no HTTP). Each figure is the fastest of 20 rounds of 500 messages, so that other work
    on the machine shows less; then a cProfile of ``Pipeline.handle``."""
    import gc
    import json
    import tempfile
    from pathlib import Path

    from bare_subscriber import _lines

    from cabinet_agent.common.protocol import decode
    from server.config import TsdbSettings
    from server.fleet import Fleet
    from server.history import HistoryRecorder
    from server.ingest import ACK_GROUP
    from server.pipeline import Pipeline
    from server.store.engine import open_store
    from server.tsdb.influx import InfluxSink
    from server.tsdb.lines import typed_lines
    from server.tsdb.spill import Journal

    def fresh() -> list[tuple[str, bytes, int]]:  # new seq numbers: a repeat would count as duplicate
        return [(t.topic, t.render(c.next_seq(), iso_ts(time.time())), t.qos)
                for c, t in stream[:20000] if not t.topic.endswith("/event")]

    def per_message(fn: object, items: list) -> float:  # type: ignore[type-arg]
        best = float("inf")
        for start in range(0, min(len(items), 10_000), 500):
            part = items[start:start + 500]
            gc.collect()
            began = time.process_time()
            for item in part:
                fn(*item)  # type: ignore[operator]
            best = min(best, (time.process_time() - began) / len(part) * 1e6)
        return best

    with tempfile.TemporaryDirectory(prefix="ladewache-profile-") as tmp:
        history = HistoryRecorder(open_store(Path(tmp) / "state.sqlite"), lambda: datetime.now(UTC))
        fleet = Fleet(observer=history.see)
        sink = InfluxSink(TsdbSettings(url="http://127.0.0.1:1"), lambda batch: "\n".join(batch),
                          journal=Journal(Path(tmp) / "journal"))
        pipeline = Pipeline(fleet, sink)
        for topic, payload, _ in fresh()[:2000]:  # every cabinet known, its history started
            pipeline.handle(topic, payload)
        history.flush()

        unsettled = 0

        def handled(topic: str, payload: bytes, qos: int) -> None:
            nonlocal unsettled
            pipeline.handle(topic, payload)
            unsettled += qos
            if unsettled >= ACK_GROUP:  # as the collector does before its acknowledgements
                pipeline.settle()
                unsettled = 0
            if sink.stats().buffered >= 5000:
                sink.flush(30)  # the writer's work in the same round

        decoded = [(decode(t, p), p) for t, p, _ in fresh()]
        raw = [(p,) for _, p in decoded]
        views = [(m, fleet.get(m.site, m.cabinet)) for m, _ in decoded]
        rows = [
            ("json.loads only", per_message(json.loads, raw)),
            ("json.loads + lines (storing ceiling)", per_message(lambda p: _lines(json.loads(p)), raw)),
            ("protocol.decode", per_message(lambda t, p, _q: decode(t, p), fresh())),
            ("TSDB lines of a message (typed_lines)",
             per_message(lambda m, v: typed_lines([(m, v.slots, m.ts)]), views)),
            ("Pipeline.handle + the TSDB writer", per_message(handled, fresh())),
        ]
        print("\nCPU per message in-process, telemetry and state, same messages (µs, fastest round):")
        for name, value in rows:
            print(f"  {name:40s} {value:7.1f}")
        payloads = fresh()
        profiler = cProfile.Profile()
        profiler.enable()
        for topic, payload, qos in payloads:
            handled(topic, payload, qos)
        sink.flush(30)
        profiler.disable()
        sink.close(5)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    print("\ncProfile of Pipeline.handle and the TSDB writer (waiting for the writer thread shows as a "
          "lock's acquire), own time (top 20):")
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--profile", action="store_true", help="also profile Pipeline.handle")
    parser.add_argument("--spy", type=int, default=0, metavar="SECONDS",
                        help="sample the running collector with py-spy for this long")
    args = parser.parse_args()
    n = args.messages
    stream = _stream(n)
    stored = sum(1 for _, t in stream if t.topic.endswith(("/telemetry", "/state")))
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load {load()}")
    with Services("ladewache-ingest-") as services:
        assert services.vm is not None
        bare = _bare_subscriber(services, "bare", n)
        store = _bare_subscriber(services, "bare-store", n, "--store", services.vm.url)
        server, http = services.start_server("collector")
        pause(bare)
        pause(store)
        pause(server)
        took = _publish(services.broker_port, stream)
        print(f"published {n} messages ({stored} telemetry/state) in {took:.1f} s; "
              "all three subscribers frozen")
        vm_pid = services.vm.process.proc.pid
        bare_count, bare_s, bare_cpu, _ = _drain(bare, vm_pid, 120)
        store_count, store_s, store_cpu, store_vm_cpu = _drain(store, vm_pid, 180)
        bare_series = f'bare_cabinet_devices_faulty{{site=~"{SITE_PREFIX}-.*"}}'
        store_vm = vm_count(services.vm, f"sum(count_over_time({bare_series}[1h]))")

        server_cpu, server_vm_cpu = cpu_seconds(server.proc.pid), cpu_seconds(vm_pid)
        spy_out = services.dir / "collector.spy"
        spy = py_spy(server.proc.pid, args.spy, spy_out) if args.spy else None
        t1 = resume(server)
        accepted_at = [0.0]

        def drained() -> bool:
            stats = get_json(f"{http}/api/stats")
            if stats["accepted"] + sum(stats["rejected"].values()) >= n and not accepted_at[0]:
                accepted_at[0] = time.time()
            return bool(accepted_at[0] and stats["tsdb"]["buffered"] == 0)

        wait_until(drained, 180, "collector drained", interval=0.2)
        stored_at = time.time()
        server_cpu = cpu_seconds(server.proc.pid) - server_cpu
        server_vm_cpu = cpu_seconds(vm_pid) - server_vm_cpu
        stats = get_json(f"{http}/api/stats")
        series = f'cabinet_devices_faulty{{site=~"{SITE_PREFIX}-.*"}}'
        in_vm = vm_count(services.vm, f"sum(count_over_time({series}[1h]))")
        ceiling = bare_count / bare_s
        accepted_rate = n / (accepted_at[0] - t1)
        stored_rate = n / (stored_at - t1)
        print("\n| subscriber | messages | drain | rate | ratio to ceiling | CPU per message |")
        print("|---|---|---|---|---|---|")
        print(f"| bare paho + json.loads (ceiling) | {bare_count}/{n} | {bare_s:.2f} s | "
              f"{ceiling:,.0f} msg/s | 1.00x | {bare_cpu / max(bare_count, 1) * 1e6:.0f} µs |")
        store_rate = store_count / store_s
        print(f"| bare paho + json.loads + lines into VictoriaMetrics (storing ceiling) | "
              f"{int(store_vm)}/{stored} samples | {store_s:.2f} s | {store_rate:,.0f} msg/s | "
              f"{store_rate / ceiling:.2f}x | {store_cpu / max(store_count, 1) * 1e6:.0f} µs |")
        print(f"| collector, accepted (decoded, fleet) | {stats['accepted']}/{n} | "
              f"{accepted_at[0] - t1:.2f} s | {accepted_rate:,.0f} msg/s | "
              f"{accepted_rate / ceiling:.2f}x | |")
        print(f"| **collector, stored in VictoriaMetrics** | {int(in_vm)}/{stored} samples | "
              f"{stored_at - t1:.2f} s | {stored_rate:,.0f} msg/s | **{stored_rate / ceiling:.2f}x** | "
              f"{server_cpu / n * 1e6:.0f} µs |")
        print(f"\ncollector against the storing ceiling: {stored_rate / store_rate:.2f}x")
        print(f"VictoriaMetrics CPU per message while it stored them: {store_vm_cpu / n * 1e6:.0f} µs "
              f"(storing ceiling's drain), {server_vm_cpu / n * 1e6:.0f} µs (collector's drain)")
        print(f"load average after: {load()}")
        lost = stored - int(in_vm)
        print(f"\nloss: {lost} of {stored} stored samples; rejected {stats['rejected']}; "
              f"TSDB written {stats['tsdb']['written']} lines, dropped {stats['tsdb']['dropped']}")
        if spy is not None:
            spy.wait(args.spy + 30)
            print("\nThe collector during its drain, " + spy_summary(spy_out))
    if args.profile:
        _profile(stream)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
