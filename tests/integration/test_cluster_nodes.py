"""Nodes seen and IM presence across nodes (docs/cluster.md, "Nodes
seen" and "Presence across nodes"; issue 11): three imqtt nodes in cluster
mode on a three-server JetStream NATS cluster, clients connected straight
to the node a test puts them on. A node is killed with SIGKILL by its PID;
every wait is bounded."""
import json
import os
import signal
import tempfile
import time

import pytest

from clusterhelp import http_get, nats_cluster, node_config  # noqa: F401
import promparse
from conftest import SANITIZER_MARKERS, SLOW, Broker, Client, wait_for
from imhelp import drain, im, im_config

pytestmark = pytest.mark.imqtt_only

# 3 heartbeats of 1 s unheard, checked once a second, plus scheduling
GONE_WITHIN = 6.0


@pytest.fixture
def nodes():
    """Factory: nodes(config) -> Broker, like conftest's `broker`, but a
    node a test killed with SIGKILL (kill9) is not asked for a clean exit
    at teardown; the others are stopped by PID with SIGTERM and must exit
    0 without a sanitizer report."""
    started, killed = [], set()

    def start(config):
        b = Broker(config, tempfile.mkdtemp(prefix="imqtt-it-"))
        started.append(b)
        return b

    def kill9(b):
        killed.add(id(b))
        os.kill(b.pid, signal.SIGKILL)
        b.proc.wait(10)
        return b.stop()[1]

    start.kill9 = kill9
    yield start
    errors = []
    for b in started:
        try:
            if id(b) in killed:
                err = b.stop()[1]
                bad = [m for m in SANITIZER_MARKERS if m in err]
                assert not bad, "sanitizer report (%s):\n%s" % (bad, err[-20000:])
            else:
                b.check_stop()
        except BaseException as e:  # noqa: B902 - report all nodes
            errors.append(e)
    if errors:
        raise errors[0]


def metric(b, name):
    status, body = http_get(b.config["http"]["port"], "/metrics")
    assert status == 200, body
    return promparse.parse(body)[name]["samples"][0][2]


def wait_seen(bs, n, timeout=10.0):
    for b in bs:
        wait_for(lambda: metric(b, "imqtt_cluster_nodes_seen") == n, timeout,
                 0.1, "%s sees %d nodes" % (b.config["cluster"]["node"], n))


def start3(nats, nodes, im_mode=False, **extra):
    if im_mode:
        cfg = im_config()
        extra.update(listeners=cfg["listeners"], auth=cfg["auth"])
    bs = [nodes(node_config(nats, "imqtt%d" % (i + 1), proxy=False, **extra))
          for i in range(3)]
    wait_seen(bs, 3)
    return bs


def sys_value(c, state, topic, want, timeout):
    """Read c's messages into state (topic -> last payload) until `topic`
    carries `want` (bounded): values that do not change are not sent
    again, so what arrived while waiting for another topic counts."""
    deadline = time.monotonic() + timeout * SLOW
    while state.get(topic) != want and time.monotonic() < deadline:
        try:
            m = c.messages.get(timeout=0.2)
        except Exception:
            continue
        state[m.topic] = m.payload.decode()
    assert state.get(topic) == want, (topic, state)


def test_nodes_seen_and_kill9(nats_cluster, nodes):
    nats = nats_cluster()
    n1, n2, n3 = start3(nats, nodes, sys_interval=1)
    for b in (n1, n2, n3):
        assert "cluster: node imqtt" in b.stderr_text()
    c = Client(n1, "sys-watch")
    try:
        c.subscribe("$SYS/broker/cluster/#", 0)
        state = {}
        sys_value(c, state, "$SYS/broker/cluster/nodes", "3", 5)
        sys_value(c, state, "$SYS/broker/cluster/nats_connected", "1", 5)

        # kill -9: nothing said goodbye; the others notice the silence
        t0 = time.monotonic()
        nodes.kill9(n3)
        wait_seen([n1, n2], 2, GONE_WITHIN)
        took = time.monotonic() - t0
        print("imqtt3 gone for the others %.2f s after its kill -9" % took)
        assert 1.5 < took < GONE_WITHIN * SLOW, took
        for b in (n1, n2):
            assert "cluster: node imqtt3 is gone (not heard" in b.stderr_text()
        sys_value(c, state, "$SYS/broker/cluster/nodes", "2", 5)

        # SIGTERM: the node says goodbye, the other drops it at once
        t0 = time.monotonic()
        rc, err = n2.stop()
        assert rc == 0, err[-3000:]
        wait_seen([n1], 1, 2.0)
        assert time.monotonic() - t0 < 2.0 * SLOW + 1
        assert "cluster: node imqtt2 is gone (stopped" in n1.stderr_text()
    finally:
        c.c.disconnect()
        c.c.loop_stop()


