"""The HTTP listener: /metrics in Prometheus text format (checked by a
strict parser), /healthz, refusal counters."""
import http.client
import socket

import pytest

import imhelp
import mqttraw
import promparse
from conftest import Client, free_port
from opshelp import RawWS, start

pytestmark = pytest.mark.imqtt_only


def get(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, r.getheader("Content-Type"), body


def metrics(port):
    status, ctype, body = get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    return promparse.parse(body)


def total(fams, name):
    """Sum of a family's samples over all its labels."""
    return sum(v for n, _, v in fams[name]["samples"] if n == name)


def test_metrics_and_healthz(broker):
    hp = free_port()
    b, (wsport,) = start(broker, [{"transport": "ws", "max_connections": 1}],
                         {"http": {"port": hp}})
    assert get(hp, "/healthz")[0] == 200
    assert get(hp, "/nothing")[0] == 404
    assert get(hp, "/metrics", "POST")[0] == 405
    fams = metrics(hp)
    for name in ("imqtt_connections", "imqtt_messages_received_total",
                 "imqtt_messages_sent_total", "imqtt_messages_dropped_total",
                 "imqtt_bytes_received_total", "imqtt_store_size_bytes",
                 "imqtt_retained_messages", "imqtt_subscriptions",
                 "imqtt_tls_handshake_failures_total", "imqtt_connections_refused_total"):
        assert name in fams, name
    assert promparse.value(fams, "imqtt_connections") == 0

    sub = Client(b, "m-sub")
    sub.subscribe("m/t", 1)
    pub = Client(b, "m-pub")
    for i in range(5):
        pub.publish("m/t", b"x", qos=1)
    for i in range(5):
        sub.messages.get(timeout=5)
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_connections") == 2
    assert total(fams, "imqtt_messages_received_total") >= 5
    assert total(fams, "imqtt_messages_sent_total") >= 5
    assert promparse.value(fams, "imqtt_subscriptions") >= 1

    # refusals are counted by cause
    a = RawWS(wsport)
    bad = RawWS(wsport, upgrade=False)
    try:
        bad.s.settimeout(2)
        assert bad.s.recv(10) == b""
    except (ConnectionError, socket.timeout):
        pass
    bad2 = RawWS(wsport, upgrade=False)
    a.close()
    bad.close()
    bad2.close()
    import time
    time.sleep(0.3)
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_connections_refused_total",
                           cause="max_connections") >= 1
    sub.c.disconnect()
    pub.c.disconnect()


def test_http_off_by_default_and_bad_requests(broker):
    b = broker({})
    assert "metrics on" not in b.stderr_text()
    hp = free_port()
    b2 = broker({"http": {"port": hp}})
    assert "metrics on http://127.0.0.1:%d" % hp in b2.stderr_text()
    s = socket.create_connection(("127.0.0.1", hp))
    s.sendall(b"X" * 5000)
    assert b"431" in s.recv(100)
    s.close()
    s = socket.create_connection(("127.0.0.1", hp))
    s.sendall(b"garbage\r\n\r\n")
    assert b"400" in s.recv(100)
    s.close()


def qos2_in(c, pid):
    """Complete a QoS 2 PUBLISH this client sent (PUBREC -> PUBREL)."""
    assert c.expect(mqttraw.PUBREC).pid == pid
    c.send(mqttraw.ack(mqttraw.PUBREL, pid, version=5))
    assert c.expect(mqttraw.PUBCOMP).pid == pid


