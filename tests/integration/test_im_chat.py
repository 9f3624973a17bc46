"""IM layer: inbox, multi-device sync, echo suppression, sender stamp,
group chat, presence (issue 5, DESIGN.md "IM conventions", docs/im.md).

The first test is the issue's scenario; the others pin each rule alone so
a failure names the rule.
"""
import json
import time

import pytest

import mqttraw as m
from conftest import props, PacketTypes, SLOW
from imhelp import im, im_config, im_raw, mint, from_props, drain, tp

pytestmark = pytest.mark.imqtt_only

TEAM = ["team"]


def forged(value="mallory@evil"):
    return props(PacketTypes.PUBLISH, UserProperty=[("from", value)])


def expect_exact(c, expected, who, timeout=3.0, quiet=0.4):
    """c receives exactly `expected` [(topic, payload)] in this order, then
    nothing more within `quiet` seconds.  Returns the messages."""
    got = []
    deadline = time.monotonic() + timeout * SLOW
    while len(got) < len(expected) and time.monotonic() < deadline:
        try:
            got.append(c.messages.get(timeout=max(0.01, deadline - time.monotonic())))
        except Exception:
            break
    got += drain(c, quiet)
    assert tp(got) == expected, "%s received %r, expected %r" % (who, tp(got), expected)
    return got


def stamp(msg):
    f = from_props(msg)
    assert len(f) <= 1, "several from properties: %r" % f
    return f[0] if f else None


# ---------------------------------------------------------------- scenario

def test_issue_scenario_three_devices_peer_and_group(broker, clients):
    """alice: tab (v5, persistent, offline during the chat), old (3.1.1,
    persistent), new (v5).  bob: a (v5), b (3.1.1).  carol: pc (v5).
    Group "team" = alice, bob, carol.  Every message reaches every device of
    its recipients and the sender's other devices, never the sending
    device; the from stamp is the authenticated sender; the offline device
    gets everything in order on reconnect."""
    b = broker(im_config())
    tab = im(clients, b, "alice", "tab", version=5, groups=TEAM, persistent=True)
    assert tab.subscribe("g/talk/team", 1) == [1]
    tab.disconnect()

    old = im(clients, b, "alice", "old", version=4, groups=TEAM, persistent=True)
    new = im(clients, b, "alice", "new", version=5, groups=TEAM)
    ba = im(clients, b, "bob", "a", version=5, groups=TEAM)
    bb = im(clients, b, "bob", "b", version=4, groups=TEAM)
    pc = im(clients, b, "carol", "pc", version=5, groups=TEAM)
    for c in (old, new, ba, bb, pc):
        assert c.subscribe("g/talk/team", 1) == [1]

    # 1. alice@new -> bob, with a forged from
    new.publish("p2p/talk/bob", b"hi bob", qos=1, properties=forged())
    # 2. bob@b (3.1.1) -> alice
    bb.publish("p2p/talk/alice", b"hi alice", qos=1)
    # 3. alice@old (3.1.1) -> group
    old.publish("g/talk/team", b"team hi", qos=1)
    # 4. alice@new -> herself (note to self)
    new.publish("p2p/talk/alice", b"note", qos=1)
    # 5. carol -> alice, forging bob
    pc.publish("p2p/talk/alice", b"from carol", qos=1, properties=forged("bob@a"))
    # 6. bob@a -> group
    ba.publish("g/talk/team", b"bob to team", qos=1)

    M1 = ("p2p/talk/bob", b"hi bob")
    M2 = ("p2p/talk/alice", b"hi alice")
    M3 = ("g/talk/team", b"team hi")
    M4 = ("p2p/talk/alice", b"note")
    M5 = ("p2p/talk/alice", b"from carol")
    M6 = ("g/talk/team", b"bob to team")
    stamps = {M1: "alice@new", M2: "bob@b", M3: "alice@old", M4: "alice@new",
              M5: "carol@pc", M6: "bob@a"}

    expected = {
        "alice@old": (old, [M1, M2, M4, M5, M6]),     # sync of 1 and 4; not 3 (own)
        "alice@new": (new, [M2, M3, M5, M6]),         # not 1, 4 (own)
        "bob@a": (ba, [M1, M2, M3]),                  # sync of 2; not 6 (own)
        "bob@b": (bb, [M1, M3, M6]),                  # not 2 (own)
        "carol@pc": (pc, [M3, M6]),                   # not 5 (own)
    }
    for who, (c, exp) in expected.items():
        got = expect_exact(c, exp, who)
        for msg in got:
            key = (msg.topic, msg.payload)
            if c.version == 5:
                assert stamp(msg) == stamps[key], "%s: from of %r is %r" % (who, key, stamp(msg))
            else:
                assert msg.payload == key[1]  # 3.1.1: payload unchanged

    # the offline device gets everything, in order, at once on reconnect
    tab2 = im(clients, b, "alice", "tab", version=5, groups=TEAM, persistent=True)
    assert tab2.session_present
    got = expect_exact(tab2, [M1, M2, M3, M4, M5, M6], "alice@tab (offline)", timeout=5)
    assert [stamp(x) for x in got] == [stamps[(x.topic, x.payload)] for x in got]
    assert all(x.qos == 1 for x in got)


