"""Experiments for issue 19: Mosquitto 2.0.11 shared subscriptions, SIGKILL of a member,
session expiry, session adoption, retained messages. Real processes: /usr/sbin/mosquitto,
member.py and publisher.py as subprocesses. Run:
    /work/main/.venv/bin/python /tmp/issue19/exp.py [scenario ...]
Results go to /tmp/issue19/run/<scenario>/ (broker log, member outputs) and results.json."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/work/main/.venv/bin/python"
RUN = os.path.join(HERE, "run")
N = 1000
SHARE = "$share/coll/ladewache/v1/+/+/+"
RESULTS = {}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Broker:
    def __init__(self, d, extra="", port=None):
        self.d = d
        self.port = port or free_port()
        self.conf = os.path.join(d, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(f"""listener {self.port} 127.0.0.1
user root
persistence true
persistence_location {d}/
persistence_file mosquitto.db
autosave_interval 1
log_dest file {d}/broker.log
log_type error
log_type warning
log_type notice
log_type information
log_type subscribe
log_type debug
log_timestamp_format %H:%M:%S
connection_messages true
max_inflight_messages 20
max_queued_messages 2000000
max_queued_bytes 1073741824
queue_qos0_messages false
{extra or "allow_anonymous true"}
""")
        self.start()

    def start(self):
        self.p = subprocess.Popen(["/usr/sbin/mosquitto", "-c", self.conf],
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.d, "broker.stderr"), "a"))
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not start")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)  # saves the persistence file
        self.p.wait(10)


def member(b, d, name, client_id, *args):
    out = os.path.join(d, name + ".txt")
    p = subprocess.Popen([PY, os.path.join(HERE, "member.py"), "--port", str(b.port), "--id", client_id,
                          "--out", out, *args], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("READY"), line
    p.out = out
    return p


def finish(p, timeout=60):
    """Wait for an adopter (drain mode) to end; return its stdout tail."""
    o, _ = p.communicate(timeout=timeout)
    return o.strip()


def read(out):
    msgs, notes = [], []
    if not os.path.exists(out):
        return msgs, notes
    for line in open(out):
        if line.startswith("#"):
            notes.append(line.strip())
        elif line.strip():
            seq, dup, ret, topic = line.split()
            msgs.append((int(seq), int(dup), int(ret), topic))
    return msgs, notes


def count_lines(out):
    try:
        return sum(1 for l in open(out) if l[:1].isdigit())
    except FileNotFoundError:
        return 0


def publish(b, n=N, start=0, rate=0, cid="pub", bg=False, retained=False, cabinets=10, kind="event"):
    args = [PY, os.path.join(HERE, "publisher.py"), "--port", str(b.port), "--n", str(n),
            "--start", str(start), "--rate", str(rate), "--id", cid, "--cabinets", str(cabinets), "--kind", kind]
    if retained:
        args.append("--retained-states")
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    if bg:
        return p
    o, _ = p.communicate(60)
    return int(o.split()[1])


def pubacked(p):
    o, _ = p.communicate(60)
    return int(o.split()[1])


def kill9(p):
    os.kill(p.pid, signal.SIGKILL)
    p.wait()


def stop_member(p):
    p.terminate()
    p.wait()


def setup(name):
    d = os.path.join(RUN, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def seqs(msgs, lo=0, hi=N):
    return [m[0] for m in msgs if lo <= m[0] < hi and not m[2]]


def rr(b, d):
    """1. Distribution among two live members; then among one live and one killed member."""
    A = member(b, d, "A", "collA", "--proto", "5", "--expiry", "3600")
    B = member(b, d, "B", "collB", "--proto", "5", "--expiry", "3600")
    acked = publish(b, cabinets=7)
    time.sleep(1)
    a, _ = read(A.out)
    bb, _ = read(B.out)
    owner = {}
    for s in seqs(a):
        owner[s] = "A"
    for s in seqs(bb):
        owner[s] = "B"
    alternations = sum(1 for i in range(1, N) if owner.get(i) and owner.get(i - 1) and owner[i] != owner[i - 1])
    # per cabinet: which members saw cabinet 0's messages
    cab0 = {owner.get(s) for s in range(0, N, 7)}
    stop_member(A)
    stop_member(B)
    return {"pubacked": acked, "A": len(seqs(a)), "B": len(seqs(bb)),
            "alternations_of_999": alternations, "first_20_owners": "".join(owner.get(i, "?") for i in range(20)),
            "members_seeing_cabinet0": sorted(x for x in cab0 if x)}


def log_after_death(d, dead="collA", live="collB"):
    """From the broker log: publishes received after the broker noticed the dead member's
    connection loss, and how many of them it sent on to the live member."""
    lines = open(os.path.join(d, "broker.log")).read().splitlines()
    idx = next((i for i, l in enumerate(lines) if f"Client {dead} closed its connection" in l), None)
    if idx is None:
        return {}
    pub = sent_live = sent_dead = 0
    for l in lines[idx + 1:]:
        if "New client connected" in l and f" as {dead} " in l:
            break  # adoption starts
        if "Received PUBLISH from pub " in l:
            pub += 1
        elif f"Sending PUBLISH to {live} (d0" in l:
            sent_live += 1
    # first-publication sends to the dead member before the broker noticed
    before = lines[:idx]
    acked = sum(1 for l in before if f"Received PUBACK from {dead}" in l)
    sent = sum(1 for l in before if f"Sending PUBLISH to {dead} (d0" in l)
    return {"published_after_broker_saw_death": pub, "of_those_sent_to_live_member": sent_live,
            "unacked_sent_to_dead_member_at_death": sent - acked}


def kill_scenario(b, d, proto, expiry, adopt_after, kill_at=150, ack_delay="0", unsubscribe_first=False):
    """Two members; SIGKILL A once it has written kill_at messages while 1000 are published at
    500/s; then (optionally, adopt_after s after the kill) adopt A's session from a third process
    C with A's client id, no SUBSCRIBE (optionally UNSUBSCRIBE first), drain, end the session.
    While C is connected, publish 100 more (seq 10000..10099) to see whether C gets any."""
    pargs = ["--proto", proto] + (["--expiry", str(expiry)] if proto == "5" else [])
    A = member(b, d, "A", "collA", *pargs, "--ack-delay", ack_delay)
    B = member(b, d, "B", "collB", *pargs)
    pub = publish(b, rate=500, bg=True)
    while count_lines(A.out) < kill_at:
        time.sleep(0.002)
    kill9(A)
    t_kill = time.monotonic()
    acked = pubacked(pub)
    time.sleep(1.0)
    a, _ = read(A.out)
    bb, _ = read(B.out)
    res = {"pubacked": acked, "A_written_before_kill": len(seqs(a)), "B_received": len(seqs(bb))}
    c = []
    if adopt_after is not None:
        wait = adopt_after - (time.monotonic() - t_kill)
        if wait > 0:
            time.sleep(wait)
        res["adopt_after_s"] = round(time.monotonic() - t_kill, 1)
        cargs = ["--proto", proto, "--filter", ""]
        if proto == "5":
            cargs += ["--expiry", "60"]
        if unsubscribe_first:
            cargs += ["--unsubscribe", SHARE]
        C = member(b, d, "C", "collA", *cargs, "--drain-seconds", "3", "--end-session")
        # wait for the adopter's backlog to drain, then publish more while it is connected
        prev = -1
        while count_lines(C.out) != prev:
            prev = count_lines(C.out)
            time.sleep(1.0)
        res["second_batch_pubacked"] = publish(b, n=100, start=10000, cid="pub2")
        res["C_done"] = finish(C)
        c, cn = read(C.out)
        res["C_notes"] = cn
        res["C_received_first_batch"] = len(seqs(c))
        res["C_first_batch_with_dup_flag"] = sum(1 for m in c if m[0] < N and m[1])
        res["C_of_second_batch"] = len(seqs(c, 10000, 10100))
        time.sleep(0.5)
        bb, _ = read(B.out)
        res["B_of_second_batch"] = len(seqs(bb, 10000, 10100))
        # is the session really gone? connect once more with A's id, clean start false
        D = member(b, d, "D", "collA", *cargs[:4], "--drain-seconds", "1")
        finish(D)
        dm, dn = read(D.out)
        res["D_after_end_notes"] = dn
        res["D_received"] = len(dm)
    all_a, all_b, all_c = set(seqs(a)), set(seqs(bb)), set(seqs(c))
    union = all_a | all_b | all_c
    res["first_batch_never_delivered_to_a_live_process"] = N - len(union)
    res["missing_sample"] = sorted(set(range(N)) - union)[:6]
    res["dup_A_and_C"] = len(all_a & all_c)
    res["dup_A_and_B"] = len(all_a & all_b)
    res["log"] = log_after_death(d)
    stop_member(B)
    return res


def retained(b, d):
    """5. Retained state messages and $share subscriptions."""
    publish(b, retained=True)
    res = {}
    # two members of the same group, subscribed one after the other, both connected
    S1 = member(b, d, "S1", "ret-S1", "--proto", "5", "--expiry", "0")
    time.sleep(0.5)
    S2 = member(b, d, "S2", "ret-S2", "--proto", "5", "--expiry", "0")
    S3 = member(b, d, "S3", "ret-S3", "--proto", "311")
    time.sleep(0.5)
    for p in (S1, S2, S3):
        m, _ = read(p.out)
        res[f"{os.path.basename(p.out)[:-4]} $share member: retained received on subscribe"] = len(m)
    stop_member(S1); stop_member(S2); stop_member(S3)
    N5 = member(b, d, "N5", "ret-N5", "--proto", "5", "--expiry", "0", "--filter", "ladewache/v1/+/+/state")
    time.sleep(0.5)
    stop_member(N5)
    res["non-shared ladewache/v1/+/+/state: retained received"] = len(read(N5.out)[0])
    # S3 (3.1.1, persistent) reconnects and re-subscribes as the collector does: retained again?
    S3b = member(b, d, "S3b", "ret-S3", "--proto", "311")
    time.sleep(0.5)
    stop_member(S3b)
    res["S3 reconnect+resubscribe (3.1.1, session present): retained received again"] = len(read(S3b.out)[0])
    return res


def overlap(b, d):
    """X: $share/coll/ladewache/v1/+/+/+ AND non-shared ladewache/v1/+/+/state in one session;
    Y: the shared one only. 100 live (non-retained) state messages: who gets what?"""
    res = {}
    for proto in ("5", "311"):
        extra = ["--expiry", "0"] if proto == "5" else []
        X = member(b, d, "X" + proto, "ov-X" + proto, "--proto", proto, *extra, "--also", "ladewache/v1/+/+/state")
        Y = member(b, d, "Y" + proto, "ov-Y" + proto, "--proto", proto, *extra)
        publish(b, n=100, start=20000, kind="state", cid="pub-" + proto)
        time.sleep(0.5)
        x, _ = read(X.out)
        y, _ = read(Y.out)
        sx, sy = [m[0] for m in x], [m[0] for m in y]
        res["MQTT " + proto] = {"X_deliveries": len(sx), "X_distinct": len(set(sx)), "Y_deliveries": len(sy),
                                "seen_by_both": len(set(sx) & set(sy)),
                                "missing": 100 - len(set(sx) | set(sy))}
        stop_member(X); stop_member(Y)
    return res


def restart(b, d):
    """Broker restart: are a dead member's shared subscription and queued messages kept?"""
    A = member(b, d, "A", "collA", "--proto", "5", "--expiry", "3600")
    B = member(b, d, "B", "collB", "--proto", "5", "--expiry", "3600")
    kill9(A)
    time.sleep(0.3)
    res = {"pubacked_before_restart": publish(b)}
    time.sleep(1)
    bb, _ = read(B.out)
    res["B_before_restart"] = len(seqs(bb))
    kill9(B)
    b.stop()
    b.start()
    B2 = member(b, d, "B2", "collB", "--proto", "5", "--expiry", "3600")  # resubscribes
    res["pubacked_after_restart"] = publish(b, n=100, start=10000, cid="pub2")
    time.sleep(1)
    b2, n2 = read(B2.out)
    res["B2_notes"] = n2[:2]
    res["B2_after_restart_second_batch"] = len(seqs(b2, 10000, 10100))
    res["B2_after_restart_first_batch"] = len(seqs(b2))
    C = member(b, d, "C", "collA", "--proto", "5", "--expiry", "60", "--filter", "", "--drain-seconds", "2",
               "--end-session")
    finish(C)
    c, cn = read(C.out)
    res["C_notes"] = cn
    res["C_first_batch"] = len(seqs(c))
    res["C_second_batch"] = len(seqs(c, 10000, 10100))
    res["lost_first_batch"] = N - len(set(seqs(bb)) | set(seqs(c)))
    stop_member(B2)
    return res


