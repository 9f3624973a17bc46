"""The node's NATS connection on the event loop (broker/cluster_link.c):
it answers on its inbox through the loop, shows its state in /metrics,
and when NATS goes away the broker keeps serving local clients and
reconnects when NATS is back. Real nats-server, real broker."""
import signal

from clusterhelp import http_get, nats_cluster, probe  # noqa: F401 (fixture)
import promparse
from conftest import assert_alive, free_port, wait_for


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
    assert_alive(b)
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
