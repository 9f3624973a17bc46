"""The cluster fixtures themselves (tests/integration/clusterhelp.py): three
clustered nats-server processes with JetStream, HAProxy from
examples/cluster/haproxy.cfg in front of real brokers, and the topic <->
subject mapping checked on a real NATS route (BAD_INPUTS row 25)."""
import socket
import time

import pytest

import mqttraw
import promparse
from clusterhelp import haproxy, http_get, imqtt_cluster, nats_cluster, probe  # noqa: F401
from conftest import SLOW, free_port


def test_three_nats_servers_with_jetstream(nats_cluster):
    nc = nats_cluster()
    leader = nc.meta_leader()
    assert leader in ("n1", "n2", "n3")
    # an R3 file stream: a leader, two followers, 20 acknowledged writes
    rc, out = probe("js", nc.urls)
    assert rc == 0, out
    assert "stream ok" in out and "2 replicas" in out, out


def test_subject_mapping_on_a_real_route(nats_cluster):
    """Filters subscribed on n1, topics published on n3: every filter gets
    exactly what MQTT matching says, under the mapped subjects."""
    nc = nats_cluster()
    rc, out = probe("match", nc.servers[0].url, nc.servers[2].url)
    assert rc == 0, out
    assert " 0 mismatches" in out, out


def test_probe_tells_unreachable_from_no_jetstream(nats_cluster):
    plain = nats_cluster(n=1, jetstream=False)
    rc, out = probe("check", plain.urls)
    assert rc == 3, out
    rc, out = probe("check", "nats://127.0.0.1:%d" % free_port())
    assert rc == 2, out
    js = nats_cluster(n=1)
    rc, out = probe("check", js.urls)
    assert rc == 0, out


def _connections(b):
    status, body = http_get(b.config["http"]["port"], "/metrics")
    assert status == 200, body
    fams = promparse.parse(body)
    return fams["imqtt_connections"]["samples"][0][2]


def _connections_total(b):
    status, body = http_get(b.config["http"]["port"], "/metrics")
    assert status == 200, body
    return promparse.parse(body)["imqtt_connections_total"]["samples"][0][2]


def _node():
    return {"http": {"port": free_port()}}


def test_haproxy_hashes_on_the_user_part(broker, haproxy):
    nodes = [broker(_node()) for _ in range(2)]
    hp = haproxy(nodes, proxy_protocol=False)
    hp.wait_servers_up()
    clients = []
    where = {}
    for u in range(16):
        before = [_connections(b) for b in nodes]
        for dev in ("phone", "laptop"):
            c = mqttraw.open_connected("127.0.0.1", hp.port, "user%d@%s" % (u, dev))
            clients.append(c)
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            after = [_connections(b) for b in nodes]
            if sum(after) - sum(before) == 2:
                break
            time.sleep(0.02)
        gained = [a - b for a, b in zip(after, before)]
        # both devices of a user on one node
        assert sorted(gained) == [0, 2], (u, gained)
        where[u] = gained.index(2)
    # the hash spreads users over both nodes (16 users all on one of two
    # nodes would be a 1 in 32768 chance)
    assert set(where.values()) == {0, 1}, where
    for c in clients:
        c.close()


def test_haproxy_lets_only_a_connect_through(broker, haproxy):
    node = broker(_node())
    hp = haproxy([node], proxy_protocol=False)
    hp.wait_servers_up()
    before = _connections_total(node)  # the fixture's readiness probe
    s = socket.create_connection(("127.0.0.1", hp.port), timeout=5)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    s.settimeout(5 * SLOW)
    assert s.recv(100) == b""  # closed by haproxy
    s.close()
    # a PINGREQ as first packet is valid MQTT framing but no CONNECT
    s = socket.create_connection(("127.0.0.1", hp.port), timeout=5)
    s.sendall(mqttraw.pingreq())
    s.settimeout(5 * SLOW)
    assert s.recv(100) == b""
    s.close()
    assert _connections_total(node) == before, "a non-CONNECT reached the node"
    c = mqttraw.open_connected("127.0.0.1", hp.port, "ok@dev")
    c.close()


def test_haproxy_moves_users_off_a_dead_node(broker, haproxy):
    nodes = [broker(_node()) for _ in range(2)]
    hp = haproxy(nodes, proxy_protocol=False)
    hp.wait_servers_up()
    # find a user that hashes to node 0
    for u in range(64):
        before = _connections(nodes[0])
        c = mqttraw.open_connected("127.0.0.1", hp.port, "mover%d@x" % u)
        time.sleep(0.05)
        on0 = _connections(nodes[0]) > before
        if on0:
            break
        c.close()
    else:
        pytest.fail("no user hashed to node 0")
    nodes[0].stop()
    t0 = time.monotonic()
    # its connection is closed, and after the failed health checks
    # (2 x 2 s) the same user is served by the other node
    with pytest.raises((mqttraw.Closed, OSError, TimeoutError)):
        c.send(mqttraw.pingreq())
        c.expect(mqttraw.PINGRESP, timeout=5 * SLOW)
        c.expect(mqttraw.PINGRESP, timeout=5 * SLOW)
    deadline = time.monotonic() + 20 * SLOW
    while True:
        try:
            c2 = mqttraw.RawClient("127.0.0.1", hp.port, timeout=2)
            ack = c2.connect("mover%d@y" % u)
            assert ack.reason == 0, ack
            break
        except (mqttraw.Closed, OSError, TimeoutError, AssertionError):
            if time.monotonic() > deadline:
                pytest.fail("user not moved:\n%s" % hp.log_text()[-3000:])
            time.sleep(0.2)
    assert _connections(nodes[1]) >= 1
    print("user served again %.1f s after its node stopped" % (time.monotonic() - t0))
    c2.close()


def test_three_nodes_behind_haproxy(imqtt_cluster):
    """The fixture the cluster tests (T1-T7) will build on: three nodes in
    cluster mode, each connected to NATS and answering its inbox from any
    NATS server, clients spread over them through HAProxy, each node
    seeing its clients' own addresses (PROXY v2)."""
    cl = imqtt_cluster()
    for i, node in enumerate(cl.nodes):
        status, body = http_get(node.config["http"]["port"], "/metrics")
        fams = promparse.parse(body)
        assert fams["imqtt_cluster_nats_connected"]["samples"][0][2] == 1
        # asked through another NATS server than the node may use
        url = cl.nats.servers[(i + 1) % 3].url
        rc, out = probe("request", url, "imqtt.node.imqtt%d.ping" % (i + 1))
        assert rc == 0 and "reply: imqtt%d" % (i + 1) in out, out
    clients, ports = [], {}
    for u in range(24):
        c = mqttraw.RawClient("127.0.0.1", cl.port)
        ports["t%d@d" % u] = c.sock.getsockname()[1]
        assert c.connect("t%d@d" % u).reason == 0
        clients.append(c)
    def where(cid):
        for i, node in enumerate(cl.nodes):
            if "client %s connected from 127.0.0.1:%d " % (cid, ports[cid]) in node.stderr_text():
                return i
        return None
    deadline = time.monotonic() + 5 * SLOW
    while time.monotonic() < deadline and any(where(c) is None for c in ports):
        time.sleep(0.05)
    seen = {cid: where(cid) for cid in ports}
    assert None not in seen.values(), seen
    # 24 users on two nodes or fewer: 3 x (2/3)^24, about 1 in 5,600 with
    # an even hash
    assert set(seen.values()) == {0, 1, 2}, seen
    for c in clients:
        c.close()
