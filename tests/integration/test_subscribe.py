"""SUBSCRIBE / UNSUBSCRIBE (MQTT 3.1.1 3.8-3.11, MQTT 5 3.8-3.11, 4.7)."""
import pytest

import mqttraw as m
from conftest import assert_alive, raw, ACL_NOSUBSCRIBE, MOSQUITTO, mqtt, props, PacketTypes


@pytest.mark.imqtt_only
@pytest.mark.parametrize("version,bad", [(4, 0x80), (5, 0x8F)])
def test_mixed_valid_and_invalid_filters_get_per_filter_results(broker, version, bad):
    """[MQTT-3.9.3-1][MQTT-3.8.4-5] one SUBACK return code per filter, in
    order: granted QoS for valid filters, 0x80 (3.1.1) / 0x8F (v5, topic
    filter invalid) for the malformed one.  (imqtt_only: Mosquitto closes
    the connection on any invalid filter.)"""
    b = broker()
    with raw(b, version=version) as c:
        c.send(m.subscribe(1, [("ok/a", 1), ("bad/#/x", 1), ("ok/+/c", 2), ("bad+", 0)],
                           version=version))
        p = c.expect(m.SUBACK)
        assert p.pid == 1 and p.reasons == [1, bad, 2, bad], p
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_invalid_filter_refused_or_closed(broker, version):
    """[MQTT-4.7.1-2][MQTT-4.7.1-3] an invalid filter ('#' not last, '+'
    inside a level) is never accepted.  imqtt (README): SUBACK 0x8F (3.1.1:
    0x80) for that filter, the connection stays.  Against Mosquitto, which
    closes the connection: SUBACK failure or close.  Broker alive."""
    b = broker()
    with raw(b, version=version) as c:
        c.send(m.subscribe(1, [("a/#/b", 1)], version=version))
        p = c.recv_or_closed()
        if not MOSQUITTO:
            assert p is not None and p.type == m.SUBACK, p
            assert p.reasons == [0x8F if version == 5 else 0x80], p
            c.send(m.pingreq())
            c.expect(m.PINGRESP)
        elif p is not None and p.type == m.SUBACK:
            assert p.reasons[0] >= 0x80, p
        else:
            assert p is None or (p.type == m.DISCONNECT and p.reason >= 0x80), p
    assert_alive(b)


@pytest.mark.imqtt_only
@pytest.mark.parametrize("version,code", [(4, 0x80), (5, 0x87)])
def test_acl_denied_filter(broker, version, code):
    """[MQTT-3.9.3] ACL denies test/nosubscribe: 0x80 (3.1.1) / 0x87 (v5, not
    authorized); the other filter in the same SUBSCRIBE is granted.
    (imqtt_only: Mosquitto 2.0.11's acl_file grants the SUBSCRIBE and only
    filters messages at delivery.)"""
    b = broker(ACL_NOSUBSCRIBE)
    with raw(b, version=version) as c:
        c.send(m.subscribe(3, [("test/nosubscribe", 1), ("test/ok", 1)], version=version))
        p = c.expect(m.SUBACK)
        assert p.reasons == [code, 1], p


def test_v5_unsuback_reason_codes(broker, clients):
    """[MQTT-3.11.3-1] UNSUBACK has one reason per filter: 0x00 success for a
    filter that existed, 0x11 no subscription existed."""
    b = broker()
    with raw(b, version=5) as c:
        c.send(m.subscribe(1, [("unsub/a", 1)], version=5))
        c.expect(m.SUBACK)
        c.send(m.unsubscribe(2, ["unsub/a", "unsub/never"], version=5))
        p = c.expect(m.UNSUBACK)
        assert p.pid == 2 and p.reasons == [0x00, 0x11], p


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_stops_delivery(broker, clients, version):
    """[MQTT-3.10.4-2] after UNSUBACK no new messages for that filter, while
    the subscription it still holds delivers (the positive control: a
    message published after the one to the dropped filter arrives first,
    order being kept per publisher, so nothing was on its way before it)."""
    b = broker()
    s = clients(b, version=version)
    s.subscribe("unsub/stop", 1)
    s.subscribe("unsub/keep", 1)
    s.unsubscribe("unsub/stop")
    pub = clients(b, version=version)
    pub.publish("unsub/stop", b"x", qos=1)
    pub.publish("unsub/keep", b"k", qos=1)
    got = s.get(5)
    assert (got.topic, got.payload) == ("unsub/keep", b"k"), (got.topic, got.payload)
    s.expect_none(0.3)


