"""Helpers for the store tests: a broker that can be stopped and started
again on the same LMDB store, and raw-socket shortcuts."""
import os
import shutil
import signal
import subprocess
import tempfile

from conftest import IMQTT_BIN, SANITIZER_MARKERS, Broker
import mqttraw


class StoreBroker:
    """Starts imqtt on `dir/data` again and again (new port each time)."""

    def __init__(self, durability="process", extra=None):
        self.tmp = tempfile.mkdtemp(prefix="imqtt-store-")
        self.data = os.path.join(self.tmp, "data")
        self.config = {"store": {"durability": durability, "dir": self.data}}
        for k, v in (extra or {}).items():
            if k == "store":
                self.config["store"].update(v)
            else:
                self.config[k] = v
        self.b = None
        self.runs = 0

    def start(self):
        self.runs += 1
        run_dir = os.path.join(self.tmp, "run%d" % self.runs)
        os.mkdir(run_dir)
        self.b = Broker(self.config, run_dir)
        return self.b

    def stop(self, sig=signal.SIGTERM, check=True):
        rc, err = self.b.stop(sig)
        if check:
            bad = [m for m in SANITIZER_MARKERS if m in err]
            assert not bad, err[-5000:]
            if sig == signal.SIGTERM:
                assert rc == 0, "exit %s:\n%s" % (rc, err[-3000:])
        return rc, err

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        return self.start()

    def check_store(self):
        r = subprocess.run([IMQTT_BIN, "--check-store", self.data],
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    def cleanup(self):
        if self.b is not None and not self.b.stopped:
            self.stop(check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def connect(b, cid, version=4, clean=False, **kw):
    c = mqttraw.RawClient(b.host, b.port, version=version)
    if version == 5 and not clean:
        kw.setdefault("properties", session_props())
    ack = c.connect(cid, clean=clean, **kw)
    assert ack.reason == 0, ack
    c.connack = ack
    return c


def session_props(expiry=3600):
    return [(0x11, expiry)]


def drain(c, n, version=4, ack=True, timeout=5.0):
    """Read n PUBLISH packets (acknowledging QoS 1/2 fully)."""
    got = []
    rels = 0  # PUBRELs still due for the QoS 2 messages we PUBREC'd
    while len(got) < n or rels > 0:
        p = c.recv(timeout)
        if p.type == mqttraw.PUBREL:
            c.send(mqttraw.ack(mqttraw.PUBCOMP, p.pid, version=version))
            rels -= 1
            continue
        if p.type != mqttraw.PUBLISH:
            continue
        got.append(p)
        if ack and p.qos == 1:
            c.send(mqttraw.ack(mqttraw.PUBACK, p.pid, version=version))
        elif ack and p.qos == 2:
            c.send(mqttraw.ack(mqttraw.PUBREC, p.pid, version=version))
            rels += 1
    return got
