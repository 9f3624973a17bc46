"""The durable path (docs/cluster.md, "The durable path"; issue 11): in
cluster mode a QoS 1/2 PUBLISH is acknowledged only once the cluster's
JetStream stream has it, and refused (v5 0x97, 3.1.1 closed) when the
stream cannot take it. The stream republishes it to the nodes, so an
acknowledged message reaches the other nodes' subscribers even when the
publishing node dies right after the PUBACK. Real nats-server, real
broker nodes, raw MQTT clients so that every ack is seen as it comes."""
import signal
import threading
import time

import pytest

from clusterhelp import http_get, nats_cluster, node_config, probe  # noqa: F401
import mqttraw
import promparse
from conftest import SLOW, raw, wait_for

pytestmark = pytest.mark.imqtt_only


def metric(b, name):
    status, body = http_get(b.config["http"]["port"], "/metrics")
    assert status == 200, body
    return promparse.parse(body)[name]["samples"][0][2]


def stream_info(nats):
    rc, out = probe("stream", nats.urls, "IMQTT_MSGS")
    assert rc == 0, out
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def settle(pub, sub, topic):
    """Until pub's node routes `topic` to sub's node (NATS spreads the
    subscription's interest asynchronously): QoS 0 probes."""
    deadline = time.monotonic() + 10 * SLOW
    while time.monotonic() < deadline:
        pub.send(mqttraw.publish(topic, b"probe", qos=0, version=5))
        try:
            p = sub.recv(0.2)
        except TimeoutError:
            continue
        assert p.type == mqttraw.PUBLISH and p.payload == b"probe", p
        time.sleep(0.2)
        try:  # the probes still on their way
            while True:
                sub.recv(0.2)
        except TimeoutError:
            return
    raise AssertionError("no route from the publisher's node")


def two_nodes(broker, nats_cluster, n_nats=1):
    nats = nats_cluster(n=n_nats)
    nodes = [broker(node_config(nats, "imqtt%d" % (i + 1), proxy=False))
             for i in range(2)]
    return nats, nodes


def test_stream_created_and_acks_follow_it(broker, nats_cluster):
    nats, (n1, n2) = two_nodes(broker, nats_cluster)
    info = stream_info(nats)
    assert info["subjects"] == "imqtt_j.>" and info["republish"] == "imqtt_j.> -> imqtt.>"
    assert info["replicas"] == "1" and info["messages"] == "0", info

    sub = raw(n2, version=5)
    sub.send(mqttraw.subscribe(1, [("d/#", 1)], version=5))
    assert sub.expect(mqttraw.SUBACK).reasons == [1]
    pub = raw(n1, version=5)
    settle(pub, sub, "d/probe")
    for i in range(50):
        pub.send(mqttraw.publish("d/x", b"m%d" % i, qos=1, pid=i + 1, version=5))
    acks = [pub.expect(mqttraw.PUBACK) for _ in range(50)]
    assert [(a.pid, a.reason) for a in acks] == [(i + 1, 0) for i in range(50)]
    got = [sub.expect(mqttraw.PUBLISH).payload for _ in range(50)]
    assert got == [b"m%d" % i for i in range(50)]  # once each, in order
    sub.assert_quiet(0.5)
    # QoS 0 (the probes) never touched the stream
    assert stream_info(nats)["messages"] == "50"
    assert metric(n1, "imqtt_cluster_stream_acked_total") == 50
    assert metric(n1, "imqtt_cluster_stream_inflight") == 0
    assert metric(n2, "imqtt_cluster_received_total") >= 50
    # QoS 2 the same: PUBREC after the stream, delivered once
    pub.send(mqttraw.publish("d/two", b"q2", qos=2, pid=99, version=5))
    rec = pub.expect(mqttraw.PUBREC)
    assert (rec.pid, rec.reason) == (99, 0)
    pub.send(mqttraw.ack(mqttraw.PUBREL, 99, version=5))
    assert pub.expect(mqttraw.PUBCOMP).pid == 99
    p = sub.expect(mqttraw.PUBLISH)
    assert (p.topic, p.payload, p.qos) == ("d/two", b"q2", 1)
    sub.assert_quiet(0.5)
    assert stream_info(nats)["messages"] == "51"


