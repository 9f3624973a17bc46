"""Durable state survives SIGTERM and restart (issue 4): persistent
sessions at QoS 1 and 2 with queued and in-flight messages both ways,
retained messages, subscriptions, wills with delay, session expiry."""
import time

import pytest

import mqttraw
from mqttraw import PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK
from store_helpers import StoreBroker, connect, drain, session_props

pytestmark = pytest.mark.imqtt_only


@pytest.fixture
def store():
    made = []

    def make(durability="process", extra=None):
        sb = StoreBroker(durability, extra)
        made.append(sb)
        sb.start()
        return sb

    yield make
    for sb in made:
        sb.cleanup()


def subscribe(c, topic, qos, version=4, pid=1):
    c.send(mqttraw.subscribe(pid, [(topic, qos)], version=version))
    ack = c.expect(SUBACK)
    assert ack.reasons == [qos], ack


def publish_acked(c, topic, payload, qos, pid, version=4):
    c.send(mqttraw.publish(topic, payload, qos=qos, pid=pid, version=version))
    if qos == 1:
        assert c.expect(PUBACK).pid == pid
    elif qos == 2:
        assert c.expect(PUBREC).pid == pid
        c.send(mqttraw.ack(PUBREL, pid, version=version))
        assert c.expect(PUBCOMP).pid == pid


@pytest.mark.parametrize("version", [4, 5])
def test_offline_queue_survives_restart_in_order(store, version):
    sb = store()
    sub = connect(sb.b, "sub-q", version)
    subscribe(sub, "q/t", 2, version)
    sub.close()
    pub = connect(sb.b, "pub-q", version, clean=True)
    for i in range(30):
        publish_acked(pub, "q/t", b"m%d" % i, 1 + i % 2, i + 1, version)
    pub.close()
    sb.restart()
    sub = connect(sb.b, "sub-q", version)
    assert sub.connack.session_present
    got = drain(sub, 30, version)
    assert [p.payload for p in got] == [b"m%d" % i for i in range(30)]
    assert [p.qos for p in got] == [1 + i % 2 for i in range(30)]
    sub.assert_quiet(0.3)
    sub.close()
    rc, out = sb.check_store() if False else (0, "")
    assert rc == 0, out


def test_inflight_resent_with_dup_after_restart(store):
    sb = store()
    sub = connect(sb.b, "sub-dup")
    subscribe(sub, "d/t", 2)
    pub = connect(sb.b, "pub-dup", clean=True)
    publish_acked(pub, "d/t", b"one", 1, 1)
    publish_acked(pub, "d/t", b"two", 2, 2)
    publish_acked(pub, "d/t", b"three", 2, 3)
    got = drain(sub, 3, ack=False)
    # "three": PUBREC sent, PUBCOMP not: the broker must send PUBREL again.
    sub.send(mqttraw.ack(PUBREC, got[2].pid))
    assert sub.expect(PUBREL).pid == got[2].pid
    time.sleep(0.3)  # let the PUBREC state commit
    sub.close()
    pub.close()
    sb.restart()
    sub = connect(sb.b, "sub-dup")
    assert sub.connack.session_present
    p1 = sub.expect(PUBLISH)
    p2 = sub.expect(PUBLISH)
    rel = sub.expect(PUBREL)
    assert (p1.payload, p1.dup, p1.pid) == (b"one", True, got[0].pid)
    assert (p2.payload, p2.dup, p2.pid) == (b"two", True, got[1].pid)
    assert rel.pid == got[2].pid
    sub.send(mqttraw.ack(PUBACK, p1.pid))
    sub.send(mqttraw.ack(PUBREC, p2.pid))
    assert sub.expect(PUBREL).pid == p2.pid
    sub.send(mqttraw.ack(PUBCOMP, p2.pid))
    sub.send(mqttraw.ack(PUBCOMP, rel.pid))
    sub.assert_quiet(0.3)
    sub.close()
    sb.restart()
    sub = connect(sb.b, "sub-dup")
    sub.assert_quiet(0.5)  # everything was acknowledged: nothing comes back
    sub.close()


def test_incoming_qos2_awaiting_pubrel_survives_restart(store):
    sb = store()
    sub = connect(sb.b, "sub-in2")
    subscribe(sub, "i/t", 2)
    sub.close()
    pub = connect(sb.b, "pub-in2")
    pub.send(mqttraw.publish("i/t", b"once", qos=2, pid=7))
    assert pub.expect(PUBREC).pid == 7
    pub.close()
    sb.restart()
    pub = connect(sb.b, "pub-in2")
    assert pub.connack.session_present
    # The publisher did not see its PUBCOMP: it resends with DUP.
    pub.send(mqttraw.publish("i/t", b"once", qos=2, pid=7, dup=True))
    assert pub.expect(PUBREC).pid == 7
    pub.send(mqttraw.ack(PUBREL, 7))
    assert pub.expect(PUBCOMP).pid == 7
    sub = connect(sb.b, "sub-in2")
    got = drain(sub, 1)
    assert got[0].payload == b"once"
    sub.assert_quiet(0.5)  # exactly once
    pub.close()
    sub.close()


