"""CONNECT validation (MQTT 3.1.1 section 3.1, MQTT 5 section 3.1)."""
import pytest

import mqttraw as m
from conftest import assert_alive, raw, raw_socket, MOSQUITTO


def expect_refused_then_closed(c, codes, timeout=5.0):
    """Either the connection is closed straight away, or a CONNACK with one
    of `codes` comes first and then the connection is closed."""
    p = c.recv_or_closed(timeout)
    if p is None:
        return None
    assert p.type == m.CONNACK, "expected CONNACK or close, got %r" % p
    assert p.reason in codes, "CONNACK reason 0x%02x not in %s" % (p.reason, [hex(x) for x in codes])
    c.expect_closed(timeout)
    return p


def test_bad_protocol_name_v311_closes(broker):
    """[MQTT-3.1.2-1] protocol name not "MQTT": the server MAY close the
    connection; it must not accept it."""
    b = broker()
    with raw_socket(b) as c:
        c.send(m.connect("badname", proto_name="MQTX"))
        expect_refused_then_closed(c, (0x01,))
    assert_alive(b)


def test_bad_protocol_name_v5_refused(broker):
    """[MQTT-3.1.2-1] (v5) bad protocol name: CONNACK 0x84 then close, or close."""
    b = broker()
    with raw_socket(b, version=5) as c:
        c.send(m.connect("badname5", version=5, proto_name="MQIsdp"))
        p = c.recv_or_closed()
        if p is not None:
            assert p.type == m.CONNACK and p.reason in (0x01, 0x84), p
            c.expect_closed()
    assert_alive(b)


def test_protocol_level_6_refused_v311_style(broker):
    """[MQTT-3.1.2-2] unsupported protocol level: CONNACK 0x01 (3.1.1
    format) or 0x84 (v5 format), then close."""
    b = broker()
    with raw_socket(b) as c:
        c.send(m.connect("level6", version=4, level=6))
        p = c.recv_or_closed()
        assert p is not None and p.type == m.CONNACK, "expected a CONNACK refusal, got %r" % p
        assert p.body[1] in (0x01, 0x84), p.body
        c.expect_closed()
    assert_alive(b)


@pytest.mark.imqtt_only
def test_protocol_level_6_gets_connack_0x01(broker):
    """[MQTT-3.1.2-2] imqtt answers an unknown level with the 3.1.1 CONNACK
    0x01 (unacceptable protocol version): 4 bytes, understood by every client."""
    b = broker()
    with raw_socket(b) as c:
        c.send(m.connect("level6", version=4, level=6))
        p = c.expect(m.CONNACK)
        assert p.body == b"\x00\x01", p.body
        c.expect_closed()


def test_protocol_level_6_v5_layout_refused(broker):
    """[MQTT-3.1.2-2] (v5) a CONNECT in v5 layout with level 6 is refused
    (CONNACK 0x01/0x84) and closed."""
    b = broker()
    with raw_socket(b, version=4) as c:
        c.send(m.connect("level6v5", version=5, level=6,
                         properties=[("session_expiry_interval", 10)]))
        p = c.recv_or_closed()
        if p is not None:
            assert p.type == m.CONNACK and p.body[1] in (0x01, 0x84), p
            c.expect_closed()
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_reserved_connect_flag_closes(broker, version):
    """[MQTT-3.1.2-3] the reserved CONNECT flag must be 0, else the server
    MUST treat it as malformed and close (v5: CONNACK 0x81 allowed first)."""
    b = broker()
    with raw_socket(b, version=version) as c:
        c.send(m.connect("reserved", version=version, reserved=True))
        expect_refused_then_closed(c, (0x81,) if version == 5 else ())
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_connect_fixed_header_flags_must_be_zero(broker, version):
    """[MQTT-2.2.2-2] CONNECT with fixed-header flags 0x01 is malformed: close."""
    b = broker()
    with raw_socket(b, version=version) as c:
        pkt = bytearray(m.connect("hdrflags", version=version))
        pkt[0] |= 0x01
        c.send(bytes(pkt))
        expect_refused_then_closed(c, (0x81,) if version == 5 else ())
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_will_qos_without_will_flag_closes(broker, version):
    """[MQTT-3.1.2-11][MQTT-3.1.2-13] will QoS != 0 with will flag 0 is malformed."""
    b = broker()
    with raw_socket(b, version=version) as c:
        pkt = bytearray(m.connect("willqos", version=version))
        # connect flags byte is right after "\x00\x04MQTT" + level: offset 2+6+1
        pkt[2 + 6 + 1] |= 0x08
        c.send(bytes(pkt))
        expect_refused_then_closed(c, (0x81,) if version == 5 else ())
    assert_alive(b)


def test_will_qos_3_closes(broker):
    """[MQTT-3.1.2-14] will QoS 3 is malformed."""
    b = broker()
    with raw_socket(b) as c:
        c.send(m.connect("willqos3", will={"topic": "w", "payload": b"x", "qos": 3}))
        expect_refused_then_closed(c, ())
    assert_alive(b)


def test_v311_empty_client_id_without_clean_session_refused(broker):
    """[MQTT-3.1.3-8] zero-byte client id with CleanSession 0: CONNACK 0x02
    (identifier rejected) and close."""
    b = broker()
    with raw_socket(b) as c:
        c.send(m.connect("", clean=False))
        p = c.expect(m.CONNACK)
        assert p.reason == 0x02, p
        c.expect_closed()
    assert_alive(b)


