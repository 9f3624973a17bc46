"""Shared subscriptions (MQTT 5 4.8.2)."""
import pytest

import mqttraw as m
from conftest import assert_alive, raw, MOSQUITTO


def test_shared_subscription_each_message_to_exactly_one_member(broker, clients):
    """[MQTT-4.8.2-2] $share/g/topic with two members: 10 messages are split
    between them, each message delivered to exactly one member; a
    non-shared subscriber gets all 10."""
    b = broker()
    m1 = clients(b, version=5)
    m2 = clients(b, version=5)
    plain = clients(b, version=5)
    m1.subscribe("$share/g/shr/t", 1)
    m2.subscribe("$share/g/shr/t", 1)
    plain.subscribe("shr/t", 1)
    pub = clients(b, version=5)
    for i in range(10):
        pub.publish("shr/t", b"%d" % i, qos=1)
    assert sorted(x.payload for x in plain.get_n(10)) == sorted(b"%d" % i for i in range(10))
    got1, got2 = [], []
    total = 0
    import time
    deadline = time.monotonic() + 5
    while total < 10 and time.monotonic() < deadline:
        for cl, got in ((m1, got1), (m2, got2)):
            try:
                got.append(cl.messages.get(timeout=0.05).payload)
                total += 1
            except Exception:
                pass
    m1.expect_none(0.3)
    m2.expect_none(0.1)
    assert sorted(got1 + got2) == sorted(b"%d" % i for i in range(10)), (got1, got2)
    assert got1 and got2, "all messages went to one member: %r %r" % (got1, got2)


@pytest.mark.parametrize("filters", [
    ("$share/g+/t",),
    pytest.param(("$share//t", "$share/g"), marks=pytest.mark.imqtt_only),
    pytest.param(("$share/g/$share/h/t",), marks=pytest.mark.imqtt_only),
], ids=["wildcard-sharename", "empty-sharename-or-no-filter", "nested-share"])
def test_shared_subscription_invalid_share_names(broker, filters):
    """[MQTT-4.8.2-1][MQTT-4.8.2-2] a share name that is empty or holds a
    wildcard, or '$share/g' without a topic filter: imqtt answers SUBACK
    0x8F (the README promises it) and keeps the connection; against
    Mosquitto SUBACK 0x8F/0x9E/0x80 or close.  Broker alive.  ('$share//t'
    and '$share/g' are imqtt_only: Mosquitto 2.0.11 grants them; so is a
    nested '$share/g/$share/h/t', which imqtt refuses as meaningless.)"""
    b = broker()
    for f in filters:
        with raw(b, version=5) as c:
            c.send(m.subscribe(1, [(f, 1), ("shr/ok", 1)], version=5))
            p = c.recv_or_closed()
            if not MOSQUITTO:
                assert p is not None and p.type == m.SUBACK, (f, p)
                assert p.reasons == [0x8F, 1], (f, p)
            elif p is not None:
                if p.type == m.SUBACK:
                    assert p.reasons[0] in (0x8F, 0x9E, 0x80), (f, p)
                else:
                    assert p.type == m.DISCONNECT and p.reason >= 0x80, (f, p)
    assert_alive(b, version=5)


@pytest.mark.imqtt_only
def test_shared_subscription_retained_not_sent(broker):
    """MQTT 5 3.3.1.3: retained messages are sent "when a new Non-shared
    Subscription is made" only; a shared subscription gets none.
    (imqtt_only: Mosquitto 2.0.11 sends them.)"""
    b = broker()
    with raw(b, version=5) as pub:
        pub.send(m.publish("shr/ret", b"r", qos=1, pid=1, retain=True, version=5))
        pub.expect(m.PUBACK)
    with raw(b, version=5) as c:
        c.send(m.subscribe(1, [("$share/g/shr/ret", 1)], version=5))
        assert c.expect(m.SUBACK).reasons == [1]
        c.assert_quiet(0.5)