# ---------------------------------------------------------------- inbox

@pytest.mark.parametrize("version", [4, 5])
def test_inbox_subscribed_without_asking(broker, clients, version):
    """A device that subscribes to nothing receives messages to its user's
    inbox p2p/talk/{user}, at QoS 1 (im.inbox_qos default)."""
    b = broker(im_config())
    a = im(clients, b, "alice", "phone", version=version)
    bob = im(clients, b, "bob", "pc")
    bob.publish("p2p/talk/alice", b"hello", qos=1)
    msg = a.get(3)
    assert (msg.topic, msg.payload, msg.qos) == ("p2p/talk/alice", b"hello", 1)
    bob.publish("p2p/talk/alice", b"q2", qos=2)
    assert a.get(3).qos == 1  # capped at inbox QoS


def test_inbox_qos_from_config(broker, clients):
    """im.inbox_qos 0: the inbox subscription is at QoS 0."""
    b = broker(im_config(im={"inbox_qos": 0}))
    a = im(clients, b, "alice", "phone")
    im(clients, b, "bob", "pc").publish("p2p/talk/alice", b"x", qos=1)
    assert a.get(3).qos == 0


def test_inbox_survives_in_persistent_session(broker, clients):
    """The inbox subscription is part of the persistent session: a 3.1.1
    CleanSession 0 device offline gets its queued inbox messages, in order."""
    b = broker(im_config())
    a = im(clients, b, "alice", "old", version=4, persistent=True)
    a.disconnect()
    bob = im(clients, b, "bob", "pc")
    for i in range(20):
        bob.publish("p2p/talk/alice", b"m%02d" % i, qos=1)
    a2 = im(clients, b, "alice", "old", version=4, persistent=True)
    assert a2.session_present
    expect_exact(a2, [("p2p/talk/alice", b"m%02d" % i) for i in range(20)], "alice@old")


def test_unsubscribing_inbox_then_reconnect_restores_it(broker, clients):
    """The broker subscribes the inbox on every connect: even after the
    client unsubscribed it, the next connect brings it back."""
    b = broker(im_config())
    a = im(clients, b, "alice", "phone", persistent=True)
    a.unsubscribe("p2p/talk/alice")
    a.disconnect()
    a2 = im(clients, b, "alice", "phone", persistent=True)
    im(clients, b, "bob", "pc").publish("p2p/talk/alice", b"back", qos=1)
    assert a2.get(3).payload == b"back"


# ---------------------------------------------------------------- sync, echo

