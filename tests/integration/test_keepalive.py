"""Keep alive (MQTT 3.1.1 3.1.2.10, MQTT 5 3.1.2.10 and 3.2.2.3.14)."""
import time

import mqttraw as m
import pytest

from conftest import assert_alive, raw, SLOW, MOSQUITTO

# Mosquitto 2.0.11 checks keep alive coarsely (a keep alive 1 client is
# closed after ~5.3 s); imqtt must meet the 1.5 x bound tightly.
KA1_BOUND = 8.0 if MOSQUITTO else 4.0 * SLOW


def test_silent_client_disconnected_after_one_and_a_half_keepalive(broker, clients):
    """[MQTT-3.1.2-24] a client silent for 1.5 x keep alive is disconnected;
    [MQTT-3.1.2-8] its will is then published."""
    b = broker()
    sub = clients(b, version=5)
    sub.subscribe("ka/will", 1)
    c = raw(b, client_id="ka-silent", keepalive=1,
            will={"topic": "ka/will", "payload": b"gone", "qos": 1})
    t0 = time.monotonic()
    with c:
        c.expect_closed(timeout=KA1_BOUND)
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed <= KA1_BOUND, "closed after %.2fs" % elapsed
    msg = sub.get(timeout=3)
    assert msg.topic == "ka/will" and msg.payload == b"gone"
    assert_alive(b)


def test_pingreq_answered_and_keeps_connection(broker):
    """[MQTT-3.12.4-1] PINGREQ gets PINGRESP; a client that pings within the
    keep alive stays connected beyond 1.5 x keep alive."""
    b = broker()
    with raw(b, client_id="ka-ping", keepalive=1) as c:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            c.send(m.pingreq())
            c.expect(m.PINGRESP, timeout=2)
            time.sleep(0.5)
        c.send(m.pingreq())
        c.expect(m.PINGRESP, timeout=2)


def test_keepalive_zero_not_disconnected(broker):
    """[MQTT-3.1.2-24] keep alive 0 turns the mechanism off: a silent client
    is not disconnected (checked over 2 s)."""
    b = broker()
    with raw(b, client_id="ka-zero", keepalive=0) as c:
        c.assert_quiet(2.0)
        c.send(m.pingreq())
        c.expect(m.PINGRESP)


def test_v5_server_keep_alive_caps_client_value(broker):
    """[MQTT-3.2.2-21][MQTT-3.2.2-22] with max_keepalive 10 a v5 client asking
    for 60 gets Server Keep Alive 10 in CONNACK."""
    b = broker({"max_keepalive": 10})
    with raw(b, version=5, client_id="ka-cap", keepalive=60) as c:
        assert c.connack.properties.get("server_keep_alive") == 10, c.connack


@pytest.mark.imqtt_only
def test_v5_server_keep_alive_is_enforced(broker):
    """(imqtt_only: Mosquitto refuses max_keepalive < 10.) [MQTT-3.2.2-22] the client must use the Server Keep Alive: with
    max_keepalive 1 a silent client asking 60 is closed within ~1.5 s."""
    b = broker({"max_keepalive": 1})
    with raw(b, version=5, client_id="ka-enforced", keepalive=60) as c:
        assert c.connack.properties.get("server_keep_alive") == 1, c.connack
        t0 = time.monotonic()
        c.expect_closed(timeout=4 * SLOW, allow_disconnect={0x8D})
        assert time.monotonic() - t0 >= 1.0