def username(b, d):
    """use_username_as_clientid: adopting needs the dead member's login."""
    res = {}
    A = member(b, d, "A", "ignored-1", "--proto", "5", "--expiry", "3600", "--user", "coll1", "--password", "pw")
    B = member(b, d, "B", "ignored-2", "--proto", "5", "--expiry", "3600", "--user", "coll2", "--password", "pw")
    kill9(A)
    time.sleep(0.3)
    res["pubacked"] = publish_auth(b)
    time.sleep(1)
    bb, _ = read(B.out)
    res["B_received"] = len(seqs(bb))
    # adopter sends client id "coll1" but logs in as coll3: gets coll3's (new) session, not coll1's
    X = member(b, d, "X", "coll1", "--proto", "5", "--expiry", "60", "--filter", "", "--drain-seconds", "2",
               "--user", "coll3", "--password", "pw")
    finish(X)
    x, xn = read(X.out)
    res["X_as_coll3_with_id_coll1"] = {"notes": xn, "received": len(x)}
    C = member(b, d, "C", "whatever", "--proto", "5", "--expiry", "60", "--filter", "", "--drain-seconds", "2",
               "--end-session", "--user", "coll1", "--password", "pw")
    finish(C)
    c, cn = read(C.out)
    res["C_as_coll1"] = {"notes": cn, "received": len(seqs(c))}
    res["lost"] = N - len(set(seqs(bb)) | set(seqs(c)) | set(seqs(read(A.out)[0])))
    stop_member(B)
    return res


