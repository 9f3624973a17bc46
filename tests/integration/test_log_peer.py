"""Every log line about a connection names its peer (issue 14), so that
fail2ban-style tools can act on refusals: bad password, bad JWT, bad
protocol level, the connection rate limit, and accepted connections too.
IPv6 peers are written [::1]:port."""
import re
import socket
import time

import pytest

import mqttraw as m
from conftest import SLOW
from imhelp import im_config, mint, write_pwfile

pytestmark = pytest.mark.imqtt_only

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (ERROR|WARN|INFO|DEBUG) (.*)$")
PEER = re.compile(r"(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d+")
# Words of the lines about one connection: each such line must carry a peer.
ABOUT_A_CONNECTION = re.compile(
    r"CONNECT|refused|closing|disconnected|connected from|taken over|denied|"
    r"over its|keepalive timeout|token expired|TLS|WebSocket")


def log_lines(b):
    out = []
    for raw in b.stderr_text().splitlines():
        mo = LINE.match(raw)
        assert mo, "not a log line: %r" % raw
        out.append(mo.group(2))
    return out


def peer_of(c, v6=False):
    host, port = c.sock.getsockname()[:2]
    return "[%s]:%d" % (host, port) if v6 else "%s:%d" % (host, port)


def wait_line(b, *needles, timeout=5.0):
    """The first log line holding every needle (the broker may write it a
    moment after the client saw the answer)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        for line in log_lines(b):
            if all(n in line for n in needles):
                return line
        assert time.monotonic() < deadline, "no log line with %r in:\n%s" % (
            needles, b.stderr_text()[-4000:])
        time.sleep(0.02)


def assert_every_connection_line_has_a_peer(b):
    for line in log_lines(b):
        if ABOUT_A_CONNECTION.search(line):
            assert PEER.search(line), "log line without a peer address: %r" % line


@pytest.mark.parametrize("version", [4, 5])
def test_jwt_refusal_and_acceptance_name_the_peer(broker, version):
    b = broker(im_config())
    with m.RawClient(b.host, b.port, version=version) as c:
        ack = c.connect("alice@phone", username="alice", password=b"not-a-jwt")
        assert ack.reason != 0
        bad = peer_of(c)
    line = wait_line(b, bad, "CONNECT of alice@phone refused")
    assert line.startswith(bad + ": "), line

    with m.RawClient(b.host, b.port, version=version) as c:
        ack = c.connect("alice@phone", username="alice", password=mint("alice").encode())
        assert ack.reason == 0
        good = peer_of(c)
        c.send(m.disconnect(version))
        c.expect_closed()
    wait_line(b, "client alice@phone connected from " + good)
    wait_line(b, "client alice@phone (%s) disconnected" % good)
    assert_every_connection_line_has_a_peer(b)


def test_password_refusal_names_the_peer(broker, tmp_path):
    pw = write_pwfile(str(tmp_path / "passwords"), {"sensor": "right-one"})
    b = broker({"listeners": [{"bind": "127.0.0.1", "port": 1883, "auth": "password_file"}],
                "auth": {"password_file": pw}})
    with m.RawClient(b.host, b.port, version=5) as c:
        assert c.connect("dev-1", username="sensor", password=b"wrong").reason == 0x86
        bad = peer_of(c)
    wait_line(b, bad + ": CONNECT of dev-1 refused", "password")
    assert_every_connection_line_has_a_peer(b)


@pytest.mark.parametrize("level", [7, 0])
def test_bad_protocol_names_the_peer(broker, level):
    b = broker()
    with m.RawClient(b.host, b.port) as c:
        c.send(m.connect("proto", level=level))
        c.recv_or_closed()
        bad = peer_of(c)
    wait_line(b, bad + ": CONNECT refused", "protocol level")
    assert_every_connection_line_has_a_peer(b)


def test_malformed_connect_and_takeover_name_the_peer(broker):
    b = broker()
    with m.RawClient(b.host, b.port) as c:
        c.send(m.connect("mal", proto_name="MQTX"))
        c.recv_or_closed()
        bad = peer_of(c)
    wait_line(b, bad + ": ")
    first = m.open_connected(b.host, b.port, "twice", version=5)
    second = m.open_connected(b.host, b.port, "twice", version=5)
    try:
        first.expect_closed(allow_disconnect={0x8E})
        wait_line(b, "client twice (%s): session taken over by %s"
                  % (peer_of(first), peer_of(second)))
    finally:
        first.close()
        second.close()
    assert_every_connection_line_has_a_peer(b)


def test_rate_limit_refusal_names_the_peer(broker):
    b = broker({"limits": {"connection_rate": 1, "connection_burst": 2}})
    # Opened back to back: the bucket (1 per second) cannot refill between.
    conns = [m.RawClient(b.host, b.port) for _ in range(6)]
    refused = None
    try:
        for c in conns:
            try:
                if c.recv_or_closed(0.3) is None:
                    refused = peer_of(c)
                    break
            except TimeoutError:
                pass  # accepted: it waits for our CONNECT
    finally:
        for c in conns:
            c.close()
    assert refused, "no connection refused by the rate limit"
    wait_line(b, refused + ": refused: connection rate limit")
    assert_every_connection_line_has_a_peer(b)


def _ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_peer_in_brackets(broker):
    from conftest import free_port
    p6 = free_port()
    b = broker({"listeners": [{"bind": "127.0.0.1", "port": 1883},
                              {"bind": "::1", "port": p6}]})
    wait_line(b, "listening on [::1]:%d" % p6)
    deadline = time.monotonic() + 5 * SLOW
    while True:
        try:
            c = m.RawClient("::1", p6, version=5)
            break
        except OSError:
            assert time.monotonic() < deadline, "::1 listener not accepting"
            time.sleep(0.05)
    with c:
        ack = c.connect("v6-client")
        assert ack.reason == 0
        who = peer_of(c, v6=True)
    line = wait_line(b, "client v6-client connected from " + who)
    assert re.search(r"from \[::1\]:\d+ ", line), line
    assert_every_connection_line_has_a_peer(b)


def json_lines(b):
    import json
    # Lines before the config's format applies (start-up) are text.
    return [json.loads(l) for l in b.stderr_text().splitlines() if l.startswith("{")]


def test_json_log_lines_carry_the_peer_as_a_field(broker):
    """log.format json: the peer is a field ("peer") of every line about a
    connection, next to "client_id" once there is one."""
    b = broker({"log": {"format": "json"}})
    with m.RawClient(b.host, b.port) as c:
        c.send(m.connect("j-bad", level=7))
        c.recv_or_closed()
        bad = peer_of(c)
    with m.RawClient(b.host, b.port, version=5) as c:
        assert c.connect("j-good").reason == 0
        good = peer_of(c)
        c.send(m.disconnect(5))
        c.expect_closed()
    deadline = time.monotonic() + 5 * SLOW
    while not any("disconnected" in j["msg"] for j in json_lines(b)):
        assert time.monotonic() < deadline, b.stderr_text()
        time.sleep(0.02)
    seen = {}
    for j in json_lines(b):
        if ABOUT_A_CONNECTION.search(j["msg"]):
            assert "peer" in j and j["peer"] in j["msg"], j
            seen.setdefault(j["peer"], []).append(j)
    assert any("CONNECT refused" in j["msg"] for j in seen.get(bad, [])), seen
    got = seen.get(good, [])
    assert [j["client_id"] for j in got] == ["j-good", "j-good"], got
    assert "connected from" in got[0]["msg"] and "disconnected" in got[1]["msg"], got


def test_json_log_of_a_client_id_of_control_characters(broker):
    """A 2,000-byte client id of control characters is escaped twice in a
    JSON line (as client_id and inside msg), six bytes each: the line stays
    whole and valid (the line buffer once had room for one copy only)."""
    b = broker({"log": {"format": "json"}})
    cid = "\x01" * 2000
    with m.RawClient(b.host, b.port) as c:
        assert c.connect(cid).reason == 0
        c.send(m.disconnect())
        c.expect_closed()
    deadline = time.monotonic() + 5 * SLOW
    while True:
        lines = [j for j in json_lines(b) if j.get("client_id", "").startswith("\x01")]
        if lines:
            break
        assert time.monotonic() < deadline, b.stderr_text()[-2000:]
        time.sleep(0.02)
    assert lines[0]["client_id"] == cid
    assert lines[0]["msg"].startswith("client \x01")
    with m.open_connected(b.host, b.port, "after", version=5) as c:
        c.send(m.disconnect(5))
