"""Retained messages cluster-wide in a JetStream KV bucket (docs/cluster.md,
"Retained messages"; issue 11, T6): set, replace and clear from different
nodes; a new subscriber on every node gets the same answer."""
import time

import pytest

from clusterhelp import http_get, nats_cluster, node_config  # noqa: F401 (fixture)
import promparse
from conftest import PacketTypes, SLOW, props, wait_for
from imhelp import drain, tp

pytestmark = pytest.mark.imqtt_only


def metric(b, name):
    status, body = http_get(b.config["http"]["port"], "/metrics")
    assert status == 200, body
    return promparse.parse(body)[name]["samples"][0][2]


def retained_on(clients, b, topic, tag):
    """What a new subscriber on node b gets for `topic` (retained only)."""
    c = clients(b, "new-%s" % tag, version=5)
    c.subscribe(topic, 1)
    got = drain(c, 0.3)
    c.disconnect()
    assert all(m.retain for m in got)
    return tp(got)


def converge(clients, nodes, topic, expected, what):
    """Every node answers a new subscriber with `expected` (in any order:
    MQTT does not order the retained messages of a wildcard), soon."""
    expected = sorted(expected)
    deadline = time.monotonic() + 10 * SLOW
    n = 0
    while True:
        answers = []
        for i, b in enumerate(nodes):
            n += 1
            answers.append(sorted(retained_on(clients, b, topic, "%d-%d" % (i, n))))
        if all(a == expected for a in answers):
            return
        if time.monotonic() > deadline:
            pytest.fail("%s: nodes answer %r, expected %r" % (what, answers, expected))
        time.sleep(0.1)


def test_retained_set_replace_clear_from_different_nodes(broker, clients, nats_cluster):
    nats = nats_cluster()
    nodes = [broker(node_config(nats, "imqtt%d" % (i + 1), proxy=False))
             for i in range(3)]
    for b in nodes:
        wait_for(lambda b=b: metric(b, "imqtt_cluster_retained_ready") == 1,
                 timeout=15 * SLOW, what="retained bucket ready")
    n1, n2, n3 = nodes
    p1 = clients(n1, "p1", version=5)
    p2 = clients(n2, "p2", version=4)
    p3 = clients(n3, "p3", version=5)

    # set on node 1
    p1.publish("r/a", b"v1", qos=1, retain=True,
               properties=props(PacketTypes.PUBLISH, UserProperty=[("k", "v")]))
    converge(clients, nodes, "r/a", [("r/a", b"v1")], "set on node 1")
    # its properties travel with it
    c = clients(n3, "props", version=5)
    c.subscribe("r/a", 1)
    m = c.get()
    assert ("k", "v") in m.properties.UserProperty
    c.disconnect()

    # replace on node 2 (3.1.1), then another topic from node 3
    p2.publish("r/a", b"v2", qos=1, retain=True)
    p3.publish("r/b", b"b1", qos=0, retain=True)
    converge(clients, nodes, "r/a", [("r/a", b"v2")], "replaced on node 2")
    converge(clients, nodes, "r/#", [("r/a", b"v2"), ("r/b", b"b1")], "two topics")

    # concurrent writers on the same topic: every node ends the same
    for i in range(10):
        (p1, p2, p3)[i % 3].publish("r/c", b"c%d" % i, qos=1, retain=True)
    deadline = time.monotonic() + 10 * SLOW
    while True:
        answers = [retained_on(clients, b, "r/c", "c%d" % i)
                   for i, b in enumerate(nodes)]
        if answers[0] and answers.count(answers[0]) == 3:
            break
        assert time.monotonic() < deadline, answers
        time.sleep(0.2)

    # clear on node 3
    p3.publish("r/a", b"", qos=1, retain=True)
    converge(clients, nodes, "r/a", [], "cleared on node 3")
    converge(clients, nodes, "r/b", [("r/b", b"b1")], "the other topic stays")
    for b in nodes:
        assert metric(b, "imqtt_cluster_retained_failed_total") == 0
        assert metric(b, "imqtt_cluster_retained_invalid_total") == 0


def test_new_node_gets_the_bucket(broker, clients, nats_cluster):
    """A node started after the messages were retained reads them from the
    bucket."""
    nats = nats_cluster()
    n1 = broker(node_config(nats, "imqtt1", proxy=False))
    wait_for(lambda: metric(n1, "imqtt_cluster_retained_ready") == 1,
             timeout=15 * SLOW, what="retained bucket ready")
    p = clients(n1, "p", version=5)
    for i in range(5):
        p.publish("late/%d" % i, b"x%d" % i, qos=1, retain=True)
    wait_for(lambda: metric(n1, "imqtt_cluster_retained_written_total") >= 5,
             timeout=10 * SLOW, what="written to the bucket")
    n2 = broker(node_config(nats, "imqtt2", proxy=False))
    wait_for(lambda: metric(n2, "imqtt_cluster_retained_ready") == 1,
             timeout=15 * SLOW, what="retained bucket ready on node 2")
    got = retained_on(clients, n2, "late/#", "n2")
    assert sorted(got) == [("late/%d" % i, b"x%d" % i) for i in range(5)]