@pytest.mark.parametrize("sender_version", [4, 5])
def test_sent_sync_reaches_other_devices_not_sender(broker, clients, sender_version):
    """alice@phone -> p2p/talk/bob: bob's devices and alice's other devices
    (topic p2p/talk/bob, via their inbox) get it once; alice@phone does not
    (echo suppression, also for 3.1.1 senders)."""
    b = broker(im_config())
    phone = im(clients, b, "alice", "phone", version=sender_version)
    laptop = im(clients, b, "alice", "laptop", version=5)
    watch = im(clients, b, "alice", "watch", version=4)
    bob1 = im(clients, b, "bob", "one", version=5)
    bob2 = im(clients, b, "bob", "two", version=4)
    phone.publish("p2p/talk/bob", b"yo", qos=1)
    for who, c in (("alice@laptop", laptop), ("alice@watch", watch),
                   ("bob@one", bob1), ("bob@two", bob2)):
        expect_exact(c, [("p2p/talk/bob", b"yo")], who, quiet=0.1)
    assert phone.messages.empty()
    expect_exact(phone, [], "alice@phone (sender)", quiet=0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_echo_suppressed_even_when_subscribed_explicitly(broker, clients, version):
    """A device that also subscribes p2p/talk/{self} itself (and a group it
    publishes to) still never receives its own publication."""
    b = broker(im_config())
    a = im(clients, b, "alice", "phone", version=version, groups=TEAM)
    assert a.subscribe("p2p/talk/alice", 1) == [1]
    assert a.subscribe("g/talk/team", 1) == [1]
    other = im(clients, b, "alice", "pc", groups=TEAM)
    assert other.subscribe("g/talk/team", 1) == [1]
    a.publish("p2p/talk/alice", b"self", qos=1)
    a.publish("g/talk/team", b"grp", qos=1)
    expect_exact(other, [("p2p/talk/alice", b"self"), ("g/talk/team", b"grp")], "alice@pc")
    expect_exact(a, [], "alice@phone (sender)")


def test_note_to_self_reaches_other_devices_once(broker, clients):
    """peer == user: the other devices get it exactly once (not once as
    recipient and once as sync)."""
    b = broker(im_config())
    a = im(clients, b, "alice", "phone")
    o1 = im(clients, b, "alice", "pc")
    o2 = im(clients, b, "alice", "old", version=4)
    a.publish("p2p/talk/alice", b"remember milk", qos=1)
    for who, c in (("alice@pc", o1), ("alice@old", o2)):
        expect_exact(c, [("p2p/talk/alice", b"remember milk")], who)
    expect_exact(a, [], "alice@phone")


def test_sync_queued_for_offline_device_in_order(broker, clients):
    """Sent-sync copies and received messages interleave, in order, in the
    queue of an offline device of the sender."""
    b = broker(im_config())
    off = im(clients, b, "alice", "tab", persistent=True)
    off.disconnect()
    a = im(clients, b, "alice", "phone")
    bob = im(clients, b, "bob", "pc")
    exp = []
    for i in range(5):
        a.publish("p2p/talk/bob", b"a%d" % i, qos=1)
        exp.append(("p2p/talk/bob", b"a%d" % i))
        bob.publish("p2p/talk/alice", b"b%d" % i, qos=1)
        exp.append(("p2p/talk/alice", b"b%d" % i))
    back = im(clients, b, "alice", "tab", persistent=True)
    got = expect_exact(back, exp, "alice@tab", timeout=5)
    assert [stamp(x) for x in got] == ["alice@phone", "bob@pc"] * 5


# ---------------------------------------------------------------- stamp

def test_from_stamp_set_and_not_forgeable(broker, clients):
    """v5 receivers get exactly one user property from = the sender's
    user@device; a client-supplied from (one or several) is replaced; other
    user properties pass through."""
    b = broker(im_config())
    bob = im(clients, b, "bob", "pc")
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"plain", qos=1)
    a.publish("p2p/talk/bob", b"forged", qos=1, properties=props(
        PacketTypes.PUBLISH, UserProperty=[("from", "bob@pc"), ("k", "v"), ("from", "x@y")]))
    a.publish("p2p/talk/bob", b"forged0", qos=0, properties=forged("carol@pc"))
    msgs = expect_exact(bob, [("p2p/talk/bob", b"plain"), ("p2p/talk/bob", b"forged"),
                              ("p2p/talk/bob", b"forged0")], "bob@pc")
    for x in msgs:
        assert from_props(x) == ["alice@phone"], (x.payload, from_props(x))
    ups = msgs[1].properties.UserProperty
    assert ("k", "v") in ups, ups


