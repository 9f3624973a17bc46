"""Live routing across nodes on core NATS (docs/cluster.md, "Live
routing"; issue 11, T1): three imqtt nodes in cluster mode on a
three-server JetStream NATS cluster, clients connected straight to the
node a test puts them on (HAProxy would put a user's devices on one node).
Deliveries are counted exactly: every device gets every message once, in
order; nothing comes back to the sender."""
import time
import uuid

import pytest

from clusterhelp import nats_cluster, node_config  # noqa: F401 (fixture)
from conftest import PacketTypes, SLOW, props
from imhelp import drain, from_props, im, im_config, tp

pytestmark = pytest.mark.imqtt_only


def start_nodes(broker, nats_cluster, n=3, im_mode=False):
    nats = nats_cluster()
    extra = {}
    if im_mode:
        cfg = im_config()
        extra = {"listeners": cfg["listeners"], "auth": cfg["auth"]}
    nodes = [broker(node_config(nats, "imqtt%d" % (i + 1), proxy=False, **extra))
             for i in range(n)]
    return nats, nodes


def settle(pub, subs):
    """Wait until pub's node routes to every subscriber's node: each
    subscriber takes a fresh topic, pub publishes on it until it arrives
    (NATS spreads interest across its routes asynchronously). The probe
    subscription is removed and its messages drained."""
    for s in subs:
        t = "settle/%s" % uuid.uuid4().hex
        assert s.subscribe(t, 0) == [0]
        deadline = time.monotonic() + 10 * SLOW
        got = False
        while not got and time.monotonic() < deadline:
            pub.publish(t, b"probe", qos=0)
            try:
                while True:
                    m = s.messages.get(timeout=0.1)
                    if m.topic == t:
                        got = True
            except Exception:
                pass
        assert got, "no route to a subscriber's node"
        s.unsubscribe(t)
        drain(s, 0.2)


def expect_exact(c, expected, who, timeout=5.0, quiet=0.5):
    got = []
    deadline = time.monotonic() + timeout * SLOW
    while len(got) < len(expected) and time.monotonic() < deadline:
        try:
            got.append(c.messages.get(timeout=max(0.01, deadline - time.monotonic())))
        except Exception:
            break
    got += drain(c, quiet)
    assert tp(got) == expected, "%s received %r, expected %r" % (who, tp(got), expected)
    return got


def test_plain_routing_across_nodes(broker, clients, nats_cluster):
    nats, (n1, n2, n3) = start_nodes(broker, nats_cluster)
    sub2 = clients(n2, "sub2", version=5)
    sub3 = clients(n3, "sub3", version=4)
    assert sub2.subscribe("a/b", 1) == [1]
    assert sub3.subscribe("a/+", 1) == [1]
    pub = clients(n1, "pub1", version=5)
    settle(pub, [sub2, sub3])
    for i in range(20):
        pub.publish("a/b", b"m%d" % i, qos=i % 2)
    expected = [("a/b", b"m%d" % i) for i in range(20)]
    expect_exact(sub2, expected, "sub2")
    expect_exact(sub3, expected, "sub3")
