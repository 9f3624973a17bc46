"""The node's NATS connection (broker/cluster_link.c): it answers on its
inbox through the loop, shows its state in /metrics, and when NATS goes
away the broker keeps serving local clients — QoS 0 flows, QoS 1/2 are
refused (0x97, 3.1.1: closed) because the cluster's stream cannot take
them — and reconnects when NATS is back. Real nats-server, real broker."""
import signal

from clusterhelp import http_get, nats_cluster, probe  # noqa: F401 (fixture)
import mqttraw
import promparse
from conftest import assert_alive, free_port, raw, wait_for


def assert_refusing_durable(b):
    """NATS away: QoS 0 still reaches a local subscriber; a QoS 1 PUBLISH
    is refused before anyone gets it — v5 PUBACK 0x97, 3.1.1 closed."""
    sub = raw(b, version=5)
    sub.send(mqttraw.subscribe(1, [("away/#", 1)], version=5))
    assert sub.expect(mqttraw.SUBACK).reasons == [1]
    v5 = raw(b, version=5)
    v5.send(mqttraw.publish("away/q0", b"zero", qos=0, version=5))
    p = sub.expect(mqttraw.PUBLISH)
    assert (p.topic, p.payload) == ("away/q0", b"zero"), p
    v5.send(mqttraw.publish("away/q1", b"one", qos=1, pid=7, version=5))
    ack = v5.expect(mqttraw.PUBACK)
    assert (ack.pid, ack.reason) == (7, 0x97), ack
    v3 = raw(b, version=4)
    v3.send(mqttraw.publish("away/q2", b"two", qos=2, pid=8))
    v3.expect_closed()
    sub.assert_quiet(0.5)  # neither refused message was delivered
    for c in (sub, v5):
        c.close()


def gauge(b, name):
    status, body = http_get(b.config["http"]["port"], "/metrics")
    assert status == 200, body
    return promparse.parse(body)[name]["samples"][0][2]


def test_inbox_state_and_reconnect(nats_cluster, broker):
    nc = nats_cluster(n=1)
    srv = nc.servers[0]
    b = broker({"cluster": {"nats_urls": [srv.url], "node": "node-x",
                            "replicas": 1},
                "http": {"port": free_port()}})
    wait_for(lambda: gauge(b, "imqtt_cluster_nats_connected") == 1,
             what="NATS connected")
    # a request to the node's inbox is answered by the loop
    rc, out = probe("request", srv.url, "imqtt.node.node-x.ping")
    assert rc == 0 and "reply: node-x" in out, out
    # NATS dies: the node notices, keeps serving its MQTT clients
    srv.kill(signal.SIGKILL)
    wait_for(lambda: gauge(b, "imqtt_cluster_nats_connected") == 0,
             timeout=10, what="NATS loss seen")
    wait_for(lambda: "cluster: NATS connection lost" in b.stderr_text(),
             what="loss logged")
    assert_refusing_durable(b)
    status, body = http_get(b.config["http"]["port"], "/metrics")
    dropped = {lab["cause"]: val for n, lab, val in
               promparse.parse(body)["imqtt_messages_dropped_total"]["samples"]}
    assert dropped["cluster_unavailable"] == 2, dropped
    # NATS is back on the same port: reconnected, inbox answered again
    srv.start()
    wait_for(lambda: gauge(b, "imqtt_cluster_nats_connected") == 1,
             timeout=20, what="NATS reconnected")
    assert gauge(b, "imqtt_cluster_nats_reconnects_total") >= 1
    wait_for(lambda: probe("request", srv.url, "imqtt.node.node-x.ping")[0] == 0,
             timeout=10, what="inbox answered after the reconnect")
    assert_alive(b)
    # the fixture's SIGTERM checks a clean exit (loop ends, libnats closed)


def test_single_node_has_no_cluster_metrics(broker):
    b = broker({"http": {"port": free_port()}})
    status, body = http_get(b.config["http"]["port"], "/metrics")
    assert "imqtt_cluster_" not in body


def test_stops_cleanly_while_reconnecting(nats_cluster, broker):
    nc = nats_cluster(n=1)
    srv = nc.servers[0]
    b = broker({"cluster": {"nats_urls": [srv.url], "node": "node-y",
                            "replicas": 1},
                "http": {"port": free_port()}})
    wait_for(lambda: gauge(b, "imqtt_cluster_nats_connected") == 1,
             what="NATS connected")
    srv.kill(signal.SIGKILL)
    wait_for(lambda: gauge(b, "imqtt_cluster_nats_connected") == 0,
             timeout=10, what="NATS loss seen")
    b.check_stop()  # SIGTERM: exit 0 within the bound, no sanitizer report
