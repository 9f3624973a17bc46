"""IM limits (issue 13 item 7, docs/im.md "Limits" and "Presence"):
im.max_devices_per_user (the oldest offline device makes room; refused
with 0x97 / 3.1.1 code 3 when every device is online), who may read
presence (im.presence "everyone", "group", "nobody"), and history
requests and read receipts counted in limits.message_rate.
"""
import json
import time

import pytest

import mqttraw as m
import promparse
from conftest import SLOW, free_port
from test_metrics import metrics
from imhelp import im, im_config, im_raw, token, drain, start_expect_fail

pytestmark = pytest.mark.imqtt_only

RC5_QUOTA_EXCEEDED = 0x97
RC3_SERVER_UNAVAILABLE = 3
RC_RATE_TOO_HIGH = 0x96


def suback(c, flt, pid=1):
    c.send(m.subscribe(pid, [(flt, 1)], version=c.version))
    return c.expect(m.SUBACK).reasons


def raw(b, cid, groups=None, version=5, persistent=False):
    user = cid.split("@")[0]
    kw = {}
    if persistent:
        kw = {"clean": False}
        if version == 5:
            kw["properties"] = [("session_expiry_interval", 3600)]
    return im_raw(b, cid, token(user, groups=groups), version=version, **kw)


def online(b, cid, **kw):
    c, ack = raw(b, cid, **kw)
    assert ack.reason == 0, ack
    return c


def offline(b, cid):
    """A persistent device that connected once and left."""
    c, ack = raw(b, cid, persistent=True)
    assert ack.reason == 0, ack
    c.send(m.disconnect(5))
    c.close()
    time.sleep(0.05)  # disconnect times order the devices


# ---------------------------------------------------------------- devices

def test_max_devices_evicts_the_oldest_offline(broker):
    """At im.max_devices_per_user a new device ends the session of the
    user's device that left first (its queued messages go with it); an
    existing device reconnects freely; other users are not affected."""
    hp = free_port()
    b = broker(im_config(im={"max_devices_per_user": 2}, http={"port": hp}))
    offline(b, "alice@old")
    offline(b, "alice@tab")
    phone = online(b, "alice@phone")  # evicts alice@old
    assert b"alice@old ends" in b.stderr_text().encode()
    c, ack = raw(b, "alice@tab", persistent=True)  # exists: no check
    assert ack.reason == 0 and ack.session_present == 1
    c.close()
    time.sleep(0.05)
    # old's session is gone: it comes back as a new one, evicting tab.
    c, ack = raw(b, "alice@old", persistent=True)
    assert ack.reason == 0 and ack.session_present == 0
    c.close()
    assert promparse.value(metrics(hp), "imqtt_im_devices_evicted_total") == 2
    other = online(b, "bob@one")
    other2 = online(b, "bob@two")
    for x in (phone, other, other2):
        x.close()


def test_max_devices_refused_connect_ends_nothing(broker):
    """A new device refused for something else (a Will to a topic it may
    not publish to: 0x87) makes no room: room is made only once the new
    device is connected."""
    b = broker(im_config(im={"max_devices_per_user": 1}))
    offline(b, "alice@old")
    c, ack = im_raw(b, "alice@new", token("alice"), version=5,
                    will={"topic": "not/yours", "payload": b"x"})
    assert ack.reason == 0x87, ack
    c.close()
    c, ack = raw(b, "alice@old", persistent=True)
    assert ack.reason == 0 and ack.session_present == 1
    assert "ends" not in b.stderr_text()
    c.close()


@pytest.mark.parametrize("version,rc", [(5, RC5_QUOTA_EXCEEDED), (4, RC3_SERVER_UNAVAILABLE)])
def test_max_devices_all_online_refused(broker, version, rc):
    """Every device at the limit is online: the new one is refused with
    0x97 Quota exceeded (3.1.1: 3, server unavailable); none is pushed
    out, and a device that exists reconnects (takeover)."""
    hp = free_port()
    b = broker(im_config(im={"max_devices_per_user": 2}, http={"port": hp}))
    a = online(b, "alice@a")
    bb = online(b, "alice@b")
    c, ack = raw(b, "alice@c", version=version)
    assert ack.reason == rc, ack
    c.expect_closed()
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_connections_refused_total", cause="max_devices") == 1
    assert promparse.value(fams, "imqtt_im_devices_evicted_total") == 0
    a.send(m.pingreq())
    assert a.expect(m.PINGRESP)
    again = online(b, "alice@b")  # takes over its own session
    for x in (a, bb, again):
        x.close()


def test_max_devices_zero_is_unlimited(broker):
    b = broker(im_config())
    cs = [online(b, "alice@d%d" % i) for i in range(12)]
    for c in cs:
        c.close()


def test_max_devices_bad_config():
    rc, out = start_expect_fail(im_config(im={"max_devices_per_user": -1}))
    assert rc != 0 and "im.max_devices_per_user" in out, out


# ---------------------------------------------------------------- presence