def test_node_restart_is_seen(nats_cluster, nodes):
    """A node killed and started again under the same name is one node
    again, logged as up on the others."""
    nats = nats_cluster()
    n1, n2, n3 = start3(nats, nodes)
    nodes.kill9(n2)
    n2b = nodes(node_config(nats, "imqtt2", proxy=False))
    # back within the three heartbeats (restart seen), or after them
    wait_seen([n1, n3, n2b], 3)
    assert "cluster: node imqtt2 is up" in n1.stderr_text()


def presence_of(msg):
    d = json.loads(msg.payload)
    assert set(d) == {"user", "devices", "ts"}, d
    return d["user"], sorted(d["devices"])


def until_presence(c, want, timeout):
    """Presence messages of c until one says `want` (bounded): those seen."""
    seen = []
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        try:
            m = c.messages.get(timeout=0.1)
        except Exception:
            continue
        assert m.topic.startswith("p2p/presence/"), (m.topic, m.payload)
        seen.append(presence_of(m))
        if seen[-1] == want:
            return seen
    raise AssertionError("no presence %r within %.1fs: %r" % (want, timeout, seen))


def retained_presence(clients_made, b, who, user, timeout=5.0):
    """What a new subscriber on b gets retained for user, waiting (bounded)
    for the value to settle."""
    last = None
    deadline = time.monotonic() + timeout * SLOW
    i = 0
    while time.monotonic() < deadline:
        i += 1
        c = im(clients_made, b, who, "probe%d" % i)
        assert c.subscribe("p2p/presence/" + user, 1) == [1]
        got = [m for m in drain(c, 0.3) if m.topic == "p2p/presence/" + user]
        c.disconnect()
        if got:
            assert got[0].retain
            last = presence_of(got[0])
            yield last
        time.sleep(0.2)


def settled_retained(clients, b, who, user, want, timeout=5.0):
    last = None
    for last in retained_presence(clients, b, who, user, timeout):
        if last == want:
            return
    raise AssertionError("retained presence on %s: %r, expected %r"
                         % (b.config["cluster"]["node"], last, want))


def test_presence_across_nodes(nats_cluster, nodes, clients):
    nats = nats_cluster()
    n1, n2, n3 = start3(nats, nodes, im_mode=True)
    bob = im(clients, n3, "bob", "pc")
    assert bob.subscribe("p2p/presence/alice", 1) == [1]
    drain(bob, 0.3)
    im(clients, n1, "alice", "phone")
    until_presence(bob, ("alice", ["phone"]), 5)
    im(clients, n2, "alice", "laptop", version=4)
    until_presence(bob, ("alice", ["laptop", "phone"]), 5)
    # one message per change on bob's node: nothing more once settled
    assert drain(bob, 1.0) == []
    # every node answers a new subscriber alike
    for b in (n1, n2, n3):
        settled_retained(clients, b, "carol", "alice", ("alice", ["laptop", "phone"]))

    # node 2 killed: its device leaves the view, and stays out
    nodes.kill9(n2)
    seen = until_presence(bob, ("alice", ["phone"]), GONE_WITHIN)
    assert all(s == ("alice", ["laptop", "phone"]) for s in seen[:-1]), seen
    assert [presence_of(m) for m in drain(bob, 1.0)] in ([], [("alice", ["phone"])])
    for b in (n1, n3):
        settled_retained(clients, b, "carol", "alice", ("alice", ["phone"]))
        assert "presence of 1 users updated without node imqtt2" in b.stderr_text()


def test_presence_node_restart_and_leave(nats_cluster, nodes, clients):
    """A node that comes back learns the others' devices (they send their
    table to a node that comes up); a device leaving is seen everywhere."""
    nats = nats_cluster()
    n1, n2, n3 = start3(nats, nodes, im_mode=True)
    phone = im(clients, n1, "alice", "phone")
    im(clients, n3, "alice", "tab")
    nodes.kill9(n2)
    n2b = nodes(node_config(nats, "imqtt2", proxy=False,
                            listeners=im_config()["listeners"],
                            auth=im_config()["auth"]))
    wait_seen([n1, n3, n2b], 3)
    bob = im(clients, n2b, "bob", "pc")
    assert bob.subscribe("p2p/presence/alice", 1) == [1]
    # retained on the new node (from the bucket or its own merge) and
    # published again once it has heard the other two
    until_presence(bob, ("alice", ["phone", "tab"]), 5)
    phone.disconnect()
    until_presence(bob, ("alice", ["tab"]), 5)
