"""PROXY protocol on broker listeners (BAD_INPUTS row 26): HAProxy with
send-proxy-v2 in front of a listener that asks for it gives the broker the
client's address; a PROXY header is trusted only on such a listener and
only from its proxy_from addresses; the header's address is the one logs
and connection rate limits use."""
import socket
import struct
import time

import mqttraw
import promparse
from clusterhelp import haproxy, http_get  # noqa: F401 (fixture)
from conftest import SLOW, assert_alive, free_port, wait_for

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
CONNECT = mqttraw.connect("pp-client")


def v2_header(src, sport, dst="127.0.0.1", dport=1883, cmd=0x21):
    if ":" in src:
        body = (socket.inet_pton(socket.AF_INET6, src) +
                socket.inet_pton(socket.AF_INET6, dst) + struct.pack(">HH", sport, dport))
        fam = 0x21
    else:
        body = (socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport))
        fam = 0x11
    return V2_SIG + bytes([cmd, fam]) + struct.pack(">H", len(body)) + body


def v1_header(src, sport, dst="127.0.0.1", dport=1883):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (src, dst, sport, dport)).encode()


def proxy_broker(broker, proxy_from=("127.0.0.1",), **extra):
    cfg = {"listeners": [{"proxy_protocol": True, "proxy_from": list(proxy_from)}],
           "http": {"port": free_port()}}
    cfg.update(extra)
    return broker(cfg)


def refused_proxy(b):
    status, body = http_get(b.config["http"]["port"], "/metrics")
    assert status == 200, body
    for _, labels, value in promparse.parse(body)["imqtt_connections_refused_total"]["samples"]:
        if labels.get("cause") == "proxy":
            return value
    raise AssertionError("no cause=\"proxy\" sample")


def connack_after(b, data, client_id="pp-client"):
    """Send data then CONNECT for client_id; returns (client, CONNACK)."""
    c = mqttraw.RawClient(b.host, b.port)
    c.send(data + mqttraw.connect(client_id))
    return c, c.expect(mqttraw.CONNACK)


def test_haproxy_send_proxy_v2_gives_the_client_address(broker, haproxy):
    b = proxy_broker(broker)
    hp = haproxy([b])  # the example config, send-proxy-v2 kept
    hp.wait_servers_up()
    c = mqttraw.RawClient("127.0.0.1", hp.port)
    port = c.sock.getsockname()[1]
    assert c.connect("viaproxy@dev").reason == 0
    # the broker names the device's own source port, not haproxy's
    wait_for(lambda: "client viaproxy@dev connected from 127.0.0.1:%d " % port
             in b.stderr_text(), what="the client's address in the log")
    # and the stream after the header is served normally
    c.send(mqttraw.subscribe(1, [("pp/t", 1)]))
    assert c.expect(mqttraw.SUBACK).reasons == [1]
    c.send(mqttraw.publish("pp/t", b"x", qos=1, pid=2))
    kinds = {c.recv().type for _ in range(2)}
    assert kinds == {mqttraw.PUBLISH, mqttraw.PUBACK}
    c.close()


def test_a_forged_header_on_a_normal_listener_is_a_bad_first_packet(broker):
    b = broker({})
    for header in (v1_header("6.6.6.6", 4444), v2_header("6.6.6.6", 4444)):
        c = mqttraw.RawClient(b.host, b.port)
        c.send(header + CONNECT)
        c.expect_closed()
        c.close()
    assert "6.6.6.6" not in b.stderr_text()
    assert_alive(b)


def test_a_proxy_listener_refuses_peers_outside_proxy_from(broker):
    b = proxy_broker(broker, proxy_from=["10.0.0.0/8", "::1"])
    before = refused_proxy(b)
    c = mqttraw.RawClient(b.host, b.port)
    port = c.sock.getsockname()[1]
    c.send(v1_header("10.1.2.3", 5555) + CONNECT)
    c.expect_closed()
    c.close()
    wait_for(lambda: "127.0.0.1:%d: refused: not a proxy_from address" % port
             in b.stderr_text(), what="the refusal with the real address")
    assert "10.1.2.3" not in b.stderr_text()
    assert refused_proxy(b) == before + 1


