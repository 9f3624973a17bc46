"""$SYS topics with Mosquitto's names, retained, every sys_interval."""
import time

import pytest

from conftest import Client

pytestmark = pytest.mark.imqtt_only

NAMES = ["version", "uptime", "clients/connected", "clients/total", "messages/received",
         "messages/sent", "publish/messages/dropped", "bytes/received", "bytes/sent",
         "retained messages/count", "subscriptions/count", "store/messages/count",
         "load/messages/received/1min", "load/bytes/sent/15min", "load/connections/5min"]


def collect(c, want, timeout=5):
    got = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (not want or not want <= set(got)):
        try:
            m = c.messages.get(timeout=0.2)
        except Exception:
            continue
        got[m.topic] = (m.payload.decode(), m.retain)
    return got


def test_sys_topics(broker):
    b = broker({"sys_interval": 1, "store": {"durability": "none"}})
    pub = Client(b, "sys-pub")
    pub.publish("x/y", b"1", qos=1)
    c = Client(b, "sys-sub")
    c.subscribe("$SYS/#", 0)
    want = {"$SYS/broker/" + n for n in NAMES}
    got = collect(c, want)
    assert want <= set(got), want - set(got)
    # a new subscriber gets the values retained, at once
    assert all(r for _, r in got.values())
    assert got["$SYS/broker/version"][0].startswith("imqtt ")
    assert got["$SYS/broker/uptime"][0].endswith(" seconds")
    # the retained values may predate our clients: the next period counts them
    deadline = time.monotonic() + 4
    while int(got["$SYS/broker/messages/received"][0]) < 1 or \
            int(got["$SYS/broker/clients/connected"][0]) < 2:
        assert time.monotonic() < deadline, got
        got.update(collect(c, set(), timeout=0.3))
    assert got["$SYS/broker/store/messages/count"][0] == "0"
    float(got["$SYS/broker/load/messages/received/1min"][0])
    # values that change are published again within the interval
    while not c.messages.empty():
        c.messages.get()
    got = collect(c, {"$SYS/broker/uptime"}, timeout=3)
    assert "$SYS/broker/uptime" in got
    # '#' does not match $SYS
    d = Client(b, "sys-hash")
    d.subscribe("#", 0)
    time.sleep(1.5)
    assert all(not m.topic.startswith("$SYS") for m in list(d.messages.queue))


def test_sys_off(broker):
    b = broker({"sys_interval": 0})
    c = Client(b, "sys-off")
    c.subscribe("$SYS/#", 0)
    time.sleep(1)
    assert c.messages.empty()
