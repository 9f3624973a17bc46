"""Offline push (docs/im.md, "Offline push"): an event on $events/push/{user}
when a chat message is queued for a user with no device online (or per
offline device), readable only by the backends of im.push.subscribers (a
shared subscription splits them), and the webhook: batches, bearer,
retries on connection refused / timeout / 5xx, 4xx dropped, the bounded
queue, the counters in /metrics."""
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt
import pytest

import promparse
from conftest import SLOW, free_port, wait_for
import mqttraw as m
from imhelp import im, im_config, im_raw, suback_denied, token
from test_metrics import metrics

pytestmark = pytest.mark.imqtt_only

BACKEND = "pushsvc"


def config(push, hp):
    p = {"subscribers": [BACKEND]}
    p.update(push)
    return im_config(im={"push": p}, http={"port": hp})


def start(broker, push=None, webhook=None):
    hp = free_port()
    push = dict(push or {})
    if webhook is not None:
        push["webhook"] = webhook
    return broker(config(push, hp)), hp


def offline(clients, b, user, device):
    """A persistent device that connects once and goes away."""
    c = im(clients, b, user, device, persistent=True)
    c.disconnect()
    return c


def backend(clients, b, device="w1", topic="$events/push/#"):
    c = im(clients, b, BACKEND, device)
    assert c.subscribe(topic, qos=1) == [1]
    return c


def events(c, n, timeout=5.0):
    return [json.loads(x.payload) for x in c.get_n(n, timeout)]


def value(hp, name, **labels):
    return promparse.value(metrics(hp), name, **labels)


# ---------------------------------------------------------------- the topic

def test_event_when_no_device_online(broker, clients):
    b, hp = start(broker)
    be = backend(clients, b)
    offline(clients, b, "bob", "phone")
    offline(clients, b, "bob", "tablet")
    alice = im(clients, b, "alice", "phone")
    before = int(time.time() * 1000)
    alice.publish("p2p/talk/bob", b"hi bob", qos=1)
    msg = be.get()
    assert msg.topic == "$events/push/bob" and msg.qos == 1
    ev = json.loads(msg.payload)
    # one event for the user, whatever number of devices is offline
    assert ev["user"] == "bob" and "device" not in ev
    assert ev["from"] == "alice@phone" and ev["peer"] == "alice"
    assert ev["topic"] == "p2p/talk/bob"
    assert isinstance(ev["id"], int) and ev["id"] > 0
    assert before - 1000 <= ev["ts"] <= int(time.time() * 1000) + 1000
    assert "payload" not in ev and "payload_b64" not in ev
    be.expect_none(0.5)

    # the id is the one bob's device gets with the message
    bob = im(clients, b, "bob", "phone", persistent=True)
    got = bob.get()
    ups = dict(got.properties.UserProperty)
    assert int(ups["id"]) == ev["id"]
    # a device of bob is online: no event, though the tablet is offline
    alice.publish("p2p/talk/bob", b"again", qos=1)
    assert bob.get().payload == b"again"
    be.expect_none(0.7)
    # QoS 0 is not queued for offline devices: no event either
    bob.disconnect()
    alice.publish("p2p/talk/bob", b"q0", qos=0)
    be.expect_none(0.7)
    # the sender's own offline devices get a sync copy, not an event
    offline(clients, b, "alice", "laptop")
    alice.publish("p2p/talk/carol", b"x", qos=1)
    be.expect_none(0.7)
    assert value(hp, "imqtt_push_events_total") == 1


def test_event_after_restart_before_the_device_is_back(broker, clients, tmp_path):
    """A device loaded from the store has no identity until it reconnects:
    its client id still says whose it is."""
    hp = free_port()
    cfg = config({}, hp)
    cfg["store"] = {"dir": str(tmp_path / "data")}
    b = broker(cfg)
    offline(clients, b, "bob", "phone")
    rc, err = b.stop()
    assert rc == 0, err[-2000:]
    b = broker(cfg)
    be = backend(clients, b)
    alice = im(clients, b, "alice", "phone")
    alice.publish("p2p/talk/bob", b"after restart", qos=1)
    ev = json.loads(be.get().payload)
    assert ev["user"] == "bob" and ev["from"] == "alice@phone"
    be.expect_none(0.5)


