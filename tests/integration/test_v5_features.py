"""MQTT 5 features: message expiry, topic aliases, properties, sizes, AUTH."""
import time

import pytest

import mqttraw as m
from conftest import assert_alive, raw, raw_socket, props, PacketTypes


def test_message_expiry_drops_expired_queued_message(broker, clients):
    """[MQTT-3.3.2-5] a message with expiry 1 s queued for an offline session
    is not delivered after 2 s; one with a longer expiry is."""
    b = broker()
    cp = props(PacketTypes.CONNECT, SessionExpiryInterval=60)
    s = clients(b, "expiry-off", version=5, clean=False, properties=cp)
    s.subscribe("exp/t", 1)
    s.disconnect()
    p = clients(b, version=5)
    p.publish("exp/t", b"short", qos=1, properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    p.publish("exp/t", b"long", qos=1, properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=60))
    time.sleep(2.0)
    s2 = clients(b, "expiry-off", version=5, clean=False, properties=cp)
    msg = s2.get()
    assert msg.payload == b"long"
    s2.expect_none(0.5)


def test_message_expiry_remaining_interval_forwarded(broker):
    """[MQTT-3.3.2-6] the forwarded Message Expiry Interval is the received
    value minus the time waited: <= 60."""
    b = broker()
    with raw(b, version=5) as sub:
        sub.send(m.subscribe(1, [("exp/fwd", 1)], version=5))
        sub.expect(m.SUBACK)
        with raw(b, version=5) as pub:
            pub.send(m.publish("exp/fwd", b"x", qos=1, pid=1, version=5,
                               properties=[("message_expiry_interval", 60)]))
            pub.expect(m.PUBACK)
        p = sub.expect(m.PUBLISH)
        assert 0 < p.properties.get("message_expiry_interval", 0) <= 60, p


def test_message_expiry_on_retained(broker):
    """[MQTT-3.3.2-5] a retained message whose expiry passed is not sent to
    new subscribers; its sibling retained with a longer expiry, subscribed
    in the same SUBSCRIBE, is (the positive control)."""
    b = broker()
    with raw(b, version=5) as pub:
        pub.send(m.publish("exp/ret", b"x", qos=1, pid=1, retain=True, version=5,
                           properties=[("message_expiry_interval", 1)]))
        pub.expect(m.PUBACK)
        pub.send(m.publish("exp/ret-keep", b"k", qos=1, pid=2, retain=True, version=5,
                           properties=[("message_expiry_interval", 600)]))
        pub.expect(m.PUBACK)
    time.sleep(2.0)
    with raw(b, version=5) as sub:
        sub.send(m.subscribe(1, [("exp/ret", 1), ("exp/ret-keep", 1)], version=5))
        sub.expect(m.SUBACK)
        got = sub.expect(m.PUBLISH)
        assert got.topic == "exp/ret-keep" and got.payload == b"k" and got.retain, got
        if got.qos:
            sub.send(m.ack(m.PUBACK, got.pid, version=5))
        sub.assert_quiet(0.5)


def test_topic_alias_client_to_server(broker):
    """[MQTT-3.3.2-12] PUBLISH with topic + alias sets the alias; a later
    PUBLISH with empty topic and the alias goes to that topic."""
    b = broker({"topic_alias_maximum": 10})
    with raw(b, version=5) as sub:
        sub.send(m.subscribe(1, [("alias/t", 1)], version=5))
        sub.expect(m.SUBACK)
        with raw(b, version=5) as pub:
            assert pub.connack.properties.get("topic_alias_maximum", 0) >= 1
            pub.send(m.publish("alias/t", b"one", qos=1, pid=1, version=5,
                               properties=[("topic_alias", 1)]))
            pub.expect(m.PUBACK)
            pub.send(m.publish("", b"two", qos=1, pid=2, version=5, properties=[("topic_alias", 1)]))
            pub.expect(m.PUBACK)
        msgs = [sub.expect(m.PUBLISH) for _ in range(2)]
        assert [(p.topic, p.payload) for p in msgs] == [("alias/t", b"one"), ("alias/t", b"two")]