def test_metrics_exact_after_workload(broker):
    """A scripted workload, then the exact counters: messages by QoS in and
    out, drops by cause, auth failures by cause, queue depths, the commit
    latency histogram."""
    hp = free_port()
    cfg = imhelp.im_config()
    im_listener = cfg["listeners"][0]
    del im_listener["bind"], im_listener["port"]
    cfg.pop("listeners")
    cfg.update({"http": {"port": hp}, "sys_interval": 0,
                "acl": {"default": "allow", "rules": [
                    {"permission": "deny", "action": "publish", "topic": "deny/#"}]}})
    b, (im_port,) = start(broker, [im_listener], cfg)
    v5 = dict(version=5)
    sub = mqttraw.open_connected(b.host, b.port, "mx-sub", **v5)
    sub.send(mqttraw.subscribe(1, [("w/#", 2)], **v5))
    assert sub.expect(mqttraw.SUBACK).reasons == [2]
    small = mqttraw.open_connected(b.host, b.port, "mx-small", version=5,
                                   properties=[("maximum_packet_size", 64)])
    small.send(mqttraw.subscribe(1, [("big/#", 0)], **v5))
    assert small.expect(mqttraw.SUBACK).reasons == [0]
    # an offline session with two messages queued
    off = mqttraw.open_connected(b.host, b.port, "mx-off", clean=False)
    off.send(mqttraw.subscribe(1, [("q/#", 1)]))
    off.expect(mqttraw.SUBACK)
    off.send(mqttraw.disconnect())
    off.close()

    pub = mqttraw.open_connected(b.host, b.port, "mx-pub", **v5)
    pub.send(mqttraw.publish("w/0", b"a", qos=0, **v5))
    pub.send(mqttraw.publish("w/1", b"b", qos=1, pid=1, **v5))
    assert pub.expect(mqttraw.PUBACK).pid == 1
    pub.send(mqttraw.publish("w/2", b"c", qos=2, pid=2, **v5))
    qos2_in(pub, 2)
    # the subscriber gets all three and acknowledges them
    got, released = {}, False
    while len(got) < 3 or not released:
        p = sub.recv()
        if p.type == mqttraw.PUBLISH:
            qos = (p.flags >> 1) & 3
            got[qos] = p
            if qos == 1:
                sub.send(mqttraw.ack(mqttraw.PUBACK, p.pid, **v5))
            elif qos == 2:
                sub.send(mqttraw.ack(mqttraw.PUBREC, p.pid, **v5))
        elif p.type == mqttraw.PUBREL:
            sub.send(mqttraw.ack(mqttraw.PUBCOMP, p.pid, **v5))
            released = True
    assert sorted(got) == [0, 1, 2]
    # denied by the ACL
    pub.send(mqttraw.publish("deny/x", b"d", qos=1, pid=3, **v5))
    p = pub.expect(mqttraw.PUBACK)
    assert p.pid == 3 and p.reason == 0x87
    # too large for the small client's maximum packet size
    pub.send(mqttraw.publish("big/x", b"x" * 200, qos=0, **v5))
    # queued for the offline session
    for i in range(2):
        pub.send(mqttraw.publish("q/x", b"12345", qos=1, pid=10 + i, **v5))
        assert pub.expect(mqttraw.PUBACK).pid == 10 + i
    # bad tokens on the IM listener: malformed, bad signature, expired
    for tok in ("not-a-token", imhelp.mint("alice", sign_with="wrong-key-" * 4),
                imhelp.mint("alice", ttl=-3600)):
        c = mqttraw.RawClient(b.host, im_port, version=5)
        ack = c.connect("alice@phone", username="alice", password=tok)
        assert ack.reason == 0x86, ack
        c.close()
    small.send(mqttraw.pingreq())
    small.expect(mqttraw.PINGRESP)  # the big message was not sent

    fams = metrics(hp)
    v = lambda name, **lab: promparse.value(fams, name, **lab)  # noqa: E731
    assert [v("imqtt_messages_received_total", qos=str(q)) for q in range(3)] == [2, 4, 1]
    assert [v("imqtt_messages_sent_total", qos=str(q)) for q in range(3)] == [1, 1, 1]
    dropped = {lab["cause"]: val for n, lab, val in fams["imqtt_messages_dropped_total"]["samples"]}
    assert dropped == {"queue_full": 0, "queue_bytes": 0, "expired": 0, "too_large": 1,
                       "slow_reader": 0, "qos0_offline": 0, "not_authorized": 1,
                       "store_full": 0, "out_of_memory": 0,
                       "cluster_unavailable": 0}, dropped
    auth = {lab["cause"]: val for n, lab, val in fams["imqtt_auth_failures_total"]["samples"]}
    assert auth == {"client_id_invalid": 0, "bad_password": 0, "token_missing": 0,
                    "token_expired": 1, "token_signature": 1, "token_alg": 0,
                    "token_malformed": 1, "token_claims": 0, "not_authorized": 0,
                    "server_error": 0}, auth
    assert v("imqtt_queued_messages") == 2
    assert v("imqtt_queued_messages_max") == 2
    assert v("imqtt_queued_bytes") == 10
    assert v("imqtt_store_messages") == 2  # the two queued, stored once each
    # the commit histogram: cumulative buckets ending in +Inf == _count
    h = fams["imqtt_store_commit_seconds"]
    assert h["type"] == "histogram"
    buckets = [(lab["le"], val) for n, lab, val in h["samples"] if n.endswith("_bucket")]
    counts = [val for _, val in buckets]
    assert buckets[-1][0] == "+Inf" and counts == sorted(counts)
    count = v("imqtt_store_commit_seconds_count")
    assert count == buckets[-1][1] and count >= 3
    assert 0 < v("imqtt_store_commit_seconds_sum") < count * 2.5
    for c in (sub, small, pub):
        c.close()