@pytest.mark.imqtt_only
def test_v311_overlapping_subscriptions_one_copy_at_max_qos(broker):
    """[MQTT-3.3.5-1] overlapping subscriptions: the message is delivered
    respecting the maximum QoS of all matching subscriptions; one copy.
    (imqtt_only: Mosquitto 2.0.11 sends one copy at the QoS of the first
    matching subscription it finds, here 1.)"""
    b = broker()
    with raw(b) as c:
        c.send(m.subscribe(1, [("ov/#", 0), ("ov/+", 2), ("ov/x", 1)]))
        assert c.expect(m.SUBACK).reasons == [0, 2, 1]
        with raw(b) as pub:
            pub.send(m.publish("ov/x", b"one", qos=2, pid=1))
            pub.expect(m.PUBREC)
            pub.send(m.ack(m.PUBREL, 1))
            pub.expect(m.PUBCOMP)
        p = c.expect(m.PUBLISH)
        assert p.qos == 2 and p.payload == b"one"
        c.send(m.ack(m.PUBREC, p.pid))
        c.expect(m.PUBREL)
        c.send(m.ack(m.PUBCOMP, p.pid))
        c.assert_quiet(0.5)


def test_v5_overlapping_subscriptions_carry_all_subscription_ids(broker):
    """[MQTT-3.3.4-2][MQTT-3.3.4-4][MQTT-3.3.4-5] v5 overlapping subscriptions
    with identifiers: one copy carrying every matching identifier, or one
    copy per subscription each with its own identifier; max QoS respected."""
    b = broker()
    with raw(b, version=5) as c:
        c.send(m.subscribe(1, [("ov5/#", 0)], version=5, properties=[("subscription_identifier", 11)]))
        c.expect(m.SUBACK)
        c.send(m.subscribe(2, [("ov5/+", 1)], version=5, properties=[("subscription_identifier", 22)]))
        c.expect(m.SUBACK)
        with raw(b, version=5) as pub:
            pub.send(m.publish("ov5/x", b"ids", qos=1, pid=1, version=5))
            pub.expect(m.PUBACK)
        p = c.expect(m.PUBLISH)
        ids = p.properties.get("subscription_identifier", [])
        if sorted(ids) == [11, 22]:
            assert p.qos == 1
            c.assert_quiet(0.5)
        else:
            q = c.expect(m.PUBLISH)
            got = {tuple(p.properties.get("subscription_identifier", [])): p.qos,
                   tuple(q.properties.get("subscription_identifier", [])): q.qos}
            assert got == {(11,): 0, (22,): 1}, got


@pytest.mark.imqtt_only
def test_v5_overlapping_subscriptions_single_copy(broker):
    """[MQTT-3.3.4-4] imqtt sends one copy with all subscription identifiers."""
    b = broker()
    with raw(b, version=5) as c:
        c.send(m.subscribe(1, [("ov5/#", 0)], version=5, properties=[("subscription_identifier", 11)]))
        c.expect(m.SUBACK)
        c.send(m.subscribe(2, [("ov5/+", 1)], version=5, properties=[("subscription_identifier", 22)]))
        c.expect(m.SUBACK)
        with raw(b, version=5) as pub:
            pub.send(m.publish("ov5/x", b"ids", qos=1, pid=1, version=5))
            pub.expect(m.PUBACK)
        p = c.expect(m.PUBLISH)
        assert sorted(p.properties.get("subscription_identifier", [])) == [11, 22] and p.qos == 1, p
        c.send(m.ack(m.PUBACK, p.pid, version=5))
        c.assert_quiet(0.5)


