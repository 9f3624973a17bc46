"""IM receipts (issue 13 item 3, docs/im.md "Receipts"): a "delivered"
receipt from the broker when the recipient's first device acknowledges a
direct message (once per recipient user, or per device when the sender or
the listener asks), read receipts published on p2p/receipt/{peer}, routed
to the peer's devices and synced to the reader's other devices, the
refusals, and the per-listener off switch.

The recipient devices are raw connections, so the test decides when (and
whether) each one acknowledges.
"""
import json
import time

import pytest

import mqttraw as m
from conftest import props, PacketTypes, SLOW, free_port
from imhelp import im, im_config, im_raw, token, drain, start_expect_fail

pytestmark = pytest.mark.imqtt_only

RC_NOT_AUTHORIZED = 0x87
ON = {"im_receipts": {"delivery": True}}
RC_PAYLOAD_FORMAT_INVALID = 0x99


def ups(msg):
    """User properties of a Paho message as a dict (v5)."""
    p = getattr(msg, "properties", None)
    return dict(getattr(p, "UserProperty", None) or []) if p is not None else {}


def receipts(c, timeout=0.5):
    """The receipts (messages with a `receipt` user property, or for
    3.1.1 a receipt JSON payload) among what arrives at Paho client c."""
    out = []
    for x in drain(c, timeout):
        if c.version == 5:
            if "receipt" in ups(x):
                out.append(x)
        elif x.payload.startswith(b'{"receipt"'):
            out.append(x)
    return out


def device(b, cid, version=5, **kw):
    """A raw IM device (manual acknowledgements)."""
    user = cid.split("@")[0]
    c, ack = im_raw(b, cid, token(user, **kw), version=version)
    assert ack.reason == 0, ack
    return c


def next_publish(c, timeout=5.0):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        p = c.recv(max(0.01, deadline - time.monotonic()))
        if p.type == m.PUBLISH:
            return p


def msg_id(p):
    return int(dict(p.user_properties)["id"])


# ---------------------------------------------------------------- delivered

def test_delivered_once_at_the_first_device_ack(broker, clients):
    """The first device of bob to PUBACK makes the receipt; alice's devices
    (the sender's and her other one) get it once, on her inbox, with
    receipt=delivered, msg_id, from = the device that acknowledged; the
    second device's PUBACK makes none; bob gets nothing back."""
    b = broker(im_config(listener_extra=ON))
    pc = device(b, "bob@pc")
    tab = device(b, "bob@tab")
    lap = im(clients, b, "alice", "laptop")
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"hi", qos=1)
    p1, p2 = next_publish(pc), next_publish(tab)
    assert p1.qos == 1 and p1.payload == b"hi"
    ident = msg_id(p1)
    assert receipts(a, 0.4) == [], "a receipt before any acknowledgement"
    pc.send(m.ack(m.PUBACK, p1.pid, version=5))
    for c in (a, lap):
        got = receipts(c, 0.5)
        assert len(got) == 1, [(x.topic, x.payload) for x in got]
        r = got[0]
        assert r.topic == "p2p/talk/alice"
        u = ups(r)
        assert u["receipt"] == "delivered" and int(u["msg_id"]) == ident
        assert u["from"] == "bob@pc" and "id" not in u
        assert [k for k, v in r.properties.UserProperty][:2] == ["from", "ts"]
        j = json.loads(r.payload)
        assert j["receipt"] == "delivered" and j["id"] == ident and j["by"] == "bob@pc"
        assert isinstance(j["ts"], int)
    tab.send(m.ack(m.PUBACK, p2.pid, version=5))
    assert receipts(a, 0.5) == [] and receipts(lap, 0.1) == []
    pc.assert_quiet(0.3)
    tab.assert_quiet(0.1)
    # A second message gets its own receipt (the mark moves on).
    a.publish("p2p/talk/bob", b"again", qos=1)
    p3, p4 = next_publish(pc), next_publish(tab)
    tab.send(m.ack(m.PUBACK, p4.pid, version=5))
    got = receipts(a, 0.5)
    assert [(ups(x)["from"], int(ups(x)["msg_id"])) for x in got] == [("bob@tab", msg_id(p3))]
    pc.send(m.ack(m.PUBACK, p3.pid, version=5))
    assert receipts(a, 0.4) == []