def test_online_devices_known_without_presence(broker, clients):
    """With presence off the broker still knows who is online for push."""
    hp = free_port()
    b = broker(im_config(im={"presence": False, "push": {"subscribers": [BACKEND]}},
                         http={"port": hp}))
    be = backend(clients, b)
    offline(clients, b, "bob", "phone")
    bob_pc = im(clients, b, "bob", "pc")
    alice = im(clients, b, "alice", "phone")
    alice.publish("p2p/talk/bob", b"1", qos=1)
    assert bob_pc.get().payload == b"1"
    be.expect_none(0.7)
    bob_pc.disconnect()
    alice.publish("p2p/talk/bob", b"2", qos=1)
    assert json.loads(be.get().payload)["user"] == "bob"


def test_group_events(broker, clients):
    b, hp = start(broker)
    be = backend(clients, b)
    for u in ("bob", "carol"):
        c = im(clients, b, u, "phone", persistent=True, groups=["team"])
        assert c.subscribe("g/talk/team", qos=1) == [1]
        c.disconnect()
    alice = im(clients, b, "alice", "phone", groups=["team"])
    alice.publish("g/talk/team", b"hello team", qos=1)
    evs = sorted(events(be, 2), key=lambda e: e["user"])
    assert [e["user"] for e in evs] == ["bob", "carol"]
    for e in evs:
        assert e["group"] == "team" and e["topic"] == "g/talk/team"
        assert e["from"] == "alice@phone" and "peer" not in e
    assert evs[0]["id"] == evs[1]["id"]
    be.expect_none(0.5)


def test_per_device_mode(broker, clients):
    b, hp = start(broker, {"mode": "device"})
    be = backend(clients, b)
    offline(clients, b, "bob", "phone")
    offline(clients, b, "bob", "tablet")
    im(clients, b, "bob", "pc")  # online: no event for it
    alice = im(clients, b, "alice", "phone")
    alice.publish("p2p/talk/bob", b"hi", qos=1)
    evs = events(be, 2)
    assert sorted(e["device"] for e in evs) == ["phone", "tablet"]
    assert all(e["user"] == "bob" and e["from"] == "alice@phone" for e in evs)
    assert evs[0]["id"] == evs[1]["id"]
    be.expect_none(0.5)
    assert value(hp, "imqtt_push_events_total") == 2


def test_payload_only_when_configured(broker, clients):
    b, hp = start(broker, {"include_payload": True})
    be = backend(clients, b)
    offline(clients, b, "bob", "phone")
    alice = im(clients, b, "alice", "phone")
    alice.publish("p2p/talk/bob", "héllo".encode(), qos=1)
    alice.publish("p2p/talk/bob", b"\xff\x00bin", qos=1)
    e1, e2 = events(be, 2)
    assert e1["payload"] == "héllo" and "payload_b64" not in e1
    assert base64.b64decode(e2["payload_b64"]) == b"\xff\x00bin" and "payload" not in e2


def test_shared_subscription_splits_workers(broker, clients):
    b, hp = start(broker)
    w1 = backend(clients, b, "w1", "$share/workers/$events/push/#")
    w2 = backend(clients, b, "w2", "$share/workers/$events/push/#")
    offline(clients, b, "bob", "phone")
    alice = im(clients, b, "alice", "phone")
    for i in range(20):
        alice.publish("p2p/talk/bob", b"m%d" % i, qos=1)
    got = []
    deadline = time.monotonic() + 5 * SLOW
    while len(got) < 20 and time.monotonic() < deadline:
        for w in (w1, w2):
            try:
                got.append((w, json.loads(w.messages.get(timeout=0.05).payload)))
            except Exception:
                pass
    assert len(got) == 20
    ids = [e["id"] for _, e in got]
    assert len(set(ids)) == 20  # each event to exactly one worker
    n1 = sum(1 for w, _ in got if w is w1)
    assert 0 < n1 < 20, n1
    w1.expect_none(0.3)
    w2.expect_none(0.1)


