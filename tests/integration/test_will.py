"""Will messages (MQTT 3.1.1 3.1.2.5, MQTT 5 3.1.2.5 and 3.1.3.2.2)."""
import time

import pytest

import mqttraw as m
from conftest import assert_alive, raw, SLOW


def watcher(b, clients, topic="will/t"):
    w = clients(b, version=5)
    w.subscribe(topic, 1)
    return w


@pytest.mark.parametrize("version", [4, 5])
def test_will_published_on_abnormal_close(broker, clients, version):
    """[MQTT-3.1.2-8] the will is published when the network connection is
    closed without DISCONNECT."""
    b = broker()
    w = watcher(b, clients)
    c = raw(b, version=version, client_id="will-abn",
            will={"topic": "will/t", "payload": b"died", "qos": 1})
    c.close()
    msg = w.get(5)
    assert msg.payload == b"died" and msg.qos == 1 and not msg.retain


@pytest.mark.parametrize("version", [4, 5])
def test_will_not_published_on_normal_disconnect(broker, clients, version):
    """[MQTT-3.1.2-10] (3.1.1 [MQTT-3.14.4-3]) DISCONNECT (v5 reason 0x00)
    deletes the will without publishing it.  Positive control: a client
    with a will on the same topic that closes abnormally afterwards gets
    its will published, and it is the first message the watcher sees."""
    b = broker()
    w = watcher(b, clients)
    c = raw(b, version=version, client_id="will-norm",
            will={"topic": "will/t", "payload": b"nope", "qos": 1})
    c.send(m.disconnect(version))
    c.expect_closed()
    c.close()
    ctl = raw(b, version=version, client_id="will-ctl",
              will={"topic": "will/t", "payload": b"control", "qos": 1})
    ctl.close()
    assert w.get(5).payload == b"control"
    w.expect_none(0.5)
    assert_alive(b)


def test_v5_disconnect_with_will_message_reason_publishes_will(broker, clients):
    """[MQTT-3.14.2] v5 DISCONNECT with reason 0x04 (Disconnect with Will
    Message): the will is published."""
    b = broker()
    w = watcher(b, clients)
    c = raw(b, version=5, client_id="will-04",
            will={"topic": "will/t", "payload": b"asked", "qos": 1})
    c.send(m.disconnect(5, reason=0x04))
    c.expect_closed()
    c.close()
    assert w.get(5).payload == b"asked"


def test_v5_will_delay_cancelled_by_reconnect(broker, clients):
    """[MQTT-3.1.3-9] will delay 2 s, the client reconnects within 1 s: the
    will is not published."""
    b = broker()
    w = watcher(b, clients)
    will = {"topic": "will/t", "payload": b"late", "qos": 1,
            "properties": [("will_delay_interval", 2)]}
    cp = [("session_expiry_interval", 30)]
    c = raw(b, version=5, client_id="will-delay", clean=False, will=will, properties=cp)
    c.close()
    time.sleep(0.3)
    with raw(b, version=5, client_id="will-delay", clean=False, properties=cp):
        w.expect_none(3.0)


def test_v5_will_delay_publishes_after_interval(broker, clients):
    """[MQTT-3.1.3-9] will delay 2 s, the client stays away: the will is
    published after ~2 s, not before."""
    b = broker()
    w = watcher(b, clients)
    will = {"topic": "will/t", "payload": b"delayed", "qos": 1,
            "properties": [("will_delay_interval", 2)]}
    c = raw(b, version=5, client_id="will-delay2", clean=False, will=will,
            properties=[("session_expiry_interval", 30)])
    t0 = time.monotonic()
    c.close()
    msg = w.get(6)
    elapsed = time.monotonic() - t0
    assert msg.payload == b"delayed"
    assert 1.5 <= elapsed <= 5.0 * SLOW, "will after %.2fs" % elapsed


