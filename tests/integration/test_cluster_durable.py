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


class Load:
    """QoS 1 from `pub` (window 20, payload = a counter, packet id =
    counter + 1) to `sub`, which reads and acknowledges all along. The
    counters whose PUBACK was 0x00 are `acked`, what `sub` got `received`;
    the caller breaks something meanwhile, then calls finish()."""

    def __init__(self, pub, sub, topic="k/load", limit=20000):
        self.pub, self.sub, self.topic, self.limit = pub, sub, topic, limit
        self.acked, self.refused, self.received = [], [], set()
        self.stop = threading.Event()
        self.reader = threading.Thread(target=self._read)
        self.writer = threading.Thread(target=self._write)
        self.reader.start()
        self.writer.start()

    def _write(self):
        n = 0
        try:
            while not self.stop.is_set() and n < self.limit:
                for _ in range(20):
                    n += 1
                    self.pub.send(mqttraw.publish(self.topic, b"%d" % n, qos=1,
                                                  pid=n + 1, version=5))
                for _ in range(20):
                    a = self.pub.recv(30 * SLOW)
                    if a.type == mqttraw.PUBACK:
                        (self.acked if a.reason == 0 else self.refused).append(a.pid - 1)
        except (mqttraw.Closed, TimeoutError, OSError):
            pass

    def _read(self):
        # until nothing came for 5 s once the writer is done
        while True:
            try:
                p = self.sub.recv(5 * SLOW)
            except TimeoutError:
                if not self.writer.is_alive():
                    return
                continue
            if p.type == mqttraw.PUBLISH:
                self.received.add(int(p.payload))
                if p.qos == 1:
                    self.sub.send(mqttraw.ack(mqttraw.PUBACK, p.pid, version=5))

    def finish(self):
        self.stop.set()
        self.writer.join(60 * SLOW)
        self.reader.join(120 * SLOW)
        missing = sorted(set(self.acked) - self.received)
        assert not missing, "acknowledged but not delivered: %s" % missing[:20]


def test_acknowledged_survives_publisher_node_kill(broker, nats_cluster):
    """T3, the publisher's side: QoS 1 load on node 1, a subscriber on
    node 2; node 1 is killed with SIGKILL mid-stream. Every message whose
    PUBACK the publisher saw reaches the subscriber."""
    nats, (n1, n2) = two_nodes(broker, nats_cluster, n_nats=3)
    sub = raw(n2, version=5)
    sub.send(mqttraw.subscribe(1, [("k/#", 1)], version=5))
    assert sub.expect(mqttraw.SUBACK).reasons == [1]
    pub = raw(n1, version=5)
    settle(pub, sub, "k/probe")
    load = Load(pub, sub)
    wait_for(lambda: len(load.acked) >= 2000, timeout=60 * SLOW, what="load running")
    n1.kill9()
    load.finish()


def test_stream_leader_killed_under_load(broker, nats_cluster):
    """T4: the NATS server leading the R3 stream is killed with SIGKILL
    under QoS 1 load: acks stall while the others elect a new leader, then
    go on (what was in flight is sent again with its id; "no responders"
    during the election is retried); every message acknowledged 0x00
    reaches the subscriber on the other node, the ones the new leader
    answered "duplicate" through the publishing node's own live copy."""
    nats, (n1, n2) = two_nodes(broker, nats_cluster, n_nats=3)
    leader = stream_info(nats)["leader"]
    sub = raw(n2, version=5)
    sub.send(mqttraw.subscribe(1, [("k/#", 1)], version=5))
    assert sub.expect(mqttraw.SUBACK).reasons == [1]
    pub = raw(n1, version=5)
    settle(pub, sub, "k/probe")
    load = Load(pub, sub, limit=12000)
    wait_for(lambda: len(load.acked) >= 1000, timeout=60 * SLOW, what="load running")
    before = len(load.acked)
    t0 = time.monotonic()
    [s for s in nats.servers if s.name == leader][0].kill()
    wait_for(lambda: len(load.acked) >= before + 1000, timeout=60 * SLOW,
             what="acks going on after the election")
    print("acks went on %.1f s after the leader's kill, %d refused"
          % (time.monotonic() - t0, len(load.refused)))
    load.finish()
    assert stream_info(nats)["leader"] != leader