def test_dollar_topics_not_matched_by_wildcards(broker):
    """[MQTT-4.7.2-1] '#' and '+/...' do not match topics starting with '$';
    BAD_INPUTS row 6: a '$' topic that is not $SYS does not hurt the broker."""
    b = broker()
    with raw(b, version=5) as wild, raw(b, version=5) as dollar:
        wild.send(m.subscribe(1, [("#", 0), ("+/x", 0)], version=5))
        wild.expect(m.SUBACK)
        dollar.send(m.subscribe(1, [("$test/#", 0)], version=5))
        dollar.expect(m.SUBACK)
        with raw(b, version=5) as pub:
            pub.send(m.publish("$test/x", b"dollar", qos=1, pid=1, version=5))
            p = pub.expect(m.PUBACK)
            pub.send(m.publish("plain/x", b"plain", qos=1, pid=2, version=5))
            pub.expect(m.PUBACK)
        got = dollar.recv_or_closed()
        if p.reason == 0:
            assert got.topic == "$test/x", got
        # '#' gets plain/x twice at most (two matching subs, one copy each or
        # one in total) and never a '$' topic.
        while True:
            try:
                q = wild.recv(0.7)
            except TimeoutError:
                break
            assert q.type == m.PUBLISH and not q.topic.startswith("$"), q
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_qos_3_is_malformed(broker, version):
    """[MQTT-3.8.3-4] requested QoS 3 (v5: reserved option bits) is malformed:
    close (v5: DISCONNECT 0x81 may come first)."""
    b = broker()
    with raw(b, version=version) as c:
        c.send(m.subscribe(1, [("q3/t", 3)], version=version))
        c.expect_closed(allow_disconnect={0x81, 0x82} if version == 5 else None)
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_without_filters_is_malformed(broker, version):
    """[MQTT-3.8.3-3] a SUBSCRIBE with no filter is a protocol violation: close."""
    b = broker()
    with raw(b, version=version) as c:
        c.send(m.subscribe(1, [], version=version))
        c.expect_closed(allow_disconnect={0x81, 0x82} if version == 5 else None)
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_wrong_fixed_header_flags_closes(broker, version):
    """[MQTT-3.8.1-1] SUBSCRIBE fixed-header flags must be 0010: else close."""
    b = broker()
    with raw(b, version=version) as c:
        pkt = bytearray(m.subscribe(1, [("flags/t", 0)], version=version))
        pkt[0] = (m.SUBSCRIBE << 4)
        c.send(bytes(pkt))
        c.expect_closed(allow_disconnect={0x81} if version == 5 else None)
    assert_alive(b)


def test_v5_no_local(broker, clients):
    """[MQTT-3.8.3-3] No Local: the client does not get its own messages;
    others do."""
    b = broker()
    a = clients(b, version=5)
    a.subscribe("nolocal/t", options=mqtt.SubscribeOptions(qos=1, noLocal=True))
    other = clients(b, version=5)
    other.subscribe("nolocal/t", 1)
    a.publish("nolocal/t", b"mine", qos=1)
    assert other.get().payload == b"mine"
    a.expect_none(0.5)


def test_resubscribe_replaces_subscription(broker, clients):
    """[MQTT-3.8.4-3] a SUBSCRIBE for an existing filter replaces it: new QoS
    applies, only one copy delivered."""
    b = broker()
    s = clients(b, version=4)
    assert s.subscribe("resub/t", 0) == [0]
    assert s.subscribe("resub/t", 1) == [1]
    clients(b, version=4).publish("resub/t", b"x", qos=1)
    msg = s.get()
    assert msg.qos == 1
    s.expect_none(0.5)


def test_v5_subscription_identifier_delivered(broker, clients):
    """[MQTT-3.3.4-3] the Subscription Identifier of the matching
    subscription comes with the PUBLISH."""
    b = broker()
    s = clients(b, version=5)
    s.subscribe("subid/+", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=4711))
    clients(b, version=5).publish("subid/a", b"x", qos=1)
    msg = s.get()
    assert msg.properties.SubscriptionIdentifier == [4711]