def test_v5_will_sent_when_session_ends_before_will_delay(broker, clients):
    """[MQTT-3.1.2.5] BAD_INPUTS row 10: will delay 60 s but session expiry
    1 s: the will is published when the session ends (~1 s); a reconnect
    afterwards starts a fresh session and the broker stays healthy."""
    b = broker()
    w = watcher(b, clients)
    will = {"topic": "will/t", "payload": b"session-end", "qos": 1,
            "properties": [("will_delay_interval", 60)]}
    cp = [("session_expiry_interval", 1)]
    c = raw(b, version=5, client_id="will-row10", clean=False, will=will, properties=cp)
    c.close()
    assert w.get(5).payload == b"session-end"
    with raw(b, version=5, client_id="will-row10", clean=False, will=will, properties=cp) as c2:
        assert c2.connack.session_present == 0
    assert_alive(b)


def test_will_retain_flag(broker, clients):
    """[MQTT-3.1.2-17] will retain 1: the will is published as a retained
    message; a later subscriber receives it with the retain flag."""
    b = broker()
    c = raw(b, client_id="will-ret",
            will={"topic": "will/retained", "payload": b"ret", "qos": 1, "retain": True})
    w = watcher(b, clients, "will/retained")
    c.close()
    assert w.get(5).payload == b"ret"
    late = clients(b, version=5)
    late.subscribe("will/retained", 1)
    msg = late.get(5)
    assert msg.payload == b"ret" and msg.retain


def test_will_qos_and_properties_passed(broker, clients):
    """[MQTT-3.1.3-10][MQTT-3.1.2-16] the will keeps its QoS (capped by the
    subscription) and its v5 properties (content type, user properties)."""
    b = broker()
    w = watcher(b, clients)
    will = {"topic": "will/t", "payload": b"props", "qos": 2,
            "properties": [("content_type", "text/plain"), ("user_property", ("k", "v"))]}
    c = raw(b, version=5, client_id="will-props", will=will)
    c.close()
    msg = w.get(5)
    assert msg.payload == b"props" and msg.qos == 1
    assert msg.properties.ContentType == "text/plain"
    assert msg.properties.UserProperty == [("k", "v")]


def test_v5_takeover_within_will_delay_suppresses_will(broker, clients):
    """[MQTT-3.1.3-9] takeover with Clean Start 0 before the will delay (5 s)
    elapsed: the session continues and the will is not published."""
    b = broker()
    w = watcher(b, clients)
    will = {"topic": "will/t", "payload": b"no", "qos": 1,
            "properties": [("will_delay_interval", 5)]}
    cp = [("session_expiry_interval", 30)]
    first = raw(b, version=5, client_id="will-take2", clean=False, will=will, properties=cp)
    with first:
        with raw(b, version=5, client_id="will-take2", clean=False, properties=cp) as second:
            first.expect_closed(allow_disconnect={0x8E})
            w.expect_none(1.5)
            second.send(m.disconnect(5))


@pytest.mark.imqtt_only
@pytest.mark.parametrize("delay,clean", [(0, False), (60, True)],
                         ids=["delay0-cleanstart0", "delay60-cleanstart1"])
def test_v5_takeover_publishes_will(broker, clients, delay, clean):
    """[MQTT-3.1.4-3] "If the existing Client has a Will Message, that Will
    Message is published as described in section 3.1.2.5".  Will delay 0:
    the delay has elapsed when the old connection closes.  Clean Start 1:
    the old session ends, and [MQTT-3.1.3-9] only suppresses the will for a
    new connection "to this Session".  So the old will is published once;
    the new connection has no will (closing it publishes nothing).
    (imqtt_only: Mosquitto 2.0.11 publishes no will on takeover; see
    test_v5_takeover_within_will_delay_suppresses_will for the case every
    reading agrees on.)"""
    b = broker()
    w = watcher(b, clients)
    will = {"topic": "will/t", "payload": b"taken", "qos": 1,
            "properties": [("will_delay_interval", delay)]}
    cp = [("session_expiry_interval", 30)]
    first = raw(b, version=5, client_id="will-take", clean=False, will=will, properties=cp)
    with first:
        second = raw(b, version=5, client_id="will-take", clean=clean)
        first.expect_closed(allow_disconnect={0x8E})
        assert w.get(5).payload == b"taken"
        w.expect_none(0.5)
        second.close()
        w.expect_none(1.0)