def test_retained_and_subscriptions_survive_restart(store):
    sb = store()
    pub = connect(sb.b, "pub-r", clean=True)
    pub.send(mqttraw.publish("r/a", b"A", qos=1, pid=1, retain=True))
    pub.expect(PUBACK)
    pub.send(mqttraw.publish("r/b", b"B", qos=1, pid=2, retain=True))
    pub.expect(PUBACK)
    pub.send(mqttraw.publish("r/b", b"", qos=1, pid=3, retain=True))  # clear
    pub.expect(PUBACK)
    pub.close()
    sub = connect(sb.b, "sub-r", version=5)
    sub.send(mqttraw.subscribe(1, [("s/+", 1)], version=5,
                               properties=[(0x0B, 42)]))
    sub.expect(SUBACK)
    sub.close()
    sb.restart()
    c = connect(sb.b, "look-r", clean=True)
    c.send(mqttraw.subscribe(1, [("r/#", 1)]))
    c.expect(SUBACK)
    got = drain(c, 1)
    assert (got[0].topic, got[0].payload, got[0].retain) == ("r/a", b"A", 1)
    c.assert_quiet(0.3)
    c.close()
    # The subscription came back (with its identifier): the offline
    # session receives what is published now.
    pub = connect(sb.b, "pub-r", clean=True)
    pub.send(mqttraw.publish("s/x", b"later", qos=1, pid=1))
    pub.expect(PUBACK)
    sub = connect(sb.b, "sub-r", version=5)
    got = drain(sub, 1, version=5)
    assert got[0].payload == b"later"
    assert got[0].properties.get("subscription_identifier") in (42, [42]), \
        got[0].properties
    sub.close()
    pub.close()


def test_will_with_delay_survives_restart(store):
    sb = store()
    w = connect(sb.b, "willer", version=5,
                properties=session_props(60),
                will={"topic": "w/t", "payload": b"gone", "qos": 1,
                      "properties": [(0x18, 2)]})  # will delay 2 s
    watcher = connect(sb.b, "watch-w", clean=True)
    subscribe(watcher, "w/t", 1)
    w.close()  # no DISCONNECT: the will is due in 2 s
    time.sleep(0.2)
    watcher.close()
    b = sb.restart()
    watcher = connect(b, "watch-w2", clean=True)
    subscribe(watcher, "w/t", 1)
    t0 = time.monotonic()
    got = drain(watcher, 1, timeout=6)
    assert got[0].payload == b"gone"
    assert time.monotonic() - t0 < 3.5
    watcher.assert_quiet(0.3)
    watcher.close()
    sb.restart()  # published once: it does not come back
    watcher = connect(sb.b, "watch-w3", clean=True)
    subscribe(watcher, "w/t", 1)
    watcher.assert_quiet(2.5)
    watcher.close()


def test_session_expiry_resumes_from_disconnect_time(store):
    sb = store()
    c = connect(sb.b, "short", version=5, properties=session_props(2))
    subscribe(c, "e/t", 1, version=5)
    c.send(mqttraw.disconnect(5))
    c.close()
    sb.restart()
    time.sleep(2.5)
    c = mqttraw.RawClient(sb.b.host, sb.b.port, version=5)
    ack = c.connect("short", clean=False, properties=session_props(2))
    assert ack.session_present == 0
    c.close()
    c = connect(sb.b, "long", version=5, properties=session_props(60))
    c.send(mqttraw.disconnect(5))
    c.close()
    sb.restart()
    c = mqttraw.RawClient(sb.b.host, sb.b.port, version=5)
    assert c.connect("long", clean=False,
                     properties=session_props(60)).session_present == 1
    c.close()


def test_clean_session_is_not_kept(store):
    sb = store()
    c = connect(sb.b, "clean-1", clean=True)
    subscribe(c, "c/t", 1)
    c.close()
    sb.restart()
    c = mqttraw.RawClient(sb.b.host, sb.b.port)
    assert c.connect("clean-1", clean=False).session_present == 0
    c.close()


