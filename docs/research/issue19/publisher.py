"""Publish --n QoS 1 messages to ladewache/v1/site1/cab<k>/event (k = seq % --cabinets),
payload "<seq>", --start offset, at most --rate per second (0 = as fast as paho goes),
waiting for every PUBACK. Prints the number acknowledged by the broker.
--retained-states: instead publish one retained QoS 1 message per cabinet on .../state."""
import argparse
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--n", type=int, default=1000)
ap.add_argument("--start", type=int, default=0)
ap.add_argument("--cabinets", type=int, default=10)
ap.add_argument("--rate", type=float, default=0)
ap.add_argument("--id", default="pub")
ap.add_argument("--kind", default="event", help="last topic level for the burst")
ap.add_argument("--retained-states", action="store_true")
a = ap.parse_args()

c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=a.id, protocol=mqtt.MQTTv311)
c.max_inflight_messages_set(100)
c.max_queued_messages_set(0)
c.connect("127.0.0.1", a.port)
c.loop_start()
infos = []
if a.retained_states:
    for k in range(a.cabinets):
        infos.append(c.publish(f"ladewache/v1/site1/cab{k}/state", f"{a.start + k} state",
                               qos=1, retain=True))
else:
    t0 = time.monotonic()
    for i in range(a.n):
        seq = a.start + i
        infos.append(c.publish(f"ladewache/v1/site1/cab{seq % a.cabinets}/{a.kind}",
                               f"{seq} event", qos=1))
        if a.rate:
            delay = t0 + (i + 1) / a.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
for inf in infos:
    inf.wait_for_publish(30)
acked = sum(1 for inf in infos if inf.is_published())
c.disconnect()
c.loop_stop()
print("PUBACKED", acked, flush=True)