def test_offline_device_acks_later_no_second_receipt(broker, clients):
    """A device that was offline acknowledges the messages when it comes
    back: already receipted by the first device, they make no receipt; a
    message no device had acknowledged does (out of order acks too)."""
    b = broker(im_config(listener_extra=ON))
    tok = token("bob")
    off, ack = im_raw(b, "bob@old", tok, version=5, clean=False,
                      properties=[("session_expiry_interval", 3600)])
    assert ack.reason == 0
    off.send(m.disconnect(5))
    off.close()
    pc = device(b, "bob@pc")
    a = im(clients, b, "alice", "phone")
    for i in range(3):
        a.publish("p2p/talk/bob", b"m%d" % i, qos=1)
    got = [next_publish(pc) for _ in range(3)]
    ids = [msg_id(p) for p in got]
    for p in got[:2]:  # the third stays unacknowledged on pc
        pc.send(m.ack(m.PUBACK, p.pid, version=5))
    r = receipts(a, 0.5)
    assert sorted(int(ups(x)["msg_id"]) for x in r) == ids[:2]
    old, ack = im_raw(b, "bob@old", tok, version=5, clean=False,
                      properties=[("session_expiry_interval", 3600)])
    assert ack.reason == 0 and ack.session_present == 1
    back = [next_publish(old) for _ in range(3)]
    assert [msg_id(p) for p in back] == ids
    for p in reversed(back):  # out of order on purpose
        old.send(m.ack(m.PUBACK, p.pid, version=5))
    r = receipts(a, 0.5)
    assert [(ups(x)["from"], int(ups(x)["msg_id"])) for x in r] == [("bob@old", ids[2])]


def test_delivered_at_pubrec_for_qos2(broker, clients):
    """A QoS 2 delivery is receipted at the device's PUBREC (it has the
    message), once; a PUBREC that refuses it (>= 0x80) makes none."""
    b = broker(im_config(im={"inbox_qos": 2}, listener_extra=ON))
    pc = device(b, "bob@pc")
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"q2", qos=2)
    p = next_publish(pc)
    assert p.qos == 2
    pc.send(m.ack(m.PUBREC, p.pid, version=5))
    assert pc.expect(m.PUBREL).pid == p.pid
    r = receipts(a, 0.5)
    assert len(r) == 1 and int(ups(r[0])["msg_id"]) == msg_id(p)
    pc.send(m.ack(m.PUBCOMP, p.pid, version=5))
    assert receipts(a, 0.4) == [], "PUBCOMP must not make a second receipt"
    a.publish("p2p/talk/bob", b"no", qos=2)
    p = next_publish(pc)
    pc.send(m.ack(m.PUBREC, p.pid, version=5, reason=0x80))
    assert receipts(a, 0.5) == []


def test_refusing_puback_makes_no_receipt(broker, clients):
    """A v5 PUBACK with a reason code >= 0x80 refuses the message, as a
    refusing PUBREC does: no receipt; the next device's PUBACK 0 makes
    it."""
    b = broker(im_config(listener_extra=ON))
    pc = device(b, "bob@pc")
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"refused", qos=1)
    p = next_publish(pc)
    pc.send(m.ack(m.PUBACK, p.pid, version=5, reason=0x99))
    assert receipts(a, 0.5) == []
    tab = device(b, "bob@tab")
    a.publish("p2p/talk/bob", b"taken", qos=1)
    p = next_publish(pc)
    pc.send(m.ack(m.PUBACK, p.pid, version=5, reason=0x80))
    q = next_publish(tab)
    tab.send(m.ack(m.PUBACK, q.pid, version=5))
    r = receipts(a, 0.5)
    assert len(r) == 1 and ups(r[0])["from"] == "bob@tab" and int(ups(r[0])["msg_id"]) == msg_id(q)


def test_qos0_delivery_makes_no_receipt(broker, clients):
    """QoS 0 is never acknowledged: no delivered receipt (docs/im.md)."""
    b = broker(im_config(listener_extra=ON))
    pc = device(b, "bob@pc")
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"zero", qos=0)
    p = next_publish(pc)
    assert p.qos == 0
    assert receipts(a, 0.6) == []


