#!/bin/bash
# Does max_inflight_messages 20 bound what Mosquitto sends to a subscriber that never acknowledges?
# (member.py --no-ack). Prints how many of 100 QoS 1 messages each subscriber received.
set -u
D=/tmp/issue19/run/inflight; mkdir -p $D; PORT=47999; PY=/work/main/.venv/bin/python
printf 'listener %s 127.0.0.1\nuser root\nallow_anonymous true\nmax_inflight_messages 20\n' $PORT > $D/m.conf
/usr/sbin/mosquitto -c $D/m.conf > $D/log 2>&1 & BP=$!; sleep 0.5
for kind in shared nonshared; do for proto in 311 5; do
  F='$share/coll/ladewache/v1/+/+/+'; [ $kind = nonshared ] && F='ladewache/v1/+/+/+'
  rm -f $D/$kind$proto.txt
  $PY member.py --port $PORT --id $kind$proto --proto $proto --expiry 0 --filter "$F" --out $D/$kind$proto.txt --no-ack >/dev/null & MP=$!
  sleep 1; $PY publisher.py --port $PORT --n 100 >/dev/null; sleep 1; kill $MP; wait $MP 2>/dev/null
  echo "$kind MQTT $proto, never acks: received $(grep -c '^[0-9]' $D/$kind$proto.txt) of 100"
done; done
kill $BP
