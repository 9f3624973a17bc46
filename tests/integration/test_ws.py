"""MQTT over WebSocket (RFC 6455) and WSS: real clients (MQTT.js in Node,
Paho Python), and a raw client for what real clients never send."""
import json
import socket

import pytest

import mqttraw
from conftest import Client, assert_alive
from opshelp import RawWS, certs, frame, node, start, tls_cfg

pytestmark = pytest.mark.imqtt_only


def ws_broker(broker, **extra):
    return start(broker, [dict({"transport": "ws"}, **extra)])


def parse_node(out):
    assert out.returncode == 0, out.stderr
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line)


@pytest.mark.parametrize("version", [4, 5])
def test_mqttjs_ws(broker, version):
    b, (port,) = ws_broker(broker)
    r = parse_node(node("pubsub.js", "ws://127.0.0.1:%d/mqtt" % port, "", version))
    assert r["ok"], r
    assert_alive(b)


@pytest.mark.parametrize("version", [4, 5])
def test_mqttjs_wss(broker, version):
    c = certs()
    b, (port,) = start(broker, [{"transport": "wss", "tls": tls_cfg(c)}])
    r = parse_node(node("pubsub.js", "wss://localhost:%d/mqtt" % port, c["ca_crt"], version))
    assert r["ok"], r


def test_ws_and_tcp_clients_talk(broker):
    """A WebSocket subscriber gets what a TCP client publishes."""
    b, (port,) = ws_broker(broker)
    ws = RawWS(port)
    assert ws.headers["sec-websocket-protocol"] == "mqtt"
    ws.send_binary(mqttraw.connect("ws-sub"))
    assert ws.recv_mqtt()[0] >> 4 == mqttraw.CONNACK
    ws.send_binary(mqttraw.subscribe(1, [("t/ws", 1)]))
    assert ws.recv_mqtt()[0] >> 4 == mqttraw.SUBACK
    pub = Client(b, version=5)
    pub.publish("t/ws", b"from tcp", qos=1)
    pkt = ws.recv_mqtt()
    assert pkt[0] >> 4 == mqttraw.PUBLISH and pkt.endswith(b"from tcp")
    ws.close()


