"""One collector-like member of a shared subscription group (or a session adopter).

Writes one line per received message to --out ("<seq> <dup> <retain> <topic>"), flushed and
fsync'ed, and only then acknowledges it (paho manual_ack), like server/ingest.py.

  --proto 311|5        MQTT 3.1.1 (clean_session=False) or MQTT 5 (clean_start=False)
  --expiry N           MQTT 5 SessionExpiryInterval in CONNECT (omitted if <0)
  --filter F           subscription ("" = do not subscribe: adopt an existing session)
  --ack-delay S        sleep before each ack (makes messages pile up in flight)
  --drain-seconds S    adopter: stay S seconds after the last message, then end the session
  --end-session        at the end: v5 DISCONNECT with SessionExpiryInterval=0;
                       v3.1.1: reconnect with clean_session=True and disconnect
"""
import argparse
import os
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--id", required=True)
ap.add_argument("--user")
ap.add_argument("--password")
ap.add_argument("--proto", choices=["311", "5"], default="311")
ap.add_argument("--expiry", type=int, default=-1)
ap.add_argument("--filter", default="$share/coll/ladewache/v1/+/+/+")
ap.add_argument("--out", required=True)
ap.add_argument("--ack-delay", type=float, default=0.0)
ap.add_argument("--drain-seconds", type=float, default=0.0)
ap.add_argument("--end-session", action="store_true")
ap.add_argument("--also", default="", help="a second (e.g. non-shared) filter to subscribe to")
ap.add_argument("--unsubscribe", default="", help="adopter: UNSUBSCRIBE this filter right after CONNACK")
ap.add_argument("--no-ack", action="store_true", help="never acknowledge (all stay in flight)")
a = ap.parse_args()

out = open(a.out, "a", buffering=1)
last_msg = [time.monotonic()]
count = [0]
subscribed = threading.Event()


def on_connect(client, userdata, flags, rc, props):
    out.write(f"# connack rc={rc} session_present={flags.session_present}\n")
    if a.unsubscribe:
        client.unsubscribe(a.unsubscribe)
    if a.filter:
        if a.also:
            client.subscribe([(a.filter, 1), (a.also, 1)])
        else:
            client.subscribe(a.filter, qos=1)
    elif not a.unsubscribe:
        subscribed.set()


def on_unsubscribe(client, userdata, mid, rcs, props):
    out.write(f"# unsuback {[str(r) for r in rcs]}\n")
    if not a.filter:
        subscribed.set()


def on_subscribe(client, userdata, mid, rcs, props):
    out.write(f"# suback {[str(r) for r in rcs]}\n")
    subscribed.set()


def on_message(client, userdata, m):
    seq = m.payload.decode().split()[0]
    out.write(f"{seq} {int(m.dup)} {int(m.retain)} {m.topic}\n")
    out.flush()
    os.fsync(out.fileno())
    count[0] += 1
    last_msg[0] = time.monotonic()
    if a.no_ack:
        return
    if a.ack_delay:
        time.sleep(a.ack_delay)
    client.ack(m.mid, m.qos)


if a.proto == "5":
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=a.id, protocol=mqtt.MQTTv5,
                    manual_ack=True, reconnect_on_failure=False)
else:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=a.id, protocol=mqtt.MQTTv311,
                    clean_session=False, manual_ack=True, reconnect_on_failure=False)
if a.user:
    c.username_pw_set(a.user, a.password)
c.on_connect = on_connect
c.on_subscribe = on_subscribe
c.on_unsubscribe = on_unsubscribe
c.on_message = on_message

if a.proto == "5":
    props = None
    if a.expiry >= 0:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = a.expiry
    # clean_start must be False explicitly: paho's default MQTT_CLEAN_START_FIRST_ONLY sends
    # clean_start=1 on the first connect and wipes the session.
    c.connect("127.0.0.1", a.port, keepalive=30, clean_start=False, properties=props)
else:
    c.connect("127.0.0.1", a.port, keepalive=30)
c.loop_start()
subscribed.wait(10)
print("READY", flush=True)

if a.drain_seconds <= 0:
    # run until killed
    while True:
        time.sleep(1)

while time.monotonic() - last_msg[0] < a.drain_seconds:
    time.sleep(0.1)
if a.end_session:
    if a.proto == "5":
        dp = Properties(PacketTypes.DISCONNECT)
        dp.SessionExpiryInterval = 0
        c.disconnect(properties=dp)
        c.loop_stop()
    else:
        c.disconnect()
        c.loop_stop()
        c2 = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=a.id, protocol=mqtt.MQTTv311,
                         clean_session=True)
        if a.user:
            c2.username_pw_set(a.user, a.password)
        c2.connect("127.0.0.1", a.port)
        c2.loop_start()
        time.sleep(0.5)
        c2.disconnect()
        c2.loop_stop()
else:
    c.disconnect()
    c.loop_stop()
out.write(f"# end received={count[0]}\n")
out.close()
print("DONE", count[0], flush=True)