@pytest.mark.parametrize("version", [5, 4])
def test_others_may_not_read_or_write_events(broker, clients, version):
    b, hp = start(broker)
    be = backend(clients, b)
    offline(clients, b, "bob", "phone")
    eve = im(clients, b, "eve", "phone", version=version)
    for f in ("$events/push/#", "$events/push/bob", "$share/g/$events/push/#",
              "$events/#"):
        assert eve.subscribe(f, qos=1) == [suback_denied(version)], f
    # a backend, too, subscribes only under $events/push/
    assert be.subscribe("$events/#", qos=1) == [0x87]
    # nobody publishes there, a backend included
    eve.publish("$events/push/bob", b'{"fake":1}', qos=1)
    be.publish("$events/push/bob", b'{"fake":2}', qos=1)
    be.expect_none(0.7)
    alice = im(clients, b, "alice", "phone")
    alice.publish("p2p/talk/bob", b"real", qos=1)
    assert json.loads(be.get().payload)["from"] == "alice@phone"
    eve.expect_none(0.3)


def test_v5_publish_refused_with_reason(broker, clients):
    b, hp = start(broker)
    c, ack = im_raw(b, "eve@raw", token("eve"))
    assert ack.reason == 0
    c.send(m.publish("$events/push/bob", b"x", qos=1, pid=7, version=5))
    p = c.recv(2)
    assert p.type == m.PUBACK and p.reason == 0x87
    c.close()


# ---------------------------------------------------------------- the webhook