def test_per_device_when_the_sender_asks(broker, clients):
    """User property receipts=device on the PUBLISH: one receipt per
    device of the recipient that acknowledges (and a PUBACK repeated for
    the same delivery adds none)."""
    b = broker(im_config(listener_extra=ON))
    pc, tab = device(b, "bob@pc"), device(b, "bob@tab")
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"each", qos=1, properties=props(
        PacketTypes.PUBLISH, UserProperty=[("receipts", "device")]))
    p1, p2 = next_publish(pc), next_publish(tab)
    pc.send(m.ack(m.PUBACK, p1.pid, version=5))
    pc.send(m.ack(m.PUBACK, p1.pid, version=5))
    tab.send(m.ack(m.PUBACK, p2.pid, version=5))
    r = receipts(a, 0.6)
    assert sorted(ups(x)["from"] for x in r) == ["bob@pc", "bob@tab"]
    assert {int(ups(x)["msg_id"]) for x in r} == {msg_id(p1)}


def test_per_device_by_listener(broker, clients):
    """listeners[].im_receipts.delivery "device": every device's ack is
    receipted, whatever the sender asked."""
    b = broker(im_config(listener_extra={"im_receipts": {"delivery": "device"}}))
    pc, tab = device(b, "bob@pc"), device(b, "bob@tab")
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"each", qos=1)
    for c in (pc, tab):
        c.send(m.ack(m.PUBACK, next_publish(c).pid, version=5))
    assert sorted(ups(x)["from"] for x in receipts(a, 0.6)) == ["bob@pc", "bob@tab"]


def test_v311_sender_gets_the_json_payload(broker, clients):
    """A 3.1.1 sender has no properties: the receipt's payload says it all
    (and its envelope head, when asked for, has from and ts but no id)."""
    b = broker(im_config(listener_extra=dict(ON, im_envelope=True)))
    pc = device(b, "bob@pc", version=4)
    a = im(clients, b, "alice", "old", version=4)
    a.publish("p2p/talk/bob", b"hello", qos=1)
    p = next_publish(pc)
    head, _, body = p.payload.partition(b"\n")
    ident = json.loads(head)["id"]
    pc.send(m.ack(m.PUBACK, p.pid, version=4))
    x = a.get()
    assert x.topic == "p2p/talk/alice"
    head, _, body = x.payload.partition(b"\n")
    h = json.loads(head)
    assert h["from"] == "bob@pc" and "id" not in h and isinstance(h["ts"], int)
    j = json.loads(body)
    assert j == {"receipt": "delivered", "id": ident, "by": "bob@pc", "ts": j["ts"]}


def test_a_client_cannot_forge_receipt_properties(broker, clients):
    """receipt and msg_id user properties of a client's PUBLISH are
    dropped, like from, id and ts: only the broker's receipts carry them."""
    b = broker(im_config())
    bob = im(clients, b, "bob", "pc")
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"fake", qos=1, properties=props(
        PacketTypes.PUBLISH, UserProperty=[("receipt", "read"), ("msg_id", "1"),
                                           ("x", "y")]))
    x = bob.get()
    u = x.properties.UserProperty
    assert [k for k, v in u] == ["from", "id", "ts", "x"], u


# ---------------------------------------------------------------- read