def test_check_store_counts(store):
    sb = store()
    sub = connect(sb.b, "chk")
    subscribe(sub, "k/t", 1)
    sub.close()
    pub = connect(sb.b, "pub-chk", clean=True)
    for i in range(5):
        publish_acked(pub, "k/t", b"x", 1, i + 1)
    pub.send(mqttraw.publish("k/r", b"R", qos=1, pid=9, retain=True))
    pub.expect(PUBACK)
    pub.close()
    sb.stop()
    rc, out = sb.check_store()
    assert rc == 0, out
    assert "queue entries 5" in out and "retained 1" in out, out
    assert "problems 0" in out, out


def test_durability_full_and_none(store):
    for level, kept in (("full", True), ("none", False)):
        sb = store(level)
        sub = connect(sb.b, "lvl")
        subscribe(sub, "l/t", 1)
        sub.close()
        pub = connect(sb.b, "pub-lvl", clean=True)
        publish_acked(pub, "l/t", b"v", 1, 1)
        pub.close()
        sb.restart()
        sub = connect(sb.b, "lvl")
        assert sub.connack.session_present == (1 if kept else 0)
        if kept:
            assert drain(sub, 1)[0].payload == b"v"
        sub.close()


def test_data_dir_is_private(store):
    import os
    import stat
    sb = store()
    mode = stat.S_IMODE(os.stat(sb.data).st_mode)
    assert mode == 0o700, oct(mode)
    for name in os.listdir(sb.data):
        m = stat.S_IMODE(os.stat(os.path.join(sb.data, name)).st_mode)
        assert m & 0o077 == 0, (name, oct(m))


def test_expired_queued_messages_purged_at_startup(store):
    """Start-up purges queued messages that expired while the broker was down
    (issue 4): the log says how many, the store stays consistent, and the
    client gets only the message without an expiry."""
    sb = store()
    sub = connect(sb.b, "sub-exp", 5)
    subscribe(sub, "exp/t", 1, 5)
    sub.close()
    pub = connect(sb.b, "pub-exp", 5, clean=True)
    pub.send(mqttraw.publish("exp/t", b"short-lived", qos=1, pid=1, version=5,
                             properties=[(0x02, 1)]))  # Message Expiry 1 s
    assert pub.expect(PUBACK).pid == 1
    publish_acked(pub, "exp/t", b"lasting", 1, 2, 5)
    pub.close()
    sb.stop()
    time.sleep(2.2)
    rc, out = sb.check_store()
    assert rc == 0, out
    sb.start()
    sub = connect(sb.b, "sub-exp", 5)
    got = drain(sub, 1, 5)
    assert [p.payload for p in got] == [b"lasting"]
    sub.close()
    sb.stop()
    assert "purged 1 queued message" in sb.b.stderr_text()
    rc, out = sb.check_store()
    assert rc == 0, out


def test_stored_nested_share_subscription_dropped_at_start(store):
    """A store written before nested $share filters were refused may hold
    one ('$share/g/$share/h/t'): the broker still starts, warns, drops that
    subscription from the session and the store, and keeps the session's
    other subscriptions. The record is planted with python3-lmdb, as an
    older version would have written it (key: sid | filter)."""
    import lmdb  # python3-lmdb (scripts/setup)
    sb = store()
    sub = connect(sb.b, "nest")
    subscribe(sub, "n/plain", 1)
    subscribe(sub, "n/keep", 1, pid=2)
    sub.close()
    sb.stop()
    nested = b"$share/g/$share/h/t"
    env = lmdb.open(sb.data, max_dbs=16, subdir=True)
    with env.begin(write=True) as txn:
        subs = env.open_db(b"subs", txn=txn, create=False)
        keys = [k for k, _ in txn.cursor(db=subs) if k.endswith(b"n/plain")]
        assert len(keys) == 1, keys
        value = txn.get(keys[0], db=subs)
        txn.delete(keys[0], db=subs)
        txn.put(keys[0][:8] + nested, value, db=subs)
    env.close()

    sb.start()
    assert "dropped: not a valid filter" in sb.b.stderr_text()
    sub = connect(sb.b, "nest")
    assert sub.connack.session_present
    pub = connect(sb.b, "pub-nest", clean=True)
    publish_acked(pub, "n/keep", b"still here", 1, 1)
    pub.close()
    assert [p.payload for p in drain(sub, 1)] == [b"still here"]
    sub.close()
    sb.stop()
    env = lmdb.open(sb.data, max_dbs=16, subdir=True, readonly=True, lock=False)
    with env.begin() as txn:
        subs = env.open_db(b"subs", txn=txn, create=False)
        left = [k[8:] for k, _ in txn.cursor(db=subs)]
    env.close()
    assert left == [b"n/keep"], left
    rc, out = sb.check_store()
    assert rc == 0, out
