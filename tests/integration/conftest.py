"""Fixtures for the imqtt integration tests.

`broker(config)` starts the real broker binary ($IMQTT_BIN) on a free
loopback port with `config` (a dict, written as JSON) and stops it with
SIGTERM at the end of the test, asserting exit code 0 and a stderr free of
sanitizer reports.

Development mode: IMQTT_TEST_BROKER=mosquitto runs /usr/sbin/mosquitto with
the config translated to mosquitto.conf, to prove the tests themselves
right.  Tests marked `imqtt_only` are skipped in that mode.
"""
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqttraw  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402

MOSQUITTO = os.environ.get("IMQTT_TEST_BROKER", "") == "mosquitto"
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("IMQTT_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILD_DIR = os.environ.get("IMQTT_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
IMQTT_BIN = os.environ.get("IMQTT_BIN", os.path.join(BUILD_DIR, "imqtt"))
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "WARNING: ThreadSanitizer")

# Time multiplier for slow builds (ASan); bounded waits are scaled by it.
SLOW = float(os.environ.get("IMQTT_TEST_SLOW", "1"))
# Loop threads of every broker a test starts from a config (scripts/test
# runs the suite at 1 and at 2); unset: the broker's default, one per core.
THREADS = os.environ.get("IMQTT_TEST_THREADS")


def pytest_configure(config):
    config.addinivalue_line("markers", "imqtt_only: checks imqtt-specific behaviour; "
                            "skipped when IMQTT_TEST_BROKER=mosquitto")