def test_read_receipt_routed_and_synced(broker, clients):
    """bob@pc publishes {"id": n} to p2p/receipt/alice: alice's devices get
    receipt=read from bob@pc on their inbox; bob's other device gets the
    sync copy on p2p/talk/alice; bob@pc gets nothing back; the PUBACK
    says success. A 3.1.1 reader works the same."""
    b = broker(im_config())
    a = im(clients, b, "alice", "phone")
    lap = im(clients, b, "alice", "laptop")
    tab = im(clients, b, "bob", "tab")
    pc = im(clients, b, "bob", "pc")
    a.publish("p2p/talk/bob", b"read me", qos=1)
    ident = int(ups(pc.get())["id"])
    drain(tab, 0.2)
    receipts(a, 0.3), receipts(lap, 0.05)  # the delivered receipts
    info = pc.publish("p2p/receipt/alice", json.dumps({"id": ident}).encode(), qos=1)
    assert info.is_published()
    for c in (a, lap):
        r = receipts(c, 0.5)
        assert len(r) == 1, r
        assert r[0].topic == "p2p/talk/alice"
        u = ups(r[0])
        assert (u["receipt"], int(u["msg_id"]), u["from"]) == ("read", ident, "bob@pc")
        assert json.loads(r[0].payload) == {"receipt": "read", "id": ident, "by": "bob@pc",
                                            "ts": json.loads(r[0].payload)["ts"]}
    s = receipts(tab, 0.5)
    assert len(s) == 1 and s[0].topic == "p2p/talk/alice"
    assert ups(s[0])["receipt"] == "read" and ups(s[0])["from"] == "bob@pc"
    assert receipts(pc, 0.3) == []
    # 3.1.1 reader, QoS 0 and QoS 2
    old = im(clients, b, "bob", "old", version=4)
    old.publish("p2p/receipt/alice", b'{"id": 5}', qos=0)
    old.publish("p2p/receipt/alice", b'{"id": 6}', qos=2)
    got = sorted(int(ups(x)["msg_id"]) for x in receipts(a, 0.6))
    assert got == [5, 6]


def test_read_receipt_refusals(broker, clients):
    """To a peer the reader may not write to (an ACL rule), a topic that
    is not p2p/receipt/{user}: PUBACK 0x87; a payload that is not
    {"id": n}: 0x99; nothing is routed. 3.1.1: acknowledged, dropped."""
    acl = {"rules": [{"permission": "deny", "action": "publish",
                      "topic": "p2p/talk/support"}]}
    b = broker(im_config(acl=acl))
    sup = im(clients, b, "support", "desk")
    a = im(clients, b, "alice", "phone")
    pc = device(b, "bob@pc")
    cases = [("p2p/receipt/support", b'{"id": 1}', RC_NOT_AUTHORIZED),
             ("p2p/receipt/alice/x", b'{"id": 1}', RC_NOT_AUTHORIZED),
             ("p2p/receipt/a%b", b'{"id": 1}', RC_NOT_AUTHORIZED),
             ("p2p/receipt/alice", b'{"id": 0}', RC_PAYLOAD_FORMAT_INVALID),
             ("p2p/receipt/alice", b'{"id": 1.5}', RC_PAYLOAD_FORMAT_INVALID),
             ("p2p/receipt/alice", b'{"id": 1, "x": 2}', RC_PAYLOAD_FORMAT_INVALID),
             ("p2p/receipt/alice", b'{"id": "1"}', RC_PAYLOAD_FORMAT_INVALID),
             ("p2p/receipt/alice", b'[1]', RC_PAYLOAD_FORMAT_INVALID),
             ("p2p/receipt/alice", b'', RC_PAYLOAD_FORMAT_INVALID),
             ("p2p/receipt/alice", b'{"id": 1}' + b" " * 300, RC_PAYLOAD_FORMAT_INVALID)]
    for pid, (topic, payload, rc) in enumerate(cases, 1):
        pc.send(m.publish(topic, payload, qos=1, pid=pid, version=5))
        ack = pc.expect(m.PUBACK)
        assert (ack.pid, ack.reason) == (pid, rc), (topic, payload, ack)
        pc.send(m.publish(topic, payload, qos=2, pid=100 + pid, version=5))
        ack = pc.expect(m.PUBREC)
        assert (ack.pid, ack.reason) == (100 + pid, rc), (topic, payload, ack)
    assert receipts(sup, 0.3) == [] and receipts(a, 0.1) == []
    old = device(b, "bob@old", version=4)
    old.send(m.publish("p2p/receipt/support", b'{"id": 1}', qos=1, pid=9))
    ack = old.expect(m.PUBACK)
    assert ack.pid == 9
    assert receipts(sup, 0.4) == []


# ---------------------------------------------------------------- off switch