def _family(fams, name, type_):
    assert name in fams, "%s missing from /metrics" % name
    assert fams[name]["type"] == type_ and fams[name]["help"], (name, fams[name])
    samples = fams[name]["samples"]
    assert len(samples) == 1, samples
    return samples[0]


def _max_open_files(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return 2 ** 64 - 1 if soft == "unlimited" else int(soft)
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def test_process_metrics_and_build_info(broker):
    """process_* (Prometheus client conventions, from /proc/self) and
    imqtt_build_info{version=...} 1, checked against what the kernel says
    about the broker process."""
    import os
    import re
    import time

    from conftest import SOURCE_DIR, raw
    t0 = time.time()
    hp = free_port()
    b = broker({"http": {"port": hp}})
    t1 = time.time()
    fams = metrics(hp)

    _, _, cpu = _family(fams, "process_cpu_seconds_total", "counter")
    assert 0 <= cpu < 60, cpu
    _, _, rss = _family(fams, "process_resident_memory_bytes", "gauge")
    kernel_rss = b.rss_kb() * 1024
    assert abs(rss - kernel_rss) <= max(kernel_rss // 4, 4 << 20), (rss, kernel_rss)
    _, _, vsz = _family(fams, "process_virtual_memory_bytes", "gauge")
    assert vsz >= rss > 0, (vsz, rss)
    _, _, start = _family(fams, "process_start_time_seconds", "gauge")
    assert t0 - 1.0 <= start <= t1 + 1.0, (t0, start, t1)
    _, _, maxfds = _family(fams, "process_max_fds", "gauge")
    assert maxfds == _max_open_files(b.pid), maxfds

    _, _, fds = _family(fams, "process_open_fds", "gauge")
    kernel_fds = len(os.listdir("/proc/%d/fd" % b.pid))
    assert abs(fds - kernel_fds) <= 2, (fds, kernel_fds)
    conns = [raw(b) for _ in range(5)]
    try:
        _, _, more = _family(metrics(hp), "process_open_fds", "gauge")
        kernel_more = len(os.listdir("/proc/%d/fd" % b.pid))
        assert abs(more - kernel_more) <= 2, (more, kernel_more)
        # Five more sockets; the fixture's readiness probe may have been
        # still open at the first scrape.
        assert more >= fds + 4, (fds, more)
    finally:
        for c in conns:
            c.close()

    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        version = re.search(r"project\(imqtt VERSION (\S+)", f.read()).group(1)
    _, labels, one = _family(fams, "imqtt_build_info", "gauge")
    assert one == 1 and labels["version"] == version, labels
    assert labels["libuv"] and labels["mbedtls"] and labels["cjson"], labels
    assert labels["build_type"], labels