def test_puback_waits_for_the_stream(broker, nats_cluster):
    """NATS stopped (SIGSTOP: the connection stays up, nothing answers):
    the PUBACK does not come; after SIGCONT it does, and the message
    reaches the other node. Stopped longer than the node waits for the
    stream (10 s): refused, v5 0x97, 3.1.1 closed."""
    nats, (n1, n2) = two_nodes(broker, nats_cluster)
    srv = nats.servers[0]
    sub = raw(n2, version=5)
    sub.send(mqttraw.subscribe(1, [("w/#", 1)], version=5))
    assert sub.expect(mqttraw.SUBACK).reasons == [1]
    pub = raw(n1, version=5)
    settle(pub, sub, "w/probe")

    srv.proc.send_signal(signal.SIGSTOP)
    try:
        pub.send(mqttraw.publish("w/a", b"held", qos=1, pid=1, version=5))
        pub.assert_quiet(1.0)  # no PUBACK while the stream cannot answer
    finally:
        srv.proc.send_signal(signal.SIGCONT)
    ack = pub.expect(mqttraw.PUBACK, timeout=10 * SLOW)
    assert (ack.pid, ack.reason) == (1, 0)
    p = sub.expect(mqttraw.PUBLISH, timeout=10 * SLOW)
    assert p.payload == b"held"

    v3 = raw(n1, version=4)
    srv.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        pub.send(mqttraw.publish("w/b", b"late", qos=1, pid=2, version=5))
        v3.send(mqttraw.publish("w/c", b"late3", qos=1, pid=3))
        ack = pub.expect(mqttraw.PUBACK, timeout=20 * SLOW)
        waited = time.monotonic() - t0
        assert (ack.pid, ack.reason) == (2, 0x97), ack
        assert waited >= 9.0, waited  # DURABLE_ACK_WAIT_MS
        v3.expect_closed(timeout=10 * SLOW)
    finally:
        srv.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: metric(n1, "imqtt_cluster_stream_failed_total") == 2,
             what="both publications counted as failed")
    # the node goes on: the next QoS 1 is acknowledged again
    pub.send(mqttraw.publish("w/d", b"again", qos=1, pid=4, version=5))
    ack = pub.expect(mqttraw.PUBACK, timeout=10 * SLOW)
    assert (ack.pid, ack.reason) == (4, 0)


def test_acknowledged_survives_publisher_node_kill(broker, nats_cluster):
    """T3, the publisher's side: QoS 1 load on node 1, a subscriber on
    node 2; node 1 is killed with SIGKILL mid-stream. Every message whose
    PUBACK the publisher saw reaches the subscriber (at least once, in
    order of first arrival)."""
    nats, (n1, n2) = two_nodes(broker, nats_cluster, n_nats=3)
    sub = raw(n2, version=5)
    sub.send(mqttraw.subscribe(1, [("k/#", 1)], version=5))
    assert sub.expect(mqttraw.SUBACK).reasons == [1]
    pub = raw(n1, version=5)
    settle(pub, sub, "k/probe")

    acked = []
    stop = threading.Event()

    def publish():
        pid = 0
        try:
            while not stop.is_set() and pid < 20000:
                for _ in range(20):  # a window of 20
                    pid += 1
                    pub.send(mqttraw.publish("k/load", b"%d" % pid, qos=1,
                                             pid=(pid % 65535) + 1, version=5))
                for _ in range(20):
                    a = pub.recv(5)
                    if a.type == mqttraw.PUBACK and a.reason == 0:
                        acked.append(a.pid)
        except (mqttraw.Closed, TimeoutError, OSError):
            pass

    received = set()

    def subscribe():
        # reads and acknowledges all along, until nothing came for 3 s
        try:
            while True:
                p = sub.recv(3 * SLOW)
                if p.type == mqttraw.PUBLISH:
                    received.add(int(p.payload))
                    if p.qos == 1:
                        sub.send(mqttraw.ack(mqttraw.PUBACK, p.pid, version=5))
        except TimeoutError:
            pass

    reader = threading.Thread(target=subscribe)
    reader.start()
    t = threading.Thread(target=publish)
    t.start()
    wait_for(lambda: len(acked) >= 2000, timeout=60 * SLOW, what="load running")
    n1.kill9()
    stop.set()
    t.join(30)
    reader.join(120)
    acked_payloads = {pid - 1 for pid in acked}  # packet id n carried payload n - 1
    missing = sorted(acked_payloads - received)
    assert not missing, "acknowledged but not delivered: %s" % missing[:20]