def test_from_stamp_raw_v5_and_v311_payload_unchanged(broker):
    """Raw check: a v5 receiver sees the from property on the wire; a 3.1.1
    receiver gets the exact payload bytes."""
    b = broker(im_config())
    r5, ack = im_raw(b, "bob@v5", mint("bob"), version=5)
    r4, ack4 = im_raw(b, "bob@v4", mint("bob"), version=4)
    s, ack_s = im_raw(b, "alice@raw", mint("alice"), version=5)
    with r5, r4, s:
        assert ack.reason == ack4.reason == ack_s.reason == 0
        payload = bytes(range(256))
        s.send(m.publish("p2p/talk/bob", payload, qos=1, pid=5, version=5,
                         properties=[("user_property", ("from", "bob@v4"))]))
        puback = s.expect(m.PUBACK)
        assert puback.reason == 0
        p5 = r5.expect(m.PUBLISH)
        assert p5.topic == "p2p/talk/bob" and p5.payload == payload
        assert [v for k, v in p5.user_properties if k == "from"] == ["alice@raw"], p5.user_properties
        p4 = r4.expect(m.PUBLISH)
        assert p4.topic == "p2p/talk/bob" and p4.payload == payload
        s.assert_quiet(0.3)


# ---------------------------------------------------------------- groups

def test_group_chat_members_only(broker, clients):
    """g/talk/team: members (groups claim) subscribe and publish; the
    sender's other devices get it, the sending device not; a non-member's
    subscribe is refused (0x87) and its publish refused (PUBACK 0x87)."""
    b = broker(im_config())
    a1 = im(clients, b, "alice", "phone", groups=TEAM)
    a2 = im(clients, b, "alice", "pc", groups=TEAM)
    bob = im(clients, b, "bob", "pc", groups=["team", "other"])
    eve = im(clients, b, "eve", "pc", groups=["other"])
    for c in (a1, a2, bob):
        assert c.subscribe("g/talk/team", 1) == [1]
    assert eve.subscribe("g/talk/team", 1) == [0x87]
    assert eve.subscribe("g/talk/+", 1) == [0x87]
    info = eve.publish("g/talk/team", b"spam", qos=1, wait=False)
    info.wait_for_publish(3)
    a1.publish("g/talk/team", b"hello team", qos=1)
    expect_exact(a2, [("g/talk/team", b"hello team")], "alice@pc")
    got = expect_exact(bob, [("g/talk/team", b"hello team")], "bob@pc")
    assert from_props(got[0]) == ["alice@phone"]
    expect_exact(a1, [], "alice@phone")
    expect_exact(eve, [], "eve@pc")


# ---------------------------------------------------------------- presence

def presence_of(msg):
    d = json.loads(msg.payload)
    assert set(d) >= {"user", "devices", "ts"}, d
    assert isinstance(d["ts"], int) and abs(d["ts"] - time.time() * 1000) < 60000, d
    return d["user"], sorted(d["devices"])


def next_presence(c, timeout=3.0):
    msg = c.get(timeout)
    assert msg.topic.startswith("p2p/presence/"), (msg.topic, msg.payload)
    return presence_of(msg)