def pytest_collection_modifyitems(config, items):
    if not MOSQUITTO or os.environ.get("IMQTT_TEST_NO_SKIP"):
        return
    skip = pytest.mark.skip(reason="imqtt-specific behaviour (IMQTT_TEST_BROKER=mosquitto)")
    for item in items:
        if "imqtt_only" in item.keywords:
            item.add_marker(skip)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port to listen on, chosen below the kernel's ephemeral range: a
    port the kernel hands out (bind to 0) can be taken by another test's
    outgoing connection before the broker binds it (seen: "address already
    in use" while a burst test ran beside). Checked free by binding."""
    low, high = 10000, _ephemeral_low() - 1
    if high <= low:
        low, high = 1024, 65535
    for _ in range(200):
        port = random.randint(low, high)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in %d-%d" % (low, high))


def _mosquitto_conf(config, port, tmpdir):
    lines = ["listener %d 127.0.0.1" % port, "allow_anonymous true",
             "log_dest stderr", "log_type error", "log_type warning",
             "persistence false"]
    simple = {"max_inflight_messages": "max_inflight_messages",
              "max_queued_messages": "max_queued_messages",
              "max_packet_size": "max_packet_size",
              "topic_alias_maximum": "max_topic_alias"}
    for key, opt in simple.items():
        if key in config:
            lines.append("%s %d" % (opt, config[key]))
    if config.get("max_keepalive"):
        lines.append("max_keepalive %d" % config["max_keepalive"])
    if "retain_available" in config:
        lines.append("retain_available %s" % ("true" if config["retain_available"] else "false"))
    acl = config.get("acl")
    if acl:
        # Mosquitto denies everything not listed; deny entries override.
        acl_lines = []
        for rule in acl.get("rules", []):
            if rule.get("permission") == "deny":
                acl_lines.append("topic deny %s" % rule["topic"])
        if acl.get("default", "allow") == "allow":
            acl_lines += ["topic readwrite #", "topic readwrite $SYS/#"]
        for rule in acl.get("rules", []):
            if rule.get("permission") == "allow":
                acl_lines.append("topic readwrite %s" % rule["topic"])
        acl_path = os.path.join(tmpdir, "acl")
        with open(acl_path, "w") as f:
            f.write("\n".join(acl_lines) + "\n")
        os.chmod(acl_path, 0o644)  # mosquitto started as root drops privileges
        os.chmod(tmpdir, 0o755)
        lines.append("acl_file %s" % acl_path)
    path = os.path.join(tmpdir, "mosquitto.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _listener_owned_by(pid, port):
    """Whether process pid holds a TCP socket listening on port (the
    kernel's tables: /proc/net/tcp* give the socket, /proc/PID/fd its
    owner)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add("socket:[%s]" % parts[9])
        except (OSError, IndexError, ValueError):
            pass
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                return True
        except OSError:
            continue
    return False


class Broker:
    START_ATTEMPTS = 5

    def __init__(self, config, tmpdir, extra_args=(), argv=None):
        self.host = "127.0.0.1"
        self.config = dict(config or {})
        self.tmpdir = tmpdir
        self.stderr_path = os.path.join(tmpdir, "broker.stderr")
        self.stopped = False
        # The port is ours to choose: if another process takes it between
        # free_port and the broker's bind, choose again.
        for attempt in range(self.START_ATTEMPTS):
            self.port = free_port()
            self._stderr = open(self.stderr_path, "wb")
            self.argv = self._argv(extra_args, argv)
            # A custom command line may start without a config: its store
            # (./data) then goes to the temporary directory.
            self.proc = subprocess.Popen(self.argv, stdout=self._stderr,
                                         stderr=self._stderr, stdin=subprocess.DEVNULL,
                                         cwd=tmpdir if argv else None)
            if self._wait_ready(retry=attempt + 1 < self.START_ATTEMPTS):
                return
            self._stderr.close()

    def _argv(self, extra_args, argv=None):
        if MOSQUITTO:
            conf = _mosquitto_conf(self.config, self.port, self.tmpdir)
            return ["/usr/sbin/mosquitto", "-c", conf]
        if not os.path.exists(IMQTT_BIN):
            pytest.fail("broker binary %s not found (set IMQTT_BIN)" % IMQTT_BIN)
        conf = os.path.join(self.tmpdir, "imqtt.json")
        cfg = dict(self.config)
        cfg.setdefault("listeners", [{"bind": "127.0.0.1", "port": self.port}])
        # Every broker gets its own LMDB store (durability "process",
        # the default) in its temporary directory.
        cfg.setdefault("store", {"dir": os.path.join(self.tmpdir, "data")})
        if THREADS:
            cfg.setdefault("threads", int(THREADS))
        with open(conf, "w") as f:
            json.dump(cfg, f)
        if argv is not None:
            # The test's own options: argv(port, config path) -> arguments.
            return [IMQTT_BIN] + list(argv(self.port, conf))
        return [IMQTT_BIN, "--config", conf, "--port", str(self.port),
                "--bind", "127.0.0.1"] + list(extra_args)

    @property
    def pid(self):
        return self.proc.pid

    def _wait_ready(self, retry, timeout=10.0 * SLOW):
        """True once the broker listens on self.port (itself: a listener of
        another process on that port does not count); False when it exited
        because the port was taken and retry is allowed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if retry and "already in use" in self.stderr_text().lower():
                    return False
                pytest.fail("broker exited with %s at start-up:\n%s"
                            % (self.proc.returncode, self.stderr_text()))
            if _listener_owned_by(self.proc.pid, self.port):
                try:
                    socket.create_connection((self.host, self.port), timeout=0.5).close()
                    return True
                except OSError:
                    pass
            time.sleep(0.02)
        self.proc.kill()
        pytest.fail("broker did not accept on port %d within %.0fs:\n%s"
                    % (self.port, timeout, self.stderr_text()))

    def stderr_text(self):
        try:
            self._stderr.flush()
        except ValueError:
            pass
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0 * SLOW):
        """Stop the broker, return (exit code, stderr)."""
        if self.stopped:
            return self.proc.returncode, self.stderr_text()
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._stderr.close()
                return None, self.stderr_text()
        self._stderr.close()
        return self.proc.returncode, self.stderr_text()

    def kill9(self):
        """SIGKILL the broker (a crash test); teardown then checks only
        that no sanitizer reported anything before it."""
        self.killed = True
        self.stop(signal.SIGKILL)

    def check_stop(self):
        """Stop and assert a clean exit (used at teardown)."""
        rc, err = self.stop()
        bad = [m for m in SANITIZER_MARKERS if m in err]
        if bad:
            pytest.fail("sanitizer report in broker stderr (%s):\n%s" % (bad, err[-20000:]))
        if getattr(self, "killed", False):
            return
        if rc is None:
            pytest.fail("broker did not exit within timeout after SIGTERM:\n%s" % err[-5000:])
        if rc != 0:
            pytest.fail("broker exit code %s after SIGTERM:\n%s" % (rc, err[-5000:]))


@pytest.fixture
def broker():
    """Factory: broker(config_dict=None) -> running Broker. Stopped at teardown.
    argv=lambda port, conf: [...] replaces the options after the binary
    (the broker then runs in its temporary directory)."""
    started = []
    tmpdirs = []

    def start(config=None, extra_args=(), argv=None):
        d = tempfile.mkdtemp(prefix="imqtt-it-")
        tmpdirs.append(d)
        b = Broker(config, d, extra_args, argv)
        started.append(b)
        return b

    yield start
    errors = []
    for b in started:
        try:
            b.check_stop()
        except BaseException as e:  # noqa: B902 - report all brokers
            errors.append(e)
    if errors:
        raise errors[0]


# ---------------------------------------------------------------- ACL used by
# the Paho interoperability suite, handy for SUBSCRIBE tests.
ACL_NOSUBSCRIBE = {"acl": {"default": "allow", "rules": [
    {"permission": "deny", "action": "subscribe", "topic": "test/nosubscribe"}]}}


# ---------------------------------------------------------------- raw helpers

def raw(b, version=4, client_id=None, **kw):
    """Raw connected client (CONNACK 0 asserted)."""
    if client_id is None:
        client_id = "raw-%d-%d" % (os.getpid(), next(_seq))
    return mqttraw.open_connected(b.host, b.port, client_id, version=version, **kw)


def raw_socket(b, version=4):
    return mqttraw.RawClient(b.host, b.port, version=version)


def _counter():
    n = 0
    while True:
        n += 1
        yield n


_seq = _counter()


def assert_alive(b, version=4):
    """The broker keeps serving others: a fresh client subscribes, publishes
    QoS 1 to itself and receives it."""
    assert b.alive(), "broker process died:\n%s" % b.stderr_text()[-5000:]
    topic = "alive/%d" % next(_seq)
    c = raw(b, version=version)
    try:
        c.send(mqttraw.subscribe(1, [(topic, 1)], version=version))
        suback = c.expect(mqttraw.SUBACK)
        assert suback.reasons == [1], suback
        c.send(mqttraw.publish(topic, b"ping", qos=1, pid=2, version=version))
        got_puback = got_msg = False
        deadline = time.monotonic() + 5
        while not (got_puback and got_msg):
            p = c.recv(max(0.01, deadline - time.monotonic()))
            if p.type == mqttraw.PUBACK and p.pid == 2:
                got_puback = True
            elif p.type == mqttraw.PUBLISH:
                assert p.topic == topic and p.payload == b"ping", p
                c.send(mqttraw.ack(mqttraw.PUBACK, p.pid, version=version))
                got_msg = True
        c.send(mqttraw.disconnect(version))
    finally:
        c.close()


# ---------------------------------------------------------------- Paho helpers

class Client:
    """Paho Python client with bounded, event-driven waits."""

    def __init__(self, b, client_id="", version=5, clean=True, keepalive=60,
                 will=None, properties=None, username=None, password=None,
                 auto_connect=True):
        self.broker = b
        self.client_id = client_id
        self.version = version
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack = None
        self.disconnect_rc = None
        self.disconnect_props = None
        self._subacks = {}
        self._unsubacks = {}
        self._cond = threading.Condition()
        proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        if version == 5:
            self.c = mqtt.Client(client_id=client_id, protocol=proto)
        else:
            self.c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=proto)
        self.clean = clean
        self.keepalive = keepalive
        self.properties = properties
        if username is not None:
            self.c.username_pw_set(username, password)
        if will is not None:
            self.c.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                            will.get("retain", False), properties=will.get("properties"))
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.reconnect_delay_set(60, 120)  # do not reconnect on our behalf
        if auto_connect:
            self.connect()

    # callbacks run on the Paho network thread
    def _on_connect(self, c, userdata, flags, rc, properties=None):
        self.connack = (flags, rc, properties)
        self.connected.set()

    def _on_disconnect(self, c, userdata, rc, properties=None):
        self.disconnect_rc = rc
        self.disconnect_props = properties
        self.disconnected.set()

    def _on_message(self, c, userdata, msg):
        self.messages.put(msg)

    def _on_subscribe(self, c, userdata, mid, granted, properties=None):
        with self._cond:
            self._subacks[mid] = granted
            self._cond.notify_all()

    def _on_unsubscribe(self, c, userdata, mid, properties=None, reasons=None):
        with self._cond:
            self._unsubacks[mid] = reasons
            self._cond.notify_all()

    def connect(self, timeout=5.0, expect_rc=0):
        kw = {}
        if self.version == 5:
            kw["clean_start"] = self.clean
            if self.properties is not None:
                kw["properties"] = self.properties
        self.connected.clear()
        self.disconnected.clear()
        self.c.connect(self.broker.host, self.broker.port, self.keepalive, **kw)
        self.c.loop_start()
        assert self.connected.wait(timeout * SLOW), "no CONNACK within %.0fs" % timeout
        flags, rc, props = self.connack
        rcv = rc.value if hasattr(rc, "value") else rc
        if expect_rc is not None:
            assert rcv == expect_rc, "CONNACK rc %r" % (rc,)
        return self.connack

    @property
    def session_present(self):
        return self.connack[0].get("session present")

    def _wait(self, table, mid, timeout):
        deadline = time.monotonic() + timeout * SLOW
        with self._cond:
            while mid not in table:
                left = deadline - time.monotonic()
                assert left > 0, "no ack for mid %d within %.0fs" % (mid, timeout)
                self._cond.wait(left)
            return table.pop(mid)

    def subscribe(self, topic, qos=0, options=None, properties=None, timeout=5.0):
        """Returns the list of granted QoS / reason codes (ints)."""
        if self.version == 5:
            if options is None:
                options = mqtt.SubscribeOptions(qos=qos)
            rc, mid = self.c.subscribe(topic, options=options, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        granted = self._wait(self._subacks, mid, timeout)
        return [g.value if hasattr(g, "value") else g for g in granted]

    def unsubscribe(self, topic, timeout=5.0):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        reasons = self._wait(self._unsubacks, mid, timeout)
        if isinstance(reasons, list):
            return [r.value if hasattr(r, "value") else r for r in reasons]
        return reasons

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None,
                wait=True, timeout=5.0):
        info = self.c.publish(topic, payload, qos, retain, properties=properties)
        if wait:
            info.wait_for_publish(timeout * SLOW)
            assert info.is_published(), "publish to %s not acknowledged" % topic
        return info

    def get(self, timeout=5.0):
        try:
            return self.messages.get(timeout=timeout * SLOW)
        except queue.Empty:
            raise AssertionError("no message within %.0fs" % timeout)

    def get_n(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout * SLOW
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("got %d of %d messages within %.0fs" % (len(out), n, timeout))
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def expect_none(self, timeout=0.5):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError("unexpected message on %s: %r" % (m.topic, m.payload))

    def disconnect(self, reason=None, properties=None):
        before = None
        if reason is not None:
            from paho.mqtt.reasoncodes import ReasonCodes
            rc = ReasonCodes(PacketTypes.DISCONNECT, identifier=reason)
            self.c.disconnect(reasoncode=rc, properties=properties)
        else:
            before = self._disconnects_logged()
            self.c.disconnect()
        self.disconnected.wait(5)
        self.c.loop_stop()
        self._wait_disconnect_handled(before)

    def _disconnects_logged(self):
        """Lines the broker logged for this client id: (connections seen,
        disconnects seen); None when there is nothing to wait for."""
        if MOSQUITTO or not self.client_id:
            return None
        mark = "client %s (" % self.client_id
        lines = [l for l in self.broker.stderr_text().splitlines() if mark in l]
        if not lines:
            return None  # a log level that does not show connections
        return sum(1 for l in lines if ") disconnected" in l)

    def _wait_disconnect_handled(self, before):
        """Paho closes its socket without waiting for the broker: wait for
        the broker's log line, so that the next step of the test (a publish
        to the offline session, a reconnect) comes after the disconnect also
        when it lands on another loop thread."""
        if before is None:
            return
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            if self._disconnects_logged() > before:
                return
            time.sleep(0.01)

    def kill(self):
        """Drop the TCP connection without DISCONNECT (abnormal close)."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock is not None:
            sock.close()

    def stop(self):
        self.c.loop_stop()
        try:
            self.c.disconnect()
        except Exception:
            pass


def props(packet_type, **kw):
    """Paho Properties: props(PacketTypes.PUBLISH, MessageExpiryInterval=5)."""
    p = Properties(packet_type)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


@pytest.fixture
def clients():
    """Tracks Paho clients so their threads are stopped at teardown."""
    made = []

    def make(*a, **kw):
        connect = kw.pop("auto_connect", True)
        c = Client(*a, auto_connect=False, **kw)
        made.append(c)
        if connect:
            c.connect()
        return c

    yield make
    # disconnect() wakes the network thread at once; a bare loop_stop() would
    # wait for its 1 s select timeout, per client.
    for c in made:
        try:
            c.c.disconnect()
        except Exception:
            pass
    for c in made:
        try:
            c.c.loop_stop()
        except Exception:
            pass


def wait_for(pred, timeout=5.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise AssertionError("%s not met within %.1fs" % (what, timeout))
