"""Pure-protocol rows of shared/BAD_INPUTS.md (1, 2, 4, 5, 6, 7, 8, 9, 15, 17).

Each sends the bad input over a raw socket, checks a clear protocol answer
(close, or CONNACK / DISCONNECT with a fitting reason code), that memory does
not grow, and that the broker keeps serving other clients.
"""
import os
import time

import pytest

import mqttraw as m
from conftest import assert_alive, raw, raw_socket, IMQTT_BIN, MOSQUITTO

MB = 1024


def _is_asan_build():
    if MOSQUITTO or not os.path.exists(IMQTT_BIN):
        return False
    with open(IMQTT_BIN, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


# Under ASan freed memory sits in quarantine (and TSan keeps shadow memory),
# so RSS is no measure of leaks there, and valgrind cannot run either;
# LeakSanitizer (checked at broker exit by the fixture) covers leaks.
ASAN = _is_asan_build()


def assert_rss_bounded(b, before_kb, limit_kb, what):
    after = b.rss_kb()
    if ASAN:
        return
    assert after - before_kb <= limit_kb, "%s: RSS grew %d kB (%d -> %d)" % (
        what, after - before_kb, before_kb, after)


def huge_header(ptype_byte):
    """Fixed header declaring 268,435,455 bytes (the varint maximum)."""
    return bytes([ptype_byte, 0xFF, 0xFF, 0xFF, 0x7F])


def test_row1_connect_declaring_256mb_closed_promptly(broker):
    """BAD_INPUTS row 1 (CVE-2017-7651): a CONNECT header declaring 256 MB
    from an unauthenticated client is refused at once, without waiting for
    (or allocating) the body; 50 repetitions do not grow RSS."""
    b = broker({"max_packet_size": 1048576})
    with raw_socket(b) as c:
        c.send(huge_header(0x10))
        t0 = time.monotonic()
        c.expect_closed(timeout=3)
        assert time.monotonic() - t0 < 2.5
    before = b.rss_kb()
    for _ in range(50):
        with raw_socket(b) as c:
            c.send(huge_header(0x10))
            c.expect_closed(timeout=3)
    assert_rss_bounded(b, before, 4 * MB, "50 x 256 MB CONNECT headers")
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_row1_publish_declaring_256mb_after_connect_closed(broker, version):
    """BAD_INPUTS row 1, [MQTT-3.2.2-15]: a connected client's PUBLISH header
    declaring 256 MB (over max_packet_size): v5 DISCONNECT 0x95 or close,
    promptly; RSS bounded."""
    b = broker({"max_packet_size": 1048576})
    before = b.rss_kb()
    for _ in range(20):
        with raw(b, version=version) as c:
            c.send(huge_header(0x32))
            c.expect_closed(timeout=3, allow_disconnect={0x95} if version == 5 else None)
    assert_rss_bounded(b, before, 4 * MB, "20 x 256 MB PUBLISH headers")
    assert_alive(b, version=version)


def test_row2_large_non_connect_first_packet(broker):
    """BAD_INPUTS row 2 (CVE-2023-0809), [MQTT-3.1.0-1]: a first packet that
    is not CONNECT and declares a large body (PUBLISH 200 MB; PINGREQ-looking
    100 KB) is closed without CONNACK and without buffering it; RSS bounded."""
    b = broker({"max_packet_size": 1048576})
    before = b.rss_kb()
    for i in range(50):
        with raw_socket(b) as c:
            if i % 2:
                c.try_send(bytes([0x30]) + m.varint(200 * 1024 * 1024) + b"\x00\x01t" + b"x" * 1000)
            else:
                c.try_send(bytes([0xC0]) + m.varint(100000) + b"\x00" * 60000)
            c.expect_closed(timeout=3)
    assert_rss_bounded(b, before, 4 * MB, "50 large non-CONNECT first packets")
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_row4_subscribe_with_65000_levels(broker, version):
    """BAD_INPUTS row 4 (CVE-2019-11779): SUBSCRIBE with a 65,000-level
    filter, no stack overflow: imqtt answers SUBACK 0x8F (3.1.1: 0x80),
    the filter being over max_topic_levels, and keeps the connection (README:
    an invalid filter gets 0x8F, the others are served).  A PUBLISH to a
    32,001-level topic is an invalid topic name: v5 DISCONNECT 0x82
    (mqtt_reason_for_error: ETOPIC), 3.1.1 close; nobody receives it.
    Against Mosquitto: failure or close, and no crash."""
    b = broker()
    deep = "/" * 65000
    with raw(b, version=version) as c:
        c.send(m.subscribe(1, [(deep, 0), ("row4/ok", 0)], version=version))
        p = c.recv_or_closed()
        if MOSQUITTO:
            assert p is None or p.type in (m.SUBACK, m.DISCONNECT), p
        else:
            assert p is not None and p.type == m.SUBACK, p
            assert p.reasons == [0x8F if version == 5 else 0x80, 0], p
            c.send(m.pingreq())
            c.expect(m.PINGRESP)
    with raw(b, version=version) as c:
        c.send(m.subscribe(1, [("#", 0)], version=version))
        c.expect(m.SUBACK)
        with raw(b, version=version) as pub:
            pub.try_send(m.publish("a" + "/a" * 32000, b"deep", qos=0, version=version))
            pub.try_send(m.pingreq())
            if MOSQUITTO:
                try:
                    pub.recv_or_closed(3)
                except TimeoutError:
                    pass
            else:
                pub.expect_closed(allow_disconnect={0x82} if version == 5 else None)
                # A sibling that must arrive: the subscriber works, so the
                # deep topic's absence means it was refused.
                with raw(b, version=version) as pub2:
                    pub2.send(m.publish("row4/after", b"ok", qos=0, version=version))
                    got = c.expect(m.PUBLISH)
                    assert got.topic == "row4/after" and got.payload == b"ok", got


@pytest.mark.imqtt_only
def test_row4_max_topic_levels_enforced(broker):
    """BAD_INPUTS row 4: max_topic_levels 128: a 129-level filter is refused
    (v5 SUBACK 0x8F/0x97), a 128-level one granted."""
    b = broker({"max_topic_levels": 128})
    with raw(b, version=5) as c:
        c.send(m.subscribe(1, [("/".join(["l"] * 128), 0), ("/".join(["l"] * 129), 0)], version=5))
        p = c.expect(m.SUBACK)
        assert p.reasons[0] == 0 and p.reasons[1] in (0x8F, 0x97), p


@pytest.mark.parametrize("version", [4, 5])
def test_row5_publish_with_empty_topic(broker, version):
    """BAD_INPUTS row 5 (CVE-2021-34432), [MQTT-4.7.3-1]: PUBLISH with a
    zero-length topic and no topic alias: close (v5: DISCONNECT 0x82 /
    0x81 first allowed); broker alive."""
    b = broker()
    for qos in (0, 1):
        with raw(b, version=version) as c:
            c.send(m.publish("", b"payload", qos=qos, pid=1, version=version))
            c.expect_closed(allow_disconnect={0x81, 0x82, 0x90} if version == 5 else None)
    assert_alive(b, version=version)


@pytest.mark.parametrize("topic", ["$bad/topic", "$", "$SYSx/a", "$share"])
def test_row6_dollar_topic_not_sys(broker, topic):
    """BAD_INPUTS row 6 (CVE-2018-12543): PUBLISH to a '$' topic that is not
    $SYS never crashes the broker.  imqtt treats it as any topic on a
    listener without IM rules (docs/im.md restricts '$' topics on IM
    listeners only): PUBACK 0x00, the retained message is kept and sent to
    an exact subscription; the filters are granted, but '$share/#' (a share
    name '#') is refused with 0x8F (README).  Against Mosquitto: accepted
    or refused."""
    b = broker()
    with raw(b, version=5) as c:
        c.send(m.publish(topic, b"x", qos=1, pid=1, version=5, retain=True))
        p = c.recv_or_closed()
        if MOSQUITTO:
            assert p is None or p.type in (m.PUBACK, m.DISCONNECT), p
        else:
            assert p is not None and p.type == m.PUBACK and p.reason == 0, p
    with raw(b, version=5) as c:
        c.send(m.subscribe(1, [(topic, 1), (topic + "/#", 1)], version=5))
        p = c.recv_or_closed()
        if MOSQUITTO:
            assert p is None or p.type in (m.SUBACK, m.DISCONNECT), p
        else:
            assert p is not None and p.type == m.SUBACK, p
            assert p.reasons == [1, 0x8F if topic == "$share" else 1], p
            got = c.expect(m.PUBLISH)
            assert got.topic == topic and got.payload == b"x" and got.retain, got
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_row7_connack_from_client_closes(broker, version):
    """BAD_INPUTS row 7 (CVE-2021-28166), [MQTT-4.8.0-1]: CONNACK from a
    connected client closes its connection (see test_connect for SUBACK,
    PINGRESP, UNSUBACK); broker alive."""
    b = broker()
    with raw(b, version=version) as c:
        c.send(m.packet(m.CONNACK, 0, b"\x00\x00" + (b"\x00" if version == 5 else b"")))
        c.expect_closed(allow_disconnect={0x81, 0x82} if version == 5 else None)
    assert_alive(b, version=version)


@pytest.mark.parametrize("version,dup", [
    (4, True), (4, False), (5, False),
    # imqtt_only: Mosquitto 2.0.11 answers a v5 DUP retransmission of an
    # unreleased QoS 2 id with DISCONNECT 0x82.
    pytest.param(5, True, marks=pytest.mark.imqtt_only),
], ids=["v4-dup", "v4-nodup", "v5-nodup", "v5-dup"])
def test_row8_qos2_reusing_packet_id_without_pubrel(broker, version, dup):
    """BAD_INPUTS row 8 (CVE-2023-28366): 1000 QoS 2 PUBLISHes of 10 KB
    reusing packet id 1, never sending PUBREL.  With DUP=1 they are
    retransmissions: each gets PUBREC [MQTT-4.3.3-9]; without DUP the client
    reuses an id in use [MQTT-2.3.1-2], so the broker may also close it (v5
    DISCONNECT 0x82).  Either way the subscriber gets the message once
    [MQTT-4.3.3-2] and RSS stays bounded."""
    b = broker()
    payload = b"p" * 10240
    with raw(b, version=version) as sub, raw(b, version=version) as pub:
        sub.send(m.subscribe(1, [("row8/t", 2)], version=version))
        sub.expect(m.SUBACK)
        pub.send(m.publish("row8/t", payload, qos=2, pid=1, version=version))
        pub.expect(m.PUBREC)
        time.sleep(0.2)
        before = b.rss_kb()
        pkt = m.publish("row8/t", payload, qos=2, pid=1, dup=dup, version=version)
        closed = False
        for _ in range(10):
            if not pub.try_send(pkt * 100):
                closed = True
                break
            for _ in range(100):
                p = pub.recv_or_closed(5)
                if p is None or p.type == m.DISCONNECT:
                    # Mosquitto 2.0.11 intermittently closes a DUP flood too;
                    # imqtt must answer every retransmission with PUBREC.
                    assert not dup or MOSQUITTO, "retransmission with DUP=1 refused: %r" % p
                    assert p is None or p.reason == 0x82, p
                    closed = True
                    break
                assert p.type == m.PUBREC and p.pid == 1, p
            if closed:
                break
        assert_rss_bounded(b, before, 4 * MB, "1000 x 10 KB QoS 2 reusing id 1")
        if not closed:
            # Complete the flow; delivery may happen at PUBLISH or at PUBREL
            # (MQTT 4.3.3 method A or B).
            pub.send(m.ack(m.PUBREL, 1, version=version))
            pub.expect(m.PUBCOMP)
        p = sub.recv_or_closed(2) if not closed else None
        if p is None and not closed:
            raise AssertionError("message never delivered")
        try:
            if p is None:
                p = sub.recv(1)  # closed publisher: delivery optional
        except TimeoutError:
            p = None
        if p is not None:
            assert p.type == m.PUBLISH and p.payload == payload, p
            if p.qos == 2:
                sub.send(m.ack(m.PUBREC, p.pid, version=version))
                sub.expect(m.PUBREL)
                sub.send(m.ack(m.PUBCOMP, p.pid, version=version))
            sub.assert_quiet(0.5)
    assert_alive(b, version=version)


V5_BAD_CONNECT_PROPS = {
    # Topic Alias (0x23) is not a CONNECT property: malformed / protocol error
    "wrong-type-topic-alias": [("topic_alias", 1)],
    "duplicate-session-expiry": [("session_expiry_interval", 10), ("session_expiry_interval", 20)],
    "duplicate-receive-maximum": [("receive_maximum", 10), ("receive_maximum", 10)],
    "receive-maximum-zero": [("receive_maximum", 0)],
    "max-packet-size-zero": [("maximum_packet_size", 0)],
    "request-problem-info-2": [("request_problem_information", 2)],
    "unknown-property-0x7f": [(0x7F, 1)],
}


# imqtt's answer (proto/reason.c, MQTT 5 2.2.2.2 and 3.1.2.11): an
# identifier not valid for the packet, or unknown, is a Malformed Packet
# (0x81); a property twice or a forbidden value is a Protocol Error (0x82).
V5_BAD_CONNECT_CODES = {
    "wrong-type-topic-alias": 0x81,
    "unknown-property-0x7f": 0x81,
    "duplicate-session-expiry": 0x82,
    "duplicate-receive-maximum": 0x82,
    "receive-maximum-zero": 0x82,
    "max-packet-size-zero": 0x82,
    "request-problem-info-2": 0x82,
}


@pytest.mark.parametrize("name", sorted(V5_BAD_CONNECT_PROPS))
def test_row9_v5_connect_bad_properties(broker, name):
    """BAD_INPUTS row 9 (CVE-2021-34431, CVE-2023-3592), [MQTT-2.2.2-2]: a v5
    CONNECT with a property of the wrong packet type, duplicated, or out of
    range is never accepted: imqtt answers CONNACK 0x81 or 0x82 as the spec
    names the case (V5_BAD_CONNECT_CODES), then closes.  Against Mosquitto:
    CONNACK 0x81/0x82 or close."""
    b = broker()
    with raw_socket(b, version=5) as c:
        c.send(m.connect("row9", version=5, properties=V5_BAD_CONNECT_PROPS[name]))
        p = c.recv_or_closed()
        if MOSQUITTO:
            assert p is None or (p.type == m.CONNACK and p.reason in (0x81, 0x82)), p
        else:
            assert p is not None and p.type == m.CONNACK, p
            assert p.reason == V5_BAD_CONNECT_CODES[name], p
        if p is not None:
            c.expect_closed()
    assert_alive(b)


@pytest.mark.parametrize("props,code", [
    ([("subscription_identifier", 1)], 0x81),
    ([("will_delay_interval", 1), ("will_delay_interval", 2)], 0x82),
    ([("payload_format_indicator", 1), ("payload_format_indicator", 0)], 0x82),
    ([("topic_alias", 2)], 0x81),
], ids=["sub-id-in-will", "dup-will-delay", "dup-payload-format", "topic-alias-in-will"])
def test_row9_v5_will_bad_properties(broker, clients, props, code):
    """BAD_INPUTS row 9 (CVE-2023-3592): will properties of the wrong type
    (imqtt: CONNACK 0x81) or duplicated (0x82), then close; the will is
    never published, while a good will on the same topic is (the positive
    control).  Against Mosquitto: CONNACK 0x81/0x82 or close."""
    b = broker()
    w = clients(b, version=5)
    w.subscribe("row9/will", 0)
    with raw_socket(b, version=5) as c:
        c.send(m.connect("row9w", version=5,
                         will={"topic": "row9/will", "payload": b"w", "properties": props}))
        p = c.recv_or_closed()
        if MOSQUITTO:
            assert p is None or (p.type == m.CONNACK and p.reason in (0x81, 0x82)), p
        else:
            assert p is not None and p.type == m.CONNACK and p.reason == code, p
        if p is not None:
            c.expect_closed()
    good = raw(b, version=5, client_id="row9good",
               will={"topic": "row9/will", "payload": b"good"})
    good.close()
    assert w.get(5).payload == b"good"
    w.expect_none(0.3)
    assert_alive(b)


def test_row9_thousands_of_user_properties(broker):
    """BAD_INPUTS row 9 (CVE-2021-41039): CONNECT and PUBLISH with 5,000 user
    properties each: answered promptly (accepted or refused), no CPU burn,
    RSS bounded over 20 repetitions; broker alive."""
    b = broker()
    ups = [("user_property", ("k%d" % i, "v")) for i in range(5000)]
    before = None
    for i in range(20):
        with raw_socket(b, version=5) as c:
            t0 = time.monotonic()
            c.send(m.connect("row9u%d" % i, version=5, properties=ups))
            p = c.recv_or_closed(3)
            assert time.monotonic() - t0 < 2.5
            if p is not None and p.type == m.CONNACK and p.reason == 0:
                c.send(m.publish("row9/u", b"x", qos=1, pid=1, version=5, properties=ups))
                q = c.recv_or_closed(3)
                assert q is None or q.type in (m.PUBACK, m.DISCONNECT), q
        if i == 4:
            before = b.rss_kb()
    assert_rss_bounded(b, before, 4 * MB, "20 x 5000 user properties")
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_row15_five_byte_remaining_length(broker, version):
    """BAD_INPUTS row 15, [MQTT-1.5.5-1]: a remaining length of 5 bytes is
    malformed: close (v5: DISCONNECT 0x81 first allowed)."""
    b = broker()
    with raw(b, version=version) as c:
        c.send(bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]) + b"\x00" * 16)
        c.expect_closed(allow_disconnect={0x81, 0x95} if version == 5 else None)
    with raw_socket(b, version=version) as c:  # also as the first packet
        c.send(bytes([0x10, 0x80, 0x80, 0x80, 0x80, 0x01]))
        c.expect_closed()
    assert_alive(b)


