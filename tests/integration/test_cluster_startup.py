"""Cluster mode's start-up check (issue 11): with a "cluster" section the
broker starts only when a NATS server of cluster.nats_urls answers and
JetStream is there, and says clearly why not otherwise. Real nats-server
processes from clusterhelp.py."""
import json
import os
import signal
import subprocess
import tempfile
import time

import mqttraw
from clusterhelp import nats_cluster  # noqa: F401 (fixture)
from conftest import IMQTT_BIN, SLOW, assert_alive, free_port, wait_for


def cluster_cfg(urls, **kw):
    c = {"nats_urls": urls, "node": "node-1", "replicas": 1}
    c.update(kw)
    return {"cluster": c}


def run_refused(cfg):
    """Start the broker with cfg, expect it to exit by itself; returns
    (exit code, stderr)."""
    d = tempfile.mkdtemp(prefix="imqtt-cl-")
    cfg = dict(cfg)
    cfg.setdefault("store", {"dir": os.path.join(d, "data")})
    path = os.path.join(d, "imqtt.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    r = subprocess.run([IMQTT_BIN, "--config", path, "--port", str(free_port()),
                        "--bind", "127.0.0.1"], capture_output=True,
                       timeout=30 * SLOW)
    return r.returncode, r.stderr.decode("utf-8", "replace")


def run_started(cfg, timeout=30.0 * SLOW):
    """Start the broker with cfg (its start-up may wait for JetStream
    longer than the broker fixture waits), expect it to start and serve
    within timeout, stop it with SIGTERM; returns its stderr."""
    d = tempfile.mkdtemp(prefix="imqtt-cl-")
    cfg = dict(cfg)
    cfg.setdefault("store", {"dir": os.path.join(d, "data")})
    path = os.path.join(d, "imqtt.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = os.path.join(d, "stderr")
    port = free_port()
    with open(log, "wb") as out:
        p = subprocess.Popen([IMQTT_BIN, "--config", path, "--port", str(port),
                              "--bind", "127.0.0.1"], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and p.poll() is None:
            if b" started" in open(log, "rb").read():
                break
            time.sleep(0.05)
        text = open(log, "rb").read().decode("utf-8", "replace")
        assert p.poll() is None and " started" in text, text
        c = mqttraw.open_connected("127.0.0.1", port, "startup-probe")
        c.close()
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(10 * SLOW)
    text = open(log, "rb").read().decode("utf-8", "replace")
    assert rc == 0, text
    assert "Sanitizer" not in text and "runtime error:" not in text, text
    return text


def test_refuses_to_start_when_nats_is_unreachable():
    port = free_port()
    rc, err = run_refused(cluster_cfg(["nats://127.0.0.1:%d" % port],
                                      connect_timeout_ms=500))
    assert rc == 1, err
    assert "start-up failed: cluster: cannot reach NATS at nats://127.0.0.1:%d" % port in err, err


def test_refuses_to_start_without_jetstream(nats_cluster):
    plain = nats_cluster(n=1, jetstream=False)
    rc, err = run_refused(cluster_cfg([plain.servers[0].url]))
    assert rc == 1, err
    assert "JetStream is not enabled on NATS at" in err, err
    assert "-js" in err, err


def test_refuses_a_bad_cluster_section():
    rc, err = run_refused(cluster_cfg(["nats://127.0.0.1:4222"], node="a.b"))
    assert rc == 2, err
    assert "cluster.node: expected 1 to 64 of A-Z a-z 0-9 _ -" in err, err


def test_starts_with_a_jetstream_cluster(nats_cluster, broker):
    nc = nats_cluster()
    urls = [s.url for s in nc.servers]
    b = broker(cluster_cfg(urls, node="n-a", replicas=3))
    assert "cluster node n-a: NATS at nats://127.0.0.1:" in b.stderr_text()
    assert "JetStream available" in b.stderr_text()
    assert_alive(b)
    # the JetStream meta leader dies: a node starting now waits for the
    # election (startup_wait_ms) instead of failing, through any listed
    # server that is still up
    leader = nc.meta_leader()
    dead = [s for s in nc.servers if s.name == leader][0]
    dead.kill()
    t0 = time.monotonic()
    err = run_started(cluster_cfg(urls, node="n-b", replicas=3))
    print("started %.1f s after the meta leader's death" % (time.monotonic() - t0))
    assert "cluster node n-b: NATS at" in err, err


def test_refuses_when_jetstream_has_no_quorum(nats_cluster):
    """Two of three servers gone: JetStream cannot elect a leader; the node
    waits startup_wait_ms, then refuses with the reason."""
    nc = nats_cluster()
    urls = [s.url for s in nc.servers]
    nc.servers[0].kill()
    nc.servers[1].kill()
    # until the survivor notices, it may still answer as the leader
    last = nc.servers[2]
    wait_for(lambda: not ((last.jsz() or {}).get("meta_cluster") or {}).get("leader"),
             timeout=30, what="the survivor without a meta leader")
    t0 = time.monotonic()
    rc, err = run_refused(cluster_cfg(urls, replicas=3, connect_timeout_ms=500,
                                      startup_wait_ms=1500))
    took = time.monotonic() - t0
    assert rc == 1, err
    assert "did not answer within 1500 ms" in err, err
    assert took >= 1.5, took