def test_v311_empty_client_id_with_clean_session_accepted(broker):
    """[MQTT-3.1.3-6] zero-byte client id with CleanSession 1: the server
    assigns an identifier and accepts."""
    b = broker()
    with raw_socket(b) as c:
        c.send(m.connect("", clean=True))
        p = c.expect(m.CONNACK)
        assert p.reason == 0 and p.session_present == 0, p


def test_v5_empty_client_id_gets_assigned_identifier(broker):
    """[MQTT-3.2.2-16] v5 zero-length client id: CONNACK 0 with an Assigned
    Client Identifier property."""
    b = broker()
    with raw_socket(b, version=5) as c:
        c.send(m.connect("", version=5))
        p = c.expect(m.CONNACK)
        assert p.reason == 0, p
        assigned = p.properties.get("assigned_client_identifier")
        assert assigned, "no Assigned Client Identifier in %r" % p
        # The session works under that id.
        c.send(m.subscribe(1, [("assigned/t", 1)], version=5))
        assert c.expect(m.SUBACK).reasons == [1]


def test_v5_empty_client_id_no_clean_start_accepted(broker):
    """[MQTT-3.1.3-6] v5 lets a zero-length client id come with Clean Start
    0; the server assigns an identifier."""
    b = broker()
    with raw_socket(b, version=5) as c:
        c.send(m.connect("", version=5, clean=False))
        p = c.expect(m.CONNACK)
        assert p.reason == 0 and p.properties.get("assigned_client_identifier"), p


@pytest.mark.parametrize("version", [4, 5])
def test_second_connect_closes(broker, version):
    """[MQTT-3.1.0-2] a second CONNECT is a protocol violation: close (v5:
    DISCONNECT 0x82 may come first)."""
    b = broker()
    c = raw(b, version=version, client_id="twice")
    with c:
        c.send(m.connect("twice", version=version))
        c.expect_closed(allow_disconnect={0x82} if version == 5 else None)
    assert_alive(b)


def test_first_packet_publish_closes_without_connack(broker):
    """[MQTT-3.1.0-1] the first packet must be CONNECT: a PUBLISH first is
    answered by closing, with no CONNACK."""
    b = broker()
    with raw_socket(b) as c:
        c.send(m.publish("early/topic", b"hello"))
        c.expect_closed()
    assert_alive(b)


def test_first_packet_large_pingreq_junk_closes(broker):
    """[MQTT-3.1.0-1], BAD_INPUTS row 2: a 100 KB PINGREQ-looking first packet
    is not CONNECT: closed without CONNACK and without reading it all."""
    b = broker()
    with raw_socket(b) as c:
        body = b"\x00" * 100000
        c.try_send(bytes([0xC0]) + m.varint(len(body)))
        c.try_send(body)
        c.expect_closed()
    assert_alive(b)


SERVER_ONLY = [
    m.packet(m.CONNACK, 0, b"\x00\x00"),
    m.packet(m.SUBACK, 0, b"\x00\x01\x00"),
    m.packet(m.PINGRESP, 0, b""),
    m.packet(m.UNSUBACK, 0, b"\x00\x01"),
]
SERVER_ONLY_IDS = ["CONNACK", "SUBACK", "PINGRESP", "UNSUBACK"]


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("pkt", SERVER_ONLY, ids=SERVER_ONLY_IDS)
def test_server_only_packets_from_client_close(broker, version, pkt):
    """[MQTT-4.8.0-1] BAD_INPUTS row 7 (CVE-2021-28166): a client sending a
    server-only packet after CONNECT is closed by imqtt (v5: DISCONNECT
    0x81 or 0x82 first, mqtt_reason_for_error) and the broker keeps
    serving others.  Mosquitto 2.0.11 silently ignores SUBACK, UNSUBACK
    and PINGRESP from a client: against it the packet must be either closed
    or ignored, which a PINGREQ sent after it tells apart (PINGRESP: the
    connection went on); it is never answered."""
    b = broker()
    c = raw(b, version=version)
    with c:
        c.send(pkt)
        if MOSQUITTO:
            c.try_send(m.pingreq())
            p = c.recv_or_closed(5)
            assert p is None or p.type in (m.PINGRESP, m.DISCONNECT), p
        else:
            # The v5 CONNACK/SUBACK/UNSUBACK here lack a property length:
            # Malformed (0x81) before they are found server-only (0x82).
            code = 0x82 if pkt[0] >> 4 == m.PINGRESP else 0x81
            c.expect_closed(allow_disconnect={code} if version == 5 else None)
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_server_only_packet_before_connect_closes(broker, version):
    """[MQTT-3.1.0-1] BAD_INPUTS row 7: CONNACK as the first packet: closed."""
    b = broker()
    with raw_socket(b, version=version) as c:
        c.send(m.packet(m.CONNACK, 0, b"\x00\x00"))
        c.expect_closed()
    assert_alive(b)


def test_v311_password_without_username_closes(broker):
    """[MQTT-3.1.2-22] 3.1.1: password flag set without user name flag is
    malformed: close (CONNACK non-zero allowed first)."""
    b = broker()
    with raw_socket(b) as c:
        c.send(m.connect("pwonly", password=b"secret"))
        expect_refused_then_closed(c, (0x04, 0x05))
    assert_alive(b)


def test_v5_connack_advertises_limits(broker):
    """[MQTT-3.2.2] v5 CONNACK reflects configuration: topic alias maximum
    and receive maximum (max_inflight_messages)."""
    b = broker({"topic_alias_maximum": 10, "max_inflight_messages": 20})
    with raw_socket(b, version=5) as c:
        p = c.connect("limits", version=5)
        assert p.reason == 0
        assert p.properties.get("topic_alias_maximum") == 10, p
        assert p.properties.get("receive_maximum", 65535) == 20, p