def test_presence_connect_disconnect(broker, clients):
    """p2p/presence/alice is published (retained) on each connect and
    disconnect of an alice device, listing the online devices."""
    b = broker(im_config())
    w = im(clients, b, "carol", "watch")
    assert w.subscribe("p2p/presence/alice", 1) == [1]
    p = im(clients, b, "alice", "phone")
    assert next_presence(w) == ("alice", ["phone"])
    l = im(clients, b, "alice", "laptop", version=4)
    assert next_presence(w) == ("alice", ["laptop", "phone"])
    p.disconnect()
    assert next_presence(w) == ("alice", ["laptop"])
    l.kill()  # abnormal close counts too
    assert next_presence(w, 5) == ("alice", [])
    # a late subscriber gets the last state, retained
    w2 = im(clients, b, "dave", "pc", version=4)
    assert w2.subscribe("p2p/presence/+", 1) == [1]
    retained = {x.topic: x for x in drain(w2, 0.5)}
    assert "p2p/presence/alice" in retained, list(retained)
    msg = retained["p2p/presence/alice"]
    assert msg.retain and presence_of(msg) == ("alice", [])
    assert presence_of(retained["p2p/presence/carol"]) == ("carol", ["watch"])


def test_presence_retained_for_late_subscriber(broker, clients):
    b = broker(im_config())
    im(clients, b, "alice", "phone")
    im(clients, b, "alice", "pc")
    time.sleep(0.2)
    w = im(clients, b, "bob", "pc")
    assert w.subscribe("p2p/presence/alice", 1) == [1]
    msg = w.get(3)
    assert msg.retain
    assert presence_of(msg) == ("alice", ["pc", "phone"])


def test_presence_cannot_be_forged(broker, clients):
    """Clients may not publish on p2p/presence/... (v5 QoS 1: PUBACK 0x87);
    subscribers see only the broker's presence."""
    b = broker(im_config())
    w = im(clients, b, "carol", "watch")
    assert w.subscribe("p2p/presence/bob", 1) == [1]
    r, ack = im_raw(b, "alice@raw", mint("alice"), version=5)
    with r:
        assert ack.reason == 0
        r.send(m.publish("p2p/presence/bob", b'{"user":"bob","devices":["x"],"ts":1}',
                         qos=1, pid=3, retain=True, version=5))
        assert r.expect(m.PUBACK).reason == 0x87
    expect_exact(w, [], "watcher")


# ---------------------------------------------------------------- C clients