def publish_auth(b):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv311)
    c.username_pw_set("pub", "pw")
    c.max_inflight_messages_set(100)
    c.connect("127.0.0.1", b.port)
    c.loop_start()
    infos = [c.publish(f"ladewache/v1/site1/cab{i % 10}/event", f"{i} event", qos=1) for i in range(N)]
    for i in infos:
        i.wait_for_publish(30)
    c.disconnect()
    c.loop_stop()
    return sum(1 for i in infos if i.is_published())


SCENARIOS = {
    "rr": lambda b, d: rr(b, d),
    # A fast (acks at once), killed after 150 messages, nobody adopts its session
    "kill311_keep": lambda b, d: kill_scenario(b, d, "311", None, adopt_after=None),
    # A slow (10 ms per ack: a backlog in flight), killed after 60; C adopts (v3.1.1)
    "kill311_adopt": lambda b, d: kill_scenario(b, d, "311", None, adopt_after=0.5, kill_at=60, ack_delay="0.01"),
    # MQTT 5, session expiry 0: the session ends with the TCP connection
    "kill5_exp0": lambda b, d: kill_scenario(b, d, "5", 0, adopt_after=0.5, kill_at=60, ack_delay="0.01"),
    # MQTT 5, expiry 5 s: adopted after 8 s (expired) and within 0.5 s
    "kill5_exp5_late": lambda b, d: kill_scenario(b, d, "5", 5, adopt_after=8, kill_at=60, ack_delay="0.01"),
    "kill5_exp5_early": lambda b, d: kill_scenario(b, d, "5", 5, adopt_after=0.5, kill_at=60, ack_delay="0.01"),
    # MQTT 5, expiry 3600, A fast; adopter keeps the shared subscription (gets new messages)
    "kill5_adopt": lambda b, d: kill_scenario(b, d, "5", 3600, adopt_after=0.5),
    # same, adopter UNSUBSCRIBEs first, drains, DISCONNECTs with expiry 0
    "kill5_adopt_unsub": lambda b, d: kill_scenario(b, d, "5", 3600, adopt_after=0.5, unsubscribe_first=True),
    "retained": retained,
    "overlap": overlap,
    "restart": restart,
    "username": username,
}


def main():
    names = sys.argv[1:] or list(SCENARIOS)
    path = os.path.join(RUN, "results.json")
    if os.path.exists(path):
        RESULTS.update(json.load(open(path)))
    for name in names:
        d = setup(name)
        extra = ""
        if name == "username":
            pw = os.path.join(d, "passwd")
            for i, u in enumerate(["coll1", "coll2", "coll3", "pub"]):
                subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) + [pw, u, "pw"], check=True)
            os.chmod(pw, 0o644)
            extra = f"allow_anonymous false\npassword_file {pw}\nuse_username_as_clientid true\n"
        b = Broker(d, extra)
        try:
            r = SCENARIOS[name](b, d)
        finally:
            b.stop()
        RESULTS[name] = r
        print(name, json.dumps(r, indent=1), flush=True)
        json.dump(RESULTS, open(path, "w"), indent=1)


if __name__ == "__main__":
    main()
