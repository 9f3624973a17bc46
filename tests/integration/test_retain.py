"""Retained messages (MQTT 3.1.1 3.3.1.3, MQTT 5 3.3.1.3 and 3.8.3.1)."""
import pytest

import mqttraw as m
from conftest import raw, mqtt, assert_alive


@pytest.mark.parametrize("version", [4, 5])
def test_retained_set_replace_clear(broker, clients, version):
    """[MQTT-3.3.1-5] retained message stored and delivered on subscribe
    with RETAIN=1 [MQTT-3.3.1-8]; a new one replaces it; [MQTT-3.3.1-10]
    [MQTT-3.3.1-11] an empty retained payload clears it."""
    b = broker()
    pub = clients(b, version=version)
    pub.publish("ret/a", b"v1", qos=1, retain=True)
    s1 = clients(b, version=version)
    s1.subscribe("ret/a", 1)
    msg = s1.get()
    assert msg.payload == b"v1" and msg.retain
    pub.publish("ret/a", b"v2", qos=1, retain=True)
    live = s1.get()
    assert live.payload == b"v2" and not live.retain, "[MQTT-3.3.1-9] live copy must have RETAIN=0"
    s2 = clients(b, version=version)
    s2.subscribe("ret/#", 1)
    msg = s2.get()
    assert msg.payload == b"v2" and msg.retain
    s2.expect_none(0.3)
    pub.publish("ret/a", b"", qos=1, retain=True)
    s3 = clients(b, version=version)
    s3.subscribe("ret/a", 1)
    s3.expect_none(0.7)


def test_retained_qos_is_min_of_stored_and_subscription(broker, clients):
    """[MQTT-3.3.5-1] a retained QoS 2 message is delivered at the
    subscription's QoS (1)."""
    b = broker()
    clients(b, version=4).publish("ret/q", b"q2", qos=2, retain=True)
    s = clients(b, version=4)
    s.subscribe("ret/q", 1)
    msg = s.get()
    assert msg.qos == 1 and msg.retain


@pytest.mark.parametrize("rh,first,again", [(0, True, True), (1, True, False), (2, False, False)])
def test_v5_retain_handling(broker, clients, rh, first, again):
    """[MQTT-3.3.1-9][MQTT-3.3.1-10][MQTT-3.3.1-11] Retain Handling 0: send
    retained at every subscribe; 1: only if the subscription is new; 2: never."""
    b = broker()
    clients(b, version=5).publish("rh/t", b"kept", qos=1, retain=True)
    s = clients(b, version=5)
    opts = mqtt.SubscribeOptions(qos=1, retainHandling=rh)
    s.subscribe("rh/t", options=opts)
    if first:
        assert s.get().payload == b"kept"
    else:
        s.expect_none(0.5)
    s.subscribe("rh/t", options=mqtt.SubscribeOptions(qos=1, retainHandling=rh))
    if again:
        assert s.get().payload == b"kept"
    else:
        s.expect_none(0.5)


@pytest.mark.parametrize("rap", [False, True])
def test_v5_retain_as_published(broker, clients, rap):
    """[MQTT-3.3.1-12][MQTT-3.3.1-13] Retain As Published 0: forwarded
    messages have RETAIN=0; 1: RETAIN as set by the publisher."""
    b = broker()
    s = clients(b, version=5)
    s.subscribe("rap/t", options=mqtt.SubscribeOptions(qos=1, retainAsPublished=rap))
    clients(b, version=5).publish("rap/t", b"r", qos=1, retain=True)
    msg = s.get()
    assert msg.payload == b"r" and bool(msg.retain) == rap


def test_retained_on_wildcard_subscribe_all_topics(broker, clients):
    """[MQTT-3.3.1-6] a wildcard subscription receives every matching
    retained message."""
    b = broker()
    pub = clients(b, version=4)
    for i in range(5):
        pub.publish("retw/%d" % i, b"%d" % i, qos=1, retain=True)
    s = clients(b, version=4)
    s.subscribe("retw/+", 1)
    msgs = s.get_n(5)
    assert sorted(x.payload for x in msgs) == [b"0", b"1", b"2", b"3", b"4"]
    assert all(x.retain for x in msgs)


def test_v5_retain_not_available(broker):
    """[MQTT-3.2.2-14][MQTT-3.3.1-?] retain_available false: CONNACK says
    Retain Available 0; a PUBLISH with RETAIN=1 gets DISCONNECT 0x9A."""
    b = broker({"retain_available": False})
    with raw(b, version=5) as c:
        assert c.connack.properties.get("retain_available") == 0, c.connack
        c.send(m.publish("nr/t", b"x", qos=1, pid=1, retain=True, version=5))
        c.expect_closed(allow_disconnect={0x9A})
    assert_alive(b, version=5)