def test_row15_five_byte_property_length(broker):
    """BAD_INPUTS row 15: a v5 PUBLISH whose property length is a 5-byte
    varint: malformed, DISCONNECT 0x81 or close."""
    b = broker()
    with raw(b, version=5) as c:
        body = m.mstr("row15/t") + bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x01]) + b"payload"
        c.send(m.packet(m.PUBLISH, 0, body))
        c.expect_closed(allow_disconnect={0x81})
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_row15_subscribe_without_options_byte(broker, version):
    """BAD_INPUTS row 15 (NanoMQ #2268): SUBSCRIBE whose last filter lacks
    the options byte: malformed, close."""
    b = broker()
    with raw(b, version=version) as c:
        body = m.u16(1) + (b"\x00" if version == 5 else b"") + m.mstr("row15/a")
        c.send(m.packet(m.SUBSCRIBE, 2, body))
        c.expect_closed(allow_disconnect={0x81} if version == 5 else None)
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [1, 2])
def test_row15_qos_publish_without_packet_id(broker, version, qos):
    """BAD_INPUTS row 15 (NanoMQ #2270), [MQTT-2.3.1-1]: a QoS > 0 PUBLISH
    that ends after the topic (no packet identifier): malformed, close."""
    b = broker()
    with raw(b, version=version) as c:
        c.send(m.packet(m.PUBLISH, qos << 1, m.mstr("row15/t")))
        c.expect_closed(allow_disconnect={0x81} if version == 5 else None)
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_publish_with_packet_id_zero_closes(broker, version):
    """[MQTT-2.3.1-1] QoS > 0 PUBLISH with packet identifier 0: close."""
    b = broker()
    with raw(b, version=version) as c:
        c.send(m.publish("pid0/t", b"x", qos=1, pid=0, version=version))
        c.expect_closed(allow_disconnect={0x81, 0x82} if version == 5 else None)
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_publish_qos3_and_wildcard_topic_close(broker, version):
    """[MQTT-3.3.1-4] PUBLISH QoS 3 and [MQTT-3.3.2-2] a wildcard in the
    topic name: close (v5: DISCONNECT 0x81/0x90 first allowed)."""
    b = broker()
    with raw(b, version=version) as c:
        c.send(m.packet(m.PUBLISH, 6, m.mstr("q3/t") + m.u16(1) + (b"\x00" if version == 5 else b"")))
        c.expect_closed(allow_disconnect={0x81, 0x82} if version == 5 else None)
    for topic in ("wild/+", "wild/#"):
        with raw(b, version=version) as c:
            c.send(m.publish(topic, b"x", qos=1, pid=1, version=version))
            c.expect_closed(allow_disconnect={0x81, 0x82, 0x90} if version == 5 else None)
    assert_alive(b)