def test_delivery_receipts_off_by_default(broker, clients):
    """Without listeners[].im_receipts.delivery an acknowledgement makes
    no receipt (apps that know no receipts would show them as messages);
    read receipts are on."""
    b = broker(im_config())
    pc = device(b, "bob@pc")
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"x", qos=1)
    p = next_publish(pc)
    pc.send(m.ack(m.PUBACK, p.pid, version=5))
    assert receipts(a, 0.6) == []
    pc.send(m.publish("p2p/receipt/alice", b'{"id": %d}' % msg_id(p), qos=1, pid=3,
                      version=5))
    assert pc.expect(m.PUBACK).reason == 0
    r = receipts(a, 0.5)
    assert [ups(x)["receipt"] for x in r] == ["read"]


def test_receipts_off_per_listener(broker, clients):
    """im_receipts {"delivery": false, "read": false} on bob's listener:
    his acknowledgements make no receipt and his read receipts are
    refused with 0x87; alice's listener has both on."""
    cfg = im_config(listener_extra=ON)
    port2 = free_port()
    off = dict(cfg["listeners"][0], port=port2,
               im_receipts={"delivery": False, "read": False})
    cfg["listeners"].append(off)
    b = broker(cfg)

    class Off:
        host, port = b.host, port2
    pc, ack = im_raw(Off, "bob@pc", token("bob"), version=5)
    assert ack.reason == 0
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"x", qos=1)
    p = next_publish(pc)
    pc.send(m.ack(m.PUBACK, p.pid, version=5))
    assert receipts(a, 0.6) == []
    pc.send(m.publish("p2p/receipt/alice", b'{"id": %d}' % msg_id(p), qos=1, pid=3,
                      version=5))
    ack = pc.expect(m.PUBACK)
    assert (ack.pid, ack.reason) == (3, RC_NOT_AUTHORIZED)
    assert receipts(a, 0.4) == []
    # alice (receipts on) reads bob's message: bob gets it.
    bob = device(b, "bob@tab")
    a.publish("p2p/receipt/bob", b'{"id": 7}', qos=1)
    r = next_publish(bob)
    assert dict(r.user_properties)["receipt"] == "read"


@pytest.mark.parametrize("bad", [{"delivery": "x"}, {"read": 1}, {"other": True}, []])
def test_bad_receipt_config_stops_the_start(bad):
    rc, out = start_expect_fail(im_config(listener_extra={"im_receipts": bad}))
    assert rc != 0 and "im_receipts" in out, out


@pytest.fixture
def store_broker():
    from store_helpers import StoreBroker
    made = []

    def make(config):
        sb = StoreBroker(extra=config)
        made.append(sb)
        return sb
    yield make
    for sb in made:
        sb.cleanup()


def test_receipt_for_a_message_kept_across_a_restart(store_broker):
    """A message waiting in the store for an offline device, across a
    restart: the device's PUBACK after the restart is receipted (the
    stamp is part of the stored message), and the receipt waits for the
    sender's offline device in turn."""
    sb = store_broker(im_config(listener_extra=ON))
    b = sb.start()
    persist = {"clean": False, "properties": [("session_expiry_interval", 3600)]}
    bob, ack = im_raw(b, "bob@pc", token("bob"), version=5, **persist)
    assert ack.reason == 0
    bob.send(m.disconnect(5))
    bob.close()
    al, ack = im_raw(b, "alice@phone", token("alice"), version=5, **persist)
    al.send(m.publish("p2p/talk/bob", b"kept", qos=1, pid=1, version=5))
    assert al.expect(m.PUBACK).reason == 0
    al.send(m.disconnect(5))
    al.close()
    b = sb.restart()
    bob, ack = im_raw(b, "bob@pc", token("bob"), version=5, **persist)
    assert ack.session_present == 1
    p = next_publish(bob)
    assert p.payload == b"kept"
    bob.send(m.ack(m.PUBACK, p.pid, version=5))
    time.sleep(0.3)
    al, ack = im_raw(b, "alice@phone", token("alice"), version=5, **persist)
    assert ack.session_present == 1
    r = next_publish(al)
    u = dict(r.user_properties)
    assert r.topic == "p2p/talk/alice" and u["receipt"] == "delivered"
    assert int(u["msg_id"]) == msg_id(p) and u["from"] == "bob@pc"
    al.close()
    bob.close()