def test_libmosquitto_clients_as_devices(broker, clients):
    """Third-party C clients (libmosquitto's mosquitto_sub, v5, and
    mosquitto_pub, 3.1.1) as IM devices: the sub device gets its inbox
    without subscribing to it, the sync copy of its user's message sent
    elsewhere, and group messages, stamped; the pub device's message is
    stamped bob@sh for the v5 Paho receiver."""
    import shutil
    import subprocess
    from imhelp import token
    sub_bin = shutil.which("mosquitto_sub")
    pub_bin = shutil.which("mosquitto_pub")
    if not sub_bin or not pub_bin:
        pytest.skip("mosquitto clients not installed")
    b = broker(im_config())
    w = im(clients, b, "carol", "watch")
    assert w.subscribe("p2p/presence/alice", 1) == [1]
    hp = ["-h", b.host, "-p", str(b.port)]
    sub = subprocess.Popen([sub_bin] + hp + ["-V", "mqttv5", "-i", "alice@cli", "-u", "alice",
                                             "-P", token("alice", groups=TEAM), "-q", "1",
                                             "-t", "g/talk/team", "-C", "3", "-W", "8",
                                             "-F", "%t|%p|%P"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 5 * SLOW
        while True:  # presence tells when the device is online
            user, devs = presence_of(w.get(max(0.1, deadline - time.monotonic())))
            if "cli" in devs:
                break
        time.sleep(0.2)  # its SUBSCRIBE
        phone = im(clients, b, "alice", "phone", groups=TEAM)
        phone.publish("p2p/talk/bob", b"sync me", qos=1)
        r = subprocess.run([pub_bin] + hp + ["-V", "mqttv311", "-i", "bob@sh", "-u", "bob",
                                             "-P", token("bob", groups=TEAM), "-q", "1",
                                             "-t", "p2p/talk/alice", "-m", "from shell"],
                           capture_output=True, text=True, timeout=10 * SLOW)
        assert r.returncode == 0, r.stderr
        assert phone.get(3).payload == b"from shell"
        bob = im(clients, b, "bob", "pc", groups=TEAM)
        bob.publish("g/talk/team", b"grp", qos=1)
        out, err = sub.communicate(timeout=10 * SLOW)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.communicate()
    lines = out.splitlines()
    assert [l.split("|")[:2] for l in lines] == [["p2p/talk/bob", "sync me"],
                                                 ["p2p/talk/alice", "from shell"],
                                                 ["g/talk/team", "grp"]], (out, err)
    for line, who in zip(lines, ("alice@phone", "bob@sh", "bob@pc")):
        assert who in line.split("|")[2], line


# ---------------------------------------------------------------- restarts

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


def test_sync_copy_and_stamp_survive_restart(store_broker, clients):
    """An offline device's queued sync copy and inbox message survive a
    broker restart, with their from stamps, in order."""
    sb = store_broker(im_config())
    b = sb.start()
    tab = im(clients, b, "alice", "tab", persistent=True)
    tab.disconnect()
    phone = im(clients, b, "alice", "phone")
    phone.publish("p2p/talk/bob", b"before restart", qos=1)
    bob = im(clients, b, "bob", "pc")
    bob.publish("p2p/talk/alice", b"reply", qos=1)
    phone.stop()
    bob.stop()
    b = sb.restart()
    tab2 = im(clients, b, "alice", "tab", persistent=True)
    assert tab2.session_present
    got = expect_exact(tab2, [("p2p/talk/bob", b"before restart"),
                              ("p2p/talk/alice", b"reply")], "alice@tab")
    assert [stamp(x) for x in got] == ["alice@phone", "bob@pc"]


def test_presence_not_stale_after_restart(store_broker, clients):
    """Devices online when the broker stopped are not reported online by
    the retained presence after a restart (nobody is connected yet)."""
    sb = store_broker(im_config())
    b = sb.start()
    c, ack = im_raw(b, "alice@phone", mint("alice"))
    assert ack.reason == 0
    try:
        time.sleep(0.2)
        b = sb.restart()
    finally:
        c.close()
    w = im(clients, b, "bob", "pc")
    assert w.subscribe("p2p/presence/alice", 1) == [1]
    msgs = drain(w, 0.5)
    for x in msgs:
        assert presence_of(x) == ("alice", []), x.payload


# ---------------------------------------------------------------- wills (row 22)

@pytest.mark.parametrize("will_version", [5, 4])
def test_row22_will_is_stamped_and_synced(broker, clients, will_version):
    """A Will of an IM device is one of its publications: a forged `from`
    in the Will is replaced by the device's own user@device, the user's
    other devices get the sync copy, and the device's own other
    subscriptions do not echo it (BAD_INPUTS row 22)."""
    b = broker(im_config())
    bob = im(clients, b, "bob", "pc")
    bob4 = im(clients, b, "bob", "old", version=4)
    tablet = im(clients, b, "mallory", "tablet")
    will = {"topic": "p2p/talk/bob", "payload": b"gone", "qos": 1}
    if will_version == 5:
        will["properties"] = props(PacketTypes.WILLMESSAGE,
                                   UserProperty=[("from", "carol@laptop")])
    w = im(clients, b, "mallory", "phone", version=will_version, will=will)
    w.kill()  # no DISCONNECT: the will goes out
    got = expect_exact(bob, [("p2p/talk/bob", b"gone")], "bob@pc")
    assert from_props(got[0]) == ["mallory@phone"], from_props(got[0])
    # and, like any chat message, it has its id in the conversation's log
    assert "id" in dict(got[0].properties.UserProperty)
    expect_exact(bob4, [("p2p/talk/bob", b"gone")], "bob@old")
    sync = expect_exact(tablet, [("p2p/talk/bob", b"gone")], "mallory@tablet")
    assert from_props(sync[0]) == ["mallory@phone"], from_props(sync[0])