BAD_UTF8 = {
    "invalid-sequence": b"bad/\xc3\x28",
    "nul": b"bad/\x00x",
    "surrogate": b"bad/\xed\xa0\x80",
    "overlong": b"bad/\xc0\xaf",
}


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("name", sorted(BAD_UTF8))
def test_row17_bad_utf8_in_topic(broker, version, name):
    """BAD_INPUTS row 17 (CVE-2017-7653), [MQTT-1.5.3-1][MQTT-1.5.3-2]: a
    topic name or filter with invalid UTF-8, U+0000 or a surrogate: close
    (v5: DISCONNECT 0x80/0x81/0x82/0x90 first allowed); never delivered."""
    b = broker()
    allow = {0x80, 0x81, 0x82, 0x90} if version == 5 else None
    with raw(b, version=version) as c:
        c.send(m.publish(BAD_UTF8[name], b"x", qos=1, pid=1, version=version))
        c.expect_closed(allow_disconnect=allow)
    with raw(b, version=version) as c:
        c.send(m.subscribe(1, [(BAD_UTF8[name], 0)], version=version))
        p = c.recv_or_closed()
        if p is not None and p.type == m.SUBACK:
            assert p.reasons[0] >= 0x80, p
        elif p is not None:
            assert p.type == m.DISCONNECT and p.reason in allow, p
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("field", ["client_id", "username"])
@pytest.mark.parametrize("name", sorted(BAD_UTF8))
def test_row17_bad_utf8_in_connect(broker, version, field, name):
    """BAD_INPUTS row 17, [MQTT-1.5.3-1][MQTT-1.5.3-2]: invalid UTF-8, U+0000
    or surrogates in client id / user name: CONNACK refusal (3.1.1: 0x02 /
    0x04 / 0x05; v5 >= 0x80) or close; never accepted."""
    b = broker()
    value = BAD_UTF8[name].replace(b"/", b"")
    kw = {"client_id": value} if field == "client_id" else {"client_id": "u17", "username": value}
    with raw_socket(b, version=version) as c:
        c.send(m.connect(version=version, **kw))
        p = c.recv_or_closed()
        if p is not None:
            assert p.type == m.CONNACK and p.reason != 0, p
            c.expect_closed()
    assert_alive(b)