class Hook:
    """A webhook on a free loopback port. `plan` is a list of statuses to
    answer in turn (then 200); "slow" sleeps past the broker's timeout."""

    def __init__(self, plan=None, slow=2.0):
        self.plan = list(plan or [])
        self.slow = slow
        self.bodies = []
        self.headers = []
        self.attempts = 0
        self.lock = threading.Lock()
        hook = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with hook.lock:
                    hook.attempts += 1
                    st = hook.plan.pop(0) if hook.plan else 200
                if st == "slow":
                    time.sleep(hook.slow)
                    st = 200
                if st == 200:
                    with hook.lock:
                        hook.bodies.append(json.loads(body))
                        hook.headers.append(dict(self.headers))
                self.send_response(st)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d/push" % self.port
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def events(self):
        with self.lock:
            return [e for body in self.bodies for e in body]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def hook():
    made = []

    def make(*a, **kw):
        h = Hook(*a, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def send(clients, b, n, payload=b"m"):
    offline(clients, b, "bob", "phone")
    alice = im(clients, b, "alice", "phone")
    for i in range(n):
        alice.publish("p2p/talk/bob", payload + b"%d" % i, qos=1)
    return alice


def test_webhook_batches(broker, clients, hook):
    h = hook()
    b, hp = start(broker, webhook={"url": h.url, "batch_size": 5,
                                   "batch_interval_ms": 50, "bearer": "s3cret",
                                   "include_payload": True})
    send(clients, b, 12)
    wait_for(lambda: len(h.events()) == 12, 5, what="12 events posted")
    assert all(isinstance(body, list) and 1 <= len(body) <= 5 for body in h.bodies)
    evs = h.events()
    assert sorted(e["payload"] for e in evs) == sorted("m%d" % i for i in range(12))
    assert all(e["user"] == "bob" and e["from"] == "alice@phone" for e in evs)
    assert len({e["id"] for e in evs}) == 12
    hd = h.headers[0]
    assert hd["Authorization"] == "Bearer s3cret"
    assert hd["Content-Type"] == "application/json"
    wait_for(lambda: value(hp, "imqtt_push_webhook_posted_total") == 12, 3)
    assert value(hp, "imqtt_push_events_total") == 12
    assert value(hp, "imqtt_push_webhook_failed_total") == 0


def test_webhook_topic_payload_apart(broker, clients, hook):
    """The topic's events and the webhook's each carry the payload only
    when their own key says so."""
    h = hook()
    b, hp = start(broker, webhook={"url": h.url, "batch_interval_ms": 0})
    be = backend(clients, b)
    send(clients, b, 1)
    wait_for(lambda: len(h.events()) == 1, 5)
    assert "payload" not in h.events()[0]
    assert "payload" not in json.loads(be.get().payload)


def test_webhook_down_retries_then_drops(broker, clients):
    dead = free_port()  # nothing listens there: connection refused
    b, hp = start(broker, webhook={"url": "http://127.0.0.1:%d/x" % dead,
                                   "batch_interval_ms": 0, "retries": 2,
                                   "retry_backoff_ms": 50})
    send(clients, b, 1)
    wait_for(lambda: value(hp, "imqtt_push_webhook_dropped_total",
                           cause="retries") == 1, 5, what="dropped after retries")
    assert value(hp, "imqtt_push_webhook_failed_total") == 3
    assert value(hp, "imqtt_push_webhook_retried_total") == 2
    assert value(hp, "imqtt_push_webhook_posted_total") == 0


def test_webhook_slow_times_out(broker, clients, hook):
    h = hook(["slow", "slow"], slow=1.5)
    b, hp = start(broker, webhook={"url": h.url, "batch_interval_ms": 0,
                                   "timeout_ms": 300, "retries": 1,
                                   "retry_backoff_ms": 50})
    send(clients, b, 1)
    wait_for(lambda: value(hp, "imqtt_push_webhook_dropped_total",
                           cause="retries") == 1, 5, what="timed out twice")
    assert value(hp, "imqtt_push_webhook_failed_total") == 2
    assert value(hp, "imqtt_push_webhook_retried_total") == 1


def test_webhook_500_is_retried(broker, clients, hook):
    h = hook([500, 503])
    b, hp = start(broker, webhook={"url": h.url, "batch_interval_ms": 0,
                                   "retries": 3, "retry_backoff_ms": 50})
    send(clients, b, 1)
    wait_for(lambda: len(h.events()) == 1, 5, what="posted after two 5xx")
    assert h.attempts == 3
    wait_for(lambda: value(hp, "imqtt_push_webhook_posted_total") == 1, 3)
    assert value(hp, "imqtt_push_webhook_failed_total") == 2
    assert value(hp, "imqtt_push_webhook_retried_total") == 2


def test_webhook_400_is_dropped(broker, clients, hook):
    h = hook([400])
    b, hp = start(broker, webhook={"url": h.url, "batch_interval_ms": 0,
                                   "retries": 3, "retry_backoff_ms": 50})
    send(clients, b, 1)
    wait_for(lambda: value(hp, "imqtt_push_webhook_dropped_total",
                           cause="rejected") == 1, 5, what="4xx dropped")
    time.sleep(0.3)
    assert h.attempts == 1  # not retried
    assert value(hp, "imqtt_push_webhook_retried_total") == 0
    assert value(hp, "imqtt_push_webhook_failed_total") == 1


def test_webhook_queue_limit(broker, clients):
    dead = free_port()
    # One POST in flight, waiting 10 s for its retry; three events wait;
    # the rest are dropped and counted.
    b, hp = start(broker, webhook={"url": "http://127.0.0.1:%d/x" % dead,
                                   "batch_size": 1, "batch_interval_ms": 0,
                                   "concurrency": 1, "queue_limit": 3,
                                   "retries": 5, "retry_backoff_ms": 10000})
    send(clients, b, 10)
    wait_for(lambda: value(hp, "imqtt_push_webhook_dropped_total",
                           cause="queue_full") == 6, 5, what="6 dropped")
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_push_events_total") == 10
    assert promparse.value(fams, "imqtt_push_webhook_queued") == 3
    assert promparse.value(fams, "imqtt_push_webhook_in_flight") == 1