def test_custom_path_and_paho_websockets(broker):
    import paho.mqtt.client as mqtt
    import queue
    b, (port,) = ws_broker(broker, ws_path="/chat/mqtt")
    got = queue.Queue()
    c = mqtt.Client(client_id="paho-ws", transport="websockets", protocol=mqtt.MQTTv311)
    c.ws_set_options(path="/chat/mqtt")
    c.on_message = lambda cl, u, m: got.put(m.payload)
    c.on_connect = lambda cl, u, f, rc: cl.subscribe("p/ws", 1)
    c.on_subscribe = lambda cl, u, mid, q: cl.publish("p/ws", b"paho over ws", 1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        assert got.get(timeout=5) == b"paho over ws"
    finally:
        c.disconnect()
        c.loop_stop()
    # the default path is not served on this listener
    ws = RawWS(port, upgrade=False)
    assert ws.upgrade("/mqtt")[0] == 404


def test_split_packed_fragmented(broker):
    """MQTT packets split across frames, several packed in one frame, a
    message fragmented with continuation frames and a ping in between."""
    b, (port,) = ws_broker(broker)
    ws = RawWS(port)
    conn = mqttraw.connect("ws-frag")
    ws.send(frame(0x2, conn[:5]) + frame(0x2, conn[5:]))  # split
    assert ws.recv_mqtt()[0] >> 4 == mqttraw.CONNACK
    both = mqttraw.subscribe(1, [("f/1", 0)]) + mqttraw.publish("f/1", b"packed")
    ws.send_binary(both)  # packed
    assert ws.recv_mqtt()[0] >> 4 == mqttraw.SUBACK
    assert ws.recv_mqtt().endswith(b"packed")
    big = mqttraw.publish("f/1", b"y" * 70000)
    ws.send(frame(0x2, big[:1000], fin=False) + frame(0x9, b"hi") +
            frame(0x0, big[1000:40000], fin=False) + frame(0x0, big[40000:]))
    op, payload = ws.recv_frame()
    assert (op, payload) == (0xA, b"hi")  # pong with the ping's payload
    assert ws.recv_mqtt() == big
    # close handshake: our code comes back
    ws.send(frame(0x8, b"\x03\xe8bye"))
    op, payload = ws.recv_frame()
    assert op == 0x8 and payload[:2] == b"\x03\xe8"
    ws.close()


@pytest.mark.parametrize("raw,status", [
    (b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", 426),
    (b"POST /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 426),
    (b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n", 400),
    (b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
     b"Sec-WebSocket-Protocol: chat\r\n\r\n", 400),
    (b"GET /mqtt HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"GET /mqtt HTTP/1.1\r\nHost: x\r\nBad\x00Header: 1\r\n\r\n", 400),
    (b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\r\n\r\n", 400),  # MQTT on a ws port
])
def test_bad_http_refused(broker, raw, status):
    b, (port,) = ws_broker(broker)
    ws = RawWS(port, upgrade=False)
    got, headers = ws.request(raw)
    assert got == status, headers
    ws.close()
    assert_alive(b)


@pytest.mark.parametrize("data,code", [
    (frame(0x2, mqttraw.connect("x"), mask=False), 1002),   # unmasked
    (frame(0x1, mqttraw.connect("x")), 1003),               # text frame
    (frame(0x2, b"ab", rsv=0x40), 1002),                    # RSV1 without extension
    (frame(0x0, b"ab"), 1002),                              # continuation first
    (frame(0x9, b"p" * 126), 1002),                         # control > 125
    (frame(0x9, b"p", fin=False), 1002),                    # fragmented control
    (frame(0x3, b"p"), 1002),                               # reserved opcode
    (frame(0x8, b"\x03"), 1002),                            # 1-byte close payload
    (frame(0x8, b"\x03\xed"), 1002),                        # close code 1005 on the wire
])
def test_bad_frames_closed(broker, data, code):
    b, (port,) = ws_broker(broker)
    ws = RawWS(port)
    ws.send(data)
    op, payload = ws.recv_frame()
    assert op == 0x8 and int.from_bytes(payload[:2], "big") == code
    ws.close()
    assert_alive(b)


def test_frame_shorter_than_mqtt_length(broker):
    """BAD_INPUTS row 15: a frame carrying fewer bytes than the MQTT length
    it announces is only an incomplete packet; the close that follows ends
    the connection without reading past the frame."""
    b, (port,) = ws_broker(broker)
    ws = RawWS(port)
    ws.send(frame(0x2, b"\x10\xff\x7f\x00\x04MQTT"))  # claims 16383 bytes
    ws.send(frame(0x8, b"\x03\xe8"))
    op, _ = ws.recv_frame()
    assert op == 0x8
    ws.close()
    assert_alive(b)
    assert "AddressSanitizer" not in b.stderr_text()


def test_frame_of_huge_length_costs_nothing(broker):
    """A frame header announcing 2^62 bytes allocates nothing: payload is
    streamed into the MQTT parser, which refuses the packet size."""
    b, (port,) = ws_broker(broker, max_connections=0)
    rss = b.rss_kb()
    ws = RawWS(port)
    hdr = bytes([0x82, 0xFF]) + (1 << 62).to_bytes(8, "big") + b"\0\0\0\0"
    ws.send(hdr + mqttraw.connect("huge")[:2] + b"\xff\xff\xff\x7f")
    try:
        op, payload = ws.recv_frame()
        assert op == 0x8
    except (EOFError, ConnectionError, socket.timeout):
        pass
    ws.close()
    assert b.rss_kb() - rss < 4096
    assert_alive(b)


def chromium_or_skip():
    import shutil
    from opshelp import need_node
    need_node()
    if not shutil.which("chromium"):
        pytest.skip("chromium not installed (scripts/setup installs it)")
    import sys
    from conftest import SOURCE_DIR
    import os
    sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "browser"))
    import run as browser
    return browser


@pytest.mark.parametrize("version", [4, 5])
def test_headless_chromium_ws(broker, version):
    """A real browser: the MQTT.js bundle in headless Chromium."""
    browser = chromium_or_skip()
    b, (port,) = ws_broker(broker)
    result = browser.run("ws://127.0.0.1:%d/mqtt" % port, version)
    assert result.startswith("ok "), (result, b.stderr_text()[-2000:])


def test_headless_chromium_wss(broker):
    browser = chromium_or_skip()
    b, (port,) = start(broker, [{"transport": "wss", "tls": tls_cfg()}])
    assert browser.run("wss://localhost:%d/mqtt" % port, 4, insecure=True).startswith("ok ")
