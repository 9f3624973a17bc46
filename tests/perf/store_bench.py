#!/usr/bin/python3
"""Store benchmarks (issue 4; figures in README "Durability"). Not a test.

  tests/perf/store_bench.py [--bin build/imqtt] [--msgs 50000]
                            [--sessions 1000] [--per-session 1000]

1. QoS 1 throughput, durability none / process / full side by side: one
   publisher (window of 500 unacknowledged), one online persistent
   subscriber, 64-byte payloads; time until every PUBACK is back and every
   message received.
2. Offline capacity (durability process): N offline persistent sessions,
   each subscribed to its own topic, M queued 64-byte messages each; broker
   RssAnon before and after queueing, store size, drain rate when they all
   reconnect.
3. Restart time with that store (SIGTERM, start, first accepted connection).
"""
import argparse
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import mqttraw  # noqa: E402

PAYLOAD = b"m" * 64


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Broker:
    def __init__(self, binary, tmp, durability, extra=None):
        self.port = free_port()
        cfg = {"listeners": [{"bind": "127.0.0.1", "port": self.port}],
               "store": {"durability": durability, "dir": os.path.join(tmp, "data")},
               "log": {"level": "warn"}, "max_queued_messages": 1000000}
        cfg.update(extra or {})
        self.conf = os.path.join(tmp, "imqtt-%s.json" % durability)
        with open(self.conf, "w") as f:
            json.dump(cfg, f)
        self.binary = binary
        self.start()

    def start(self):
        t0 = time.monotonic()
        self.p = subprocess.Popen([self.binary, "--config", self.conf],
                                  stderr=subprocess.DEVNULL)
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.005)
        self.started_in = time.monotonic() - t0

    def rss_anon_kb(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.p.terminate()
        self.p.wait(60)


def conn(port, cid, clean=False):
    c = mqttraw.RawClient("127.0.0.1", port, timeout=30)
    ack = c.connect(cid, clean=clean, keepalive=600)
    assert ack.reason == 0
    return c


def throughput(binary, n, durability):
    tmp = tempfile.mkdtemp(prefix="imqtt-bench-")
    b = Broker(binary, tmp, durability)
    sub = conn(b.port, "bench-sub")
    sub.send(mqttraw.subscribe(1, [("bench/t", 1)]))
    sub.expect(mqttraw.SUBACK)
    pub = conn(b.port, "bench-pub", clean=True)
    pkts = [mqttraw.publish("bench/t", PAYLOAD, qos=1, pid=i % 65535 + 1) for i in range(n)]
    sel = selectors.DefaultSelector()
    pub.sock.setblocking(False)
    sub.sock.setblocking(False)
    sel.register(pub.sock, selectors.EVENT_READ, "pub")
    sel.register(sub.sock, selectors.EVENT_READ, "sub")
    bufs = {"pub": bytearray(), "sub": bytearray()}
    sent = acked = received = 0
    window = 500
    t0 = time.monotonic()
    out = bytearray()
    while acked < n or received < n:
        if sent < n and sent - acked < window:
            k = min(n, acked + window) - sent
            pub.sock.setblocking(True)
            pub.sock.sendall(b"".join(pkts[sent:sent + k]))
            pub.sock.setblocking(False)
            sent += k
        for key, _ in sel.select(1.0):
            who = key.data
            data = key.fileobj.recv(1 << 20)
            if not data:
                raise SystemExit("broker closed the connection")
            buf = bufs[who]
            buf += data
            pos = 0
            while True:
                if len(buf) - pos < 2:
                    break
                rl, i, mul = 0, pos + 1, 1
                while i < len(buf):
                    rl += (buf[i] & 127) * mul
                    mul *= 128
                    i += 1
                    if buf[i - 1] < 128:
                        break
                else:
                    break
                if len(buf) - i < rl:
                    break
                first = buf[pos]
                body = buf[i:i + rl]
                pos = i + rl
                t = first >> 4
                if who == "pub" and t == mqttraw.PUBACK:
                    acked += 1
                elif who == "sub" and t == mqttraw.PUBLISH:
                    received += 1
                    tl = (body[0] << 8) | body[1]
                    pid = body[2 + tl:4 + tl]
                    out += bytes([0x40, 2]) + pid
            del buf[:pos]
        if out:
            sub.sock.setblocking(True)
            sub.sock.sendall(out)
            sub.sock.setblocking(False)
            out = bytearray()
    dt = time.monotonic() - t0
    b.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return n / dt


def capacity(binary, sessions, per):
    tmp = tempfile.mkdtemp(prefix="imqtt-bench-")
    b = Broker(binary, tmp, "process")
    for i in range(sessions):
        c = conn(b.port, "off-%d" % i)
        c.send(mqttraw.subscribe(1, [("inbox/%d" % i, 1)]))
        c.expect(mqttraw.SUBACK)
        c.send(mqttraw.disconnect())
        c.close()
    time.sleep(0.5)
    rss0 = b.rss_anon_kb()
    pub = conn(b.port, "off-pub", clean=True)
    t0 = time.monotonic()
    pid = 0
    for i in range(sessions):
        batch = []
        for _ in range(per):
            pid = pid % 65535 + 1
            batch.append(mqttraw.publish("inbox/%d" % i, PAYLOAD, qos=1, pid=pid))
        pub.sock.sendall(b"".join(batch))
        # Bound what is in flight: read this round's PUBACKs.
        for _ in range(per):
            pub.expect(mqttraw.PUBACK, timeout=60)
    t_queue = time.monotonic() - t0
    pub.close()
    time.sleep(1.5)
    rss1 = b.rss_anon_kb()
    du = subprocess.run(["du", "-sk", os.path.join(tmp, "data")], capture_output=True,
                        text=True).stdout.split()[0]
    b.stop()
    b.start()
    restart = b.started_in
    rss_restart = b.rss_anon_kb()
    # Drain: every session reconnects; read and acknowledge everything.
    t0 = time.monotonic()
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(sessions):
        # A plain socket: the CONNACK and the first PUBLISHes arrive
        # together, and all of them go through the parser below.
        c = socket.create_connection(("127.0.0.1", b.port))
        c.sendall(mqttraw.connect("off-%d" % i, clean=False, keepalive=600))
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ, [c, bytearray()])
        socks.append(c)
    total = 0
    want = sessions * per
    while total < want:
        events = sel.select(10)
        if not events:
            raise SystemExit("drain stalled at %d of %d" % (total, want))
        for key, _ in events:
            c, buf = key.data
            data = key.fileobj.recv(1 << 20)
            buf += data
            pos, acks = 0, bytearray()
            while len(buf) - pos >= 2:
                rl, i, mul = 0, pos + 1, 1
                while i < len(buf):
                    rl += (buf[i] & 127) * mul
                    mul *= 128
                    i += 1
                    if buf[i - 1] < 128:
                        break
                else:
                    break
                if len(buf) - i < rl:
                    break
                if buf[pos] >> 4 == mqttraw.PUBLISH:
                    tl = (buf[i] << 8) | buf[i + 1]
                    acks += bytes([0x40, 2]) + buf[i + 2 + tl:i + 4 + tl]
                    total += 1
                pos = i + rl
            del buf[:pos]
            if acks:
                key.fileobj.setblocking(True)
                key.fileobj.sendall(acks)
                key.fileobj.setblocking(False)
    t_drain = time.monotonic() - t0
    for c in socks:
        c.close()
    b.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return dict(rss_before_kb=rss0, rss_after_kb=rss1, rss_after_restart_kb=rss_restart,
                store_kb=int(du), queue_rate=sessions * per / t_queue,
                drain_rate=want / t_drain, restart_s=restart)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                  "build", "imqtt"))
    ap.add_argument("--msgs", type=int, default=50000)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--per-session", type=int, default=1000)
    ap.add_argument("--skip-capacity", action="store_true")
    a = ap.parse_args()
    print("QoS 1 throughput, 1 publisher -> 1 online persistent subscriber, "
          "64-byte payloads, %d messages" % a.msgs)
    for d in ("none", "process", "full"):
        print("  %-8s %8.0f msg/s" % (d, throughput(a.bin, a.msgs, d)), flush=True)
    if a.skip_capacity:
        return
    r = capacity(a.bin, a.sessions, a.per_session)
    print("Offline capacity: %d sessions x %d queued 64-byte messages (process)"
          % (a.sessions, a.per_session))
    print("  RssAnon before queueing   %8d KiB" % r["rss_before_kb"])
    print("  RssAnon after queueing    %8d KiB" % r["rss_after_kb"])
    print("  RssAnon after restart     %8d KiB" % r["rss_after_restart_kb"])
    print("  store size on disk        %8d KiB" % r["store_kb"])
    print("  queueing rate             %8.0f msg/s" % r["queue_rate"])
    print("  drain rate (reconnect)    %8.0f msg/s" % r["drain_rate"])
    print("  restart time              %8.3f s" % r["restart_s"])


if __name__ == "__main__":
    main()