@pytest.mark.parametrize("alias", [0, 11])
def test_invalid_topic_alias_disconnects(broker, alias):
    """[MQTT-3.3.2-8][MQTT-3.3.2-9] topic alias 0 or above the server's Topic
    Alias Maximum: DISCONNECT 0x94 (topic alias invalid; Mosquitto says 0x81
    for alias 0) and close."""
    b = broker({"topic_alias_maximum": 10})
    with raw(b, version=5) as c:
        c.send(m.publish("alias/bad", b"x", qos=0, version=5, properties=[("topic_alias", alias)]))
        c.expect_closed(allow_disconnect={0x94, 0x81, 0x82})
    assert_alive(b, version=5)


@pytest.mark.imqtt_only
@pytest.mark.parametrize("alias", [0, 11])
def test_invalid_topic_alias_disconnects_0x94(broker, alias):
    """[MQTT-3.3.2-8][MQTT-3.3.2-9] imqtt answers alias 0 and alias > max
    with DISCONNECT 0x94 exactly, then closes."""
    b = broker({"topic_alias_maximum": 10})
    with raw(b, version=5) as c:
        c.send(m.publish("alias/bad", b"x", qos=0, version=5, properties=[("topic_alias", alias)]))
        seen = c.expect_closed(allow_disconnect={0x94})
        assert seen and seen[0].type == m.DISCONNECT, seen


def test_unknown_topic_alias_with_empty_topic_is_protocol_error(broker):
    """[MQTT-3.3.4] BAD_INPUTS row 5: empty topic with an alias never set:
    DISCONNECT 0x82 (protocol error) or close; broker alive."""
    b = broker({"topic_alias_maximum": 10})
    with raw(b, version=5) as c:
        c.send(m.publish("", b"x", qos=1, pid=1, version=5, properties=[("topic_alias", 3)]))
        c.expect_closed(allow_disconnect={0x82, 0x94})
    assert_alive(b, version=5)


def test_server_to_client_topic_alias_allowed(broker, clients):
    """[MQTT-3.3.2-10] a client announcing Topic Alias Maximum 5 may get
    aliases from the server; messages on several topics arrive correctly."""
    b = broker()
    with raw(b, version=5, properties=[("topic_alias_maximum", 5)]) as sub:
        sub.send(m.subscribe(1, [("talias/#", 0)], version=5))
        sub.expect(m.SUBACK)
        pub = clients(b, version=5)
        sent = [("talias/%d" % (i % 3), b"%d" % i) for i in range(9)]
        for t, pl in sent:
            pub.publish(t, pl, qos=1)
        aliases = {}
        got = []
        for _ in sent:
            p = sub.expect(m.PUBLISH)
            a = p.properties.get("topic_alias")
            topic = p.topic
            if a is not None:
                assert 1 <= a <= 5, p
                if topic:
                    aliases[a] = topic
                else:
                    topic = aliases[a]
            assert topic, p
            got.append((topic, p.payload))
        assert got == sent


def test_user_properties_kept_in_order(broker, clients):
    """[MQTT-3.3.2-17][MQTT-3.3.2-18] user properties are forwarded
    unaltered and in order, duplicates kept."""
    b = broker()
    s = clients(b, version=5)
    s.subscribe("up/t", 1)
    ups = [("a", "1"), ("b", "2"), ("a", "3"), ("z", ""), ("k", "v\u00e9")]
    clients(b, version=5).publish("up/t", b"x", qos=1,
                                  properties=props(PacketTypes.PUBLISH, UserProperty=ups))
    assert s.get().properties.UserProperty == ups


def test_payload_format_and_content_type_passed_through(broker, clients):
    """[MQTT-3.3.2-4][MQTT-3.3.2-20] Payload Format Indicator and Content
    Type are forwarded unaltered."""
    b = broker()
    s = clients(b, version=5)
    s.subscribe("pf/t", 1)
    clients(b, version=5).publish("pf/t", "héllo".encode(), qos=1, properties=props(
        PacketTypes.PUBLISH, PayloadFormatIndicator=1, ContentType="text/plain; charset=utf-8"))
    msg = s.get()
    assert msg.properties.PayloadFormatIndicator == 1
    assert msg.properties.ContentType == "text/plain; charset=utf-8"