def test_node_back_after_a_clear_answers_like_the_others(broker, clients, nats_cluster,
                                                         tmp_path):
    """Node 2 retains r/x and r/y in its own store, stops; meanwhile r/x is
    cleared and r/z set on node 1. Node 2 comes back on its store: it
    answers like node 1 (r/y, r/z), not what its store had."""
    nats = nats_cluster()
    store2 = str(tmp_path / "node2-store")
    n1 = broker(node_config(nats, "imqtt1", proxy=False))
    cfg2 = node_config(nats, "imqtt2", proxy=False, store={"dir": store2})
    n2 = broker(cfg2)
    for b in (n1, n2):
        wait_for(lambda b=b: metric(b, "imqtt_cluster_retained_ready") == 1,
                 timeout=15 * SLOW, what="retained bucket ready")
    p2 = clients(n2, "p2", version=5)
    p2.publish("r/x", b"x", qos=1, retain=True)
    p2.publish("r/y", b"y", qos=1, retain=True)
    wait_for(lambda: metric(n2, "imqtt_cluster_retained_written_total") >= 2,
             timeout=10 * SLOW, what="written to the bucket")
    p2.disconnect()
    n2.stop()
    p1 = clients(n1, "p1", version=5)
    p1.publish("r/x", b"", qos=1, retain=True)
    p1.publish("r/z", b"z", qos=1, retain=True)
    wait_for(lambda: metric(n1, "imqtt_cluster_retained_written_total") >= 2,
             timeout=10 * SLOW, what="written to the bucket")
    cfg2["http"] = {"port": cfg2["http"]["port"]}
    n2b = broker(cfg2)
    wait_for(lambda: metric(n2b, "imqtt_cluster_retained_ready") == 1,
             timeout=15 * SLOW, what="retained bucket ready on node 2 again")
    want = [("r/y", b"y"), ("r/z", b"z")]
    assert sorted(retained_on(clients, n1, "r/#", "a")) == want
    assert sorted(retained_on(clients, n2b, "r/#", "b")) == want


def test_watch_survives_a_nats_restart(broker, clients, nats_cluster):
    """One NATS server, two nodes. The server is killed and started again
    on its port and store: a retained message set on node 2 afterwards
    reaches node 1's retained index (its watch came back), and so does
    live routing."""
    import signal
    nats = nats_cluster(n=1)
    srv = nats.servers[0]
    n1 = broker(node_config(nats, "imqtt1", proxy=False))
    n2 = broker(node_config(nats, "imqtt2", proxy=False))
    for b in (n1, n2):
        wait_for(lambda b=b: metric(b, "imqtt_cluster_retained_ready") == 1,
                 timeout=15 * SLOW, what="retained bucket ready")
    p2 = clients(n2, "p2", version=5)
    live = clients(n1, "live", version=5)
    assert live.subscribe("live/x", 1) == [1]
    p2.publish("w/before", b"b", qos=1, retain=True)
    wait_for(lambda: retained_on(clients, n1, "w/before", "x") == [("w/before", b"b")],
             timeout=10 * SLOW, what="before the restart")
    srv.kill(signal.SIGKILL)
    for b in (n1, n2):
        wait_for(lambda b=b: metric(b, "imqtt_cluster_nats_connected") == 0,
                 timeout=10 * SLOW, what="NATS loss seen")
    srv.start()
    for b in (n1, n2):
        wait_for(lambda b=b: metric(b, "imqtt_cluster_nats_connected") == 1,
                 timeout=20 * SLOW, what="NATS back")
    k = [0]

    def on_n1():
        k[0] += 1
        p2.publish("w/after", b"a%d" % k[0], qos=1, retain=True)
        time.sleep(0.3)
        got = retained_on(clients, n1, "w/after", "y%d" % k[0])
        return got and got[0][0] == "w/after"
    wait_for(on_n1, timeout=30 * SLOW, interval=0.5,
             what="a retained set after the restart reaches node 1")
    assert retained_on(clients, n1, "w/before", "z") == [("w/before", b"b")]
    # live routing: libnats subscribed node 1 again on the reconnect
    drain(live, 0.1)
    p2.publish("live/x", b"hello", qos=1)
    assert tp([live.get(timeout=5 * SLOW)]) == [("live/x", b"hello")]