def presence_of(c, user, timeout=0.6):
    out = []
    deadline = time.monotonic() + timeout * SLOW
    while True:
        try:
            p = c.recv(max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            return out
        if p.type == m.PUBLISH:
            if p.qos:
                c.send(m.ack(m.PUBACK, p.pid, version=c.version))
            if p.topic == "p2p/presence/" + user:
                out.append(json.loads(p.payload))


def test_presence_group(broker):
    """"group": only users sharing a group with alice (by their tokens)
    may subscribe to p2p/presence/alice (others: SUBACK 0x87); a wildcard
    is granted and filtered per message at delivery, retained included."""
    b = broker(im_config(im={"presence": "group"}))
    alice = online(b, "alice@phone", groups=["team", "x"])
    carol = online(b, "carol@pc", groups=["team"])
    dave = online(b, "dave@pc", groups=["other"])
    assert suback(carol, "p2p/presence/alice") == [1]
    assert [p["devices"] for p in presence_of(carol, "alice")] == [["phone"]]
    assert suback(dave, "p2p/presence/alice") == [0x87]
    assert suback(dave, "p2p/presence/+", pid=2) == [1]
    assert suback(carol, "p2p/presence/+", pid=2) == [1]
    assert presence_of(dave, "alice") == []
    assert [p["devices"] for p in presence_of(carol, "alice")] == [["phone"]]
    lap = online(b, "alice@laptop", groups=["team"])
    assert sorted(presence_of(carol, "alice")[-1]["devices"]) == ["laptop", "phone"]
    assert presence_of(dave, "alice", 0.3) == []
    # One's own presence is always readable; a user never seen is not.
    assert suback(alice, "p2p/presence/alice") == [1]
    assert suback(dave, "p2p/presence/dave", pid=3) == [1]
    assert suback(carol, "p2p/presence/ghost", pid=3) == [0x87]
    for c in (alice, carol, dave, lap):
        c.close()


@pytest.mark.parametrize("mode", [False, "nobody"])
def test_presence_nobody(broker, mode):
    b = broker(im_config(im={"presence": mode}))
    dave = online(b, "dave@pc")
    alice = online(b, "alice@phone")
    assert suback(dave, "p2p/presence/alice") == [0x87]
    assert suback(alice, "p2p/presence/alice", pid=2) == [0x87]
    for c in (alice, dave):
        c.close()


@pytest.mark.parametrize("mode", [True, "everyone"])
def test_presence_everyone(broker, mode):
    b = broker(im_config(im={"presence": mode}))
    alice = online(b, "alice@phone", groups=["team"])
    dave = online(b, "dave@pc", groups=["other"])
    assert suback(dave, "p2p/presence/alice") == [1]
    assert [p["devices"] for p in presence_of(dave, "alice")] == [["phone"]]
    for c in (alice, dave):
        c.close()


def test_presence_bad_value():
    rc, out = start_expect_fail(im_config(im={"presence": "friends"}))
    assert rc != 0 and "im.presence" in out, out


# ---------------------------------------------------------------- rates

@pytest.mark.parametrize("kind", ["history", "receipt"])
@pytest.mark.parametrize("version", [5, 4])
def test_request_flood_is_rate_limited(broker, kind, version):
    """History requests and read receipts are PUBLISH packets: they count
    in limits.message_rate like any other; past it an MQTT 5 client gets
    DISCONNECT 0x96 and a 3.1.1 client is closed, and only the first few
    were answered."""
    b = broker(im_config(limits={"message_rate": 5, "message_burst": 5}))
    peer = online(b, "alice@phone")
    c = online(b, "bob@pc", version=version)
    if kind == "history":
        topic, body = "$im/history", json.dumps({"peer": "alice", "limit": 1}).encode()
    else:
        topic, body = "p2p/receipt/alice", b'{"id": 1}'
    data = b"".join(m.publish(topic, body, qos=0, version=version) for _ in range(40))
    c.send(data)
    answers = 0
    deadline = time.monotonic() + 5 * SLOW
    while True:
        try:
            p = c.recv(max(0.01, deadline - time.monotonic()))
        except (m.Closed, ConnectionError):
            assert version == 4
            break
        if p.type == m.DISCONNECT:
            assert version == 5 and p.reason == RC_RATE_TOO_HIGH, p
            break
        if p.type == m.PUBLISH:
            answers += p.topic.startswith("$im/history")
            if p.qos:
                c.send(m.ack(m.PUBACK, p.pid, version=version))
    if kind == "history":
        assert 1 <= answers <= 6, answers
    else:
        got = [x for x in drain_raw(peer) if x.topic == "p2p/talk/alice"]
        assert 1 <= len(got) <= 6, len(got)
    peer.close()


def drain_raw(c, timeout=0.5):
    out = []
    while True:
        try:
            p = c.recv(timeout)
        except TimeoutError:
            return out
        if p.type == m.PUBLISH:
            out.append(p)
            if p.qos:
                c.send(m.ack(m.PUBACK, p.pid, version=c.version))


def test_max_devices_counts_sessions_from_the_store(tmp_path):
    """Offline sessions the store brought back at start-up are devices
    too: after a restart, a new device still makes one of them end."""
    from store_helpers import StoreBroker
    sb = StoreBroker(extra=im_config(im={"max_devices_per_user": 1}))
    try:
        b = sb.start()
        offline(b, "alice@old")
        b = sb.restart()
        c = online(b, "alice@new")
        assert "alice@old ends" in b.stderr_text()
        c.close()
    finally:
        sb.cleanup()