def test_a_proxy_listener_requires_a_valid_header(broker):
    b = proxy_broker(broker)
    before = refused_proxy(b)
    bad = [
        b"",                                           # CONNECT alone
        b"PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n",    # bad address
        b"PROXY TCP4 1.2.3.4 127.0.0.1 1\r\n",        # a field missing
        b"PROXY TCP4 1.2.3.4 127.0.0.1 1 2\n",        # no CR
        V2_SIG + b"\x11\x11\x00\x0c" + bytes(12),      # version 1 in v2 form
        V2_SIG + b"\x21\x12\x00\x0c" + bytes(12),      # datagram
        V2_SIG + b"\x21\x11\x08\x00" + bytes(12),      # longer than allowed
        b"PROXY " + b"x" * 120,                        # no line end in 107
    ]
    for i, data in enumerate(bad):
        c = mqttraw.RawClient(b.host, b.port)
        port = c.sock.getsockname()[1]
        c.send(data + CONNECT)
        c.expect_closed()
        c.close()
        wait_for(lambda: "127.0.0.1:%d: refused on PROXY listener" % port
                 in b.stderr_text(), what="refusal %d logged" % i)
    assert refused_proxy(b) == before + len(bad)
    # a header cut short by the client's close
    c = mqttraw.RawClient(b.host, b.port)
    c.send(b"PROXY TCP4 1.2.3.4")
    c.close()
    wait_for(lambda: "closed in the middle of its PROXY header" in b.stderr_text(),
             what="half a header logged")
    # still serving: a correct header works
    c, ack = connack_after(b, v2_header("192.0.2.9", 999))
    assert ack.reason == 0
    c.close()


def test_the_header_address_is_the_peer_for_logs_and_rate_limits(broker):
    b = proxy_broker(broker, limits={"connection_rate": 1, "connection_burst": 1})
    c1, ack = connack_after(b, v1_header("192.0.2.1", 1111), "rl-a")
    assert ack.reason == 0
    wait_for(lambda: "client rl-a connected from 192.0.2.1:1111 " in b.stderr_text(),
             what="v1 address in the log")
    # the same claimed address again at once: over its rate
    c2 = mqttraw.RawClient(b.host, b.port)
    c2.send(v1_header("192.0.2.1", 1112) + mqttraw.connect("rl-b"))
    c2.expect_closed()
    c2.close()
    wait_for(lambda: "192.0.2.1:1112: refused: connection rate limit" in b.stderr_text(),
             what="rate limit on the header's address")
    # another claimed address (v2, and IPv6) is its own bucket
    c3, ack = connack_after(b, v2_header("192.0.2.2", 2222), "rl-c")
    assert ack.reason == 0
    c4, ack = connack_after(b, v2_header("2001:db8::5", 3333, dst="::1"), "rl-d")
    assert ack.reason == 0
    wait_for(lambda: "client rl-c connected from 192.0.2.2:2222 " in b.stderr_text()
             and "client rl-d connected from [2001:db8::5]:3333 " in b.stderr_text(),
             what="v2 addresses in the log")
    # LOCAL (what a proxy's own check sends) keeps the socket's address
    time.sleep(1.1 * SLOW)  # 127.0.0.1's bucket is fresh anyway
    c5 = mqttraw.RawClient(b.host, b.port)
    port = c5.sock.getsockname()[1]
    c5.send(V2_SIG + b"\x20\x00\x00\x00" + mqttraw.connect("rl-e"))
    assert c5.expect(mqttraw.CONNACK).reason == 0
    wait_for(lambda: "client rl-e connected from 127.0.0.1:%d " % port in b.stderr_text(),
             what="LOCAL keeps the socket address")
    for c in (c1, c3, c4, c5):
        c.close()


def test_the_header_comes_before_tls(broker):
    """On a TLS listener the PROXY header precedes the handshake (what
    HAProxy in TCP mode sends to a TLS node); the bytes after it are the
    TLS stream."""
    import ssl
    import opshelp
    c = opshelp.certs()
    b, (port,) = opshelp.start(broker, [{"transport": "tls", "tls": opshelp.tls_cfg(c),
                                         "proxy_protocol": True,
                                         "proxy_from": ["127.0.0.1"]}])
    ctx = ssl.create_default_context(cafile=c["ca_crt"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    raw.sendall(v2_header("198.51.100.4", 4321))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(mqttraw.connect("tls-pp"))
    data = s.recv(4)
    assert data[:1] == b"\x20" and data[3:4] == b"\x00", data  # CONNACK 0
    wait_for(lambda: "client tls-pp connected from 198.51.100.4:4321 " in b.stderr_text(),
             what="the header's address on a TLS listener")
    s.close()