def test_response_topic_and_correlation_data_passed_through(broker, clients):
    """[MQTT-3.3.2-15][MQTT-3.3.2-16] Response Topic and Correlation Data are
    forwarded unaltered (request/response)."""
    b = broker()
    s = clients(b, version=5)
    s.subscribe("req/t", 1)
    clients(b, version=5).publish("req/t", b"q", qos=1, properties=props(
        PacketTypes.PUBLISH, ResponseTopic="resp/abc", CorrelationData=b"\x00\x01\xffcorr"))
    msg = s.get()
    assert msg.properties.ResponseTopic == "resp/abc"
    assert msg.properties.CorrelationData == b"\x00\x01\xffcorr"


def test_client_maximum_packet_size_respected(broker):
    """[MQTT-3.1.2-25] a client announcing Maximum Packet Size 100 does not
    receive a 200-byte message (discarded for it); others do; a small one
    still arrives."""
    b = broker()
    with raw(b, version=5, properties=[("maximum_packet_size", 100)]) as small, \
            raw(b, version=5) as big:
        for c in (small, big):
            c.send(m.subscribe(1, [("mps/t", 1)], version=5))
            c.expect(m.SUBACK)
        with raw(b, version=5) as pub:
            pub.send(m.publish("mps/t", b"B" * 200, qos=1, pid=1, version=5))
            pub.expect(m.PUBACK)
            pub.send(m.publish("mps/t", b"small", qos=1, pid=2, version=5))
            pub.expect(m.PUBACK)
        assert big.expect(m.PUBLISH).payload == b"B" * 200
        assert big.expect(m.PUBLISH).payload == b"small"
        p = small.expect(m.PUBLISH)
        assert p.payload == b"small", "oversized message sent to client: %d bytes" % len(p.body)


@pytest.mark.parametrize("version", [4, 5])
def test_packet_over_server_max_packet_size_rejected(broker, version):
    """[MQTT-3.2.2-15] a packet larger than max_packet_size: v5 DISCONNECT
    0x95 (packet too large) or close; 3.1.1 close."""
    b = broker({"max_packet_size": 1000})
    with raw(b, version=version) as c:
        if version == 5:
            assert c.connack.properties.get("maximum_packet_size") == 1000, c.connack
        c.try_send(m.publish("mps/big", b"x" * 2000, qos=1, pid=1, version=version))
        c.expect_closed(allow_disconnect={0x95} if version == 5 else None)
    assert_alive(b, version=version)


def test_connect_with_unsupported_auth_method_refused(broker):
    """[MQTT-4.12.0-1] CONNECT with an Authentication Method the server does
    not support: the server MAY send CONNACK 0x8C/0x87 and MUST close."""
    b = broker()
    with raw_socket(b, version=5) as c:
        c.send(m.connect("authm", version=5, properties=[("authentication_method", "SCRAM-SHA-1")]))
        p = c.recv_or_closed()
        if p is not None:
            assert p.type == m.CONNACK and p.reason in (0x8C, 0x87), p
            c.expect_closed()
    assert_alive(b, version=5)


@pytest.mark.imqtt_only
def test_connect_with_auth_method_refused_0x8c(broker):
    """[MQTT-4.12.0-1] imqtt answers CONNACK 0x8C (bad authentication method),
    then closes.  (imqtt_only: Mosquitto closes without CONNACK.)"""
    b = broker()
    with raw_socket(b, version=5) as c:
        c.send(m.connect("authm", version=5, properties=[("authentication_method", "SCRAM-SHA-1")]))
        p = c.expect(m.CONNACK)
        assert p.reason == 0x8C, p
        c.expect_closed()
    assert_alive(b, version=5)


def test_auth_packet_without_enhanced_auth_is_protocol_error(broker):
    """[MQTT-4.12.0-6]/[MQTT-3.15] an AUTH packet when no authentication
    method was given in CONNECT: protocol error, DISCONNECT 0x82 or close."""
    b = broker()
    with raw(b, version=5) as c:
        c.send(m.packet(m.AUTH, 0, b"\x18\x00"))
        c.expect_closed(allow_disconnect={0x82, 0x8C})
    assert_alive(b, version=5)


def test_v5_connack_request_problem_information(broker):
    """[MQTT-3.1.2-29] with Request Problem Information 0 the server may
    still send a reason string only on CONNACK/DISCONNECT; a normal
    subscribe/publish flow works."""
    b = broker()
    with raw(b, version=5, properties=[("request_problem_information", 0)]) as c:
        c.send(m.subscribe(1, [("rpi/t", 1)], version=5))
        p = c.expect(m.SUBACK)
        assert "reason_string" not in p.properties and "user_property" not in p.properties
