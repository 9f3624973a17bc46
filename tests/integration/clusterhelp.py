"""Cluster test fixtures: three clustered nats-server processes with
JetStream, and HAProxy 2.6 configured from examples/cluster/haproxy.cfg.

Every process runs on loopback on ports from conftest.free_port, keeps its
files in a temporary directory, and is stopped by its PID at teardown
(SIGTERM, then SIGKILL after a bounded wait). Use from a test module:

    from clusterhelp import nats_cluster, haproxy  # noqa: F401 (fixtures)

    def test_x(nats_cluster, haproxy, broker):
        nc = nats_cluster()            # 3 servers, JetStream, meta leader
        hp = haproxy([b1, b2])         # brokers from conftest's fixture
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import BUILD_DIR, SLOW, SOURCE_DIR, free_port, _listener_owned_by

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
HAPROXY_TEMPLATE = os.path.join(SOURCE_DIR, "examples", "cluster", "haproxy.cfg")
NATS_PROBE = os.path.join(BUILD_DIR, "tests", "nats_probe")


def _stop_pid(proc, timeout=10.0 * SLOW):
    """SIGTERM proc, SIGKILL it if it has not exited within timeout;
    returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def http_get(port, path, timeout=2.0):
    """(status, body) of GET http://127.0.0.1:port/path; (None, error
    text) when nothing answers."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)


class NatsServer:
    def __init__(self, name, tmpdir, jetstream, ports):
        self.name = name
        self.port, self.cluster_port, self.http_port = ports
        self.dir = os.path.join(tmpdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "nats.log")
        self.jetstream = jetstream
        self.proc = None

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def write_config(self, routes):
        lines = [
            "server_name: %s" % self.name,
            "listen: 127.0.0.1:%d" % self.port,
            "http: 127.0.0.1:%d" % self.http_port,
        ]
        if self.jetstream:
            lines += ["jetstream {",
                      '  store_dir: "%s"' % os.path.join(self.dir, "js"),
                      "  max_memory_store: 64MB",
                      "  max_file_store: 256MB",
                      "}"]
        if routes is not None:
            lines += ["cluster {",
                      "  name: imqtt-test",
                      "  listen: 127.0.0.1:%d" % self.cluster_port,
                      "  routes: [%s]" % ", ".join(
                          "nats-route://127.0.0.1:%d" % p for p in routes),
                      "}"]
        self.conf = os.path.join(self.dir, "nats.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([NATS_SERVER, "-c", self.conf],
                                     stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL)

    def listening(self):
        return (self.proc is not None and self.proc.poll() is None
                and _listener_owned_by(self.proc.pid, self.port))

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def jsz(self):
        status, body = http_get(self.http_port, "/jsz")
        return json.loads(body) if status == 200 else None

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self):
        if self.proc:
            _stop_pid(self.proc)
            self._log.close()


class NatsCluster:
    """n nats-server processes, routed to each other (a full mesh of
    routes), each with JetStream in its own store directory unless
    jetstream=False. n=1 gives a single server without a cluster block."""

    def __init__(self, tmpdir, n=3, jetstream=True):
        self.servers = []
        used = set()
        for i in range(n):
            ports = []
            while len(ports) < 3:
                p = free_port()
                if p not in used:
                    used.add(p)
                    ports.append(p)
            self.servers.append(NatsServer("n%d" % (i + 1), tmpdir,
                                           jetstream, ports))
        for s in self.servers:
            routes = None if n == 1 else [o.cluster_port for o in self.servers
                                          if o is not s]
            s.write_config(routes)
            s.start()
        self.wait_ready(jetstream)

    @property
    def urls(self):
        return ",".join(s.url for s in self.servers)

    def _logs(self):
        return "\n".join("== %s\n%s" % (s.name, s.log_text()[-3000:])
                         for s in self.servers)

    def wait_ready(self, jetstream, timeout=30.0 * SLOW):
        """Every server listens, has routes to all the others, and (with
        JetStream) all agree on one meta leader of the right size."""
        deadline = time.monotonic() + timeout
        n = len(self.servers)
        while time.monotonic() < deadline:
            for s in self.servers:
                if s.proc.poll() is not None:
                    pytest.fail("nats-server %s exited with %s:\n%s"
                                % (s.name, s.proc.returncode, s.log_text()))
            if all(s.listening() for s in self.servers) and self._routed(n):
                if not jetstream or self.meta_leader() is not None:
                    return
            time.sleep(0.1)
        pytest.fail("NATS cluster not ready within %.0fs:\n%s"
                    % (timeout, self._logs()))

    def _routed(self, n):
        if n == 1:
            return True
        for s in self.servers:
            status, body = http_get(s.http_port, "/routez")
            if status != 200 or json.loads(body).get("num_routes", 0) < n - 1:
                return False
        return True

    def meta_leader(self, servers=None):
        """The JetStream meta leader's name when every given server (all by
        default) reports the same one with the full cluster size, else
        None."""
        leaders = set()
        for s in servers or self.servers:
            j = s.jsz()
            if not j:
                return None
            meta = j.get("meta_cluster") or {}
            if len(self.servers) > 1 and meta.get("cluster_size") != len(self.servers):
                return None
            leader = meta.get("leader") if len(self.servers) > 1 else s.name
            if not leader:
                return None
            leaders.add(leader)
        return leaders.pop() if len(leaders) == 1 else None

    def stop(self):
        for s in self.servers:
            s.stop()


def probe(*args, timeout=30.0 * SLOW):
    """Run tests/clients/nats_probe; returns (exit code, output)."""
    if not os.path.exists(NATS_PROBE):
        pytest.fail("%s not built" % NATS_PROBE)
    r = subprocess.run([NATS_PROBE] + list(args), capture_output=True,
                       timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


@pytest.fixture
def nats_cluster():
    """Factory: nats_cluster(n=3, jetstream=True) -> running NatsCluster,
    stopped at teardown."""
    started, dirs = [], []

    def start(n=3, jetstream=True):
        d = tempfile.mkdtemp(prefix="imqtt-nats-")
        dirs.append(d)
        c = NatsCluster(d, n, jetstream)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ HAProxy

def haproxy_config(template, bind_port, nodes, proxy_protocol=True):
    """The example config with its `bind` on 127.0.0.1:bind_port, maxconn
    2000, and one
    `server` line per node, (mqtt_port, http_port) each, replacing the
    example's servers. proxy_protocol=False drops send-proxy-v2 (for nodes
    whose listener does not take PROXY headers)."""
    out, servers_done = [], False
    for line in template.splitlines():
        # the example's maxconn needs a file limit a test machine may not
        # grant (haproxy refuses to start below 2 x maxconn descriptors)
        m = re.match(r"^(\s*)maxconn \d+\s*$", line)
        if m:
            out.append("%smaxconn 2000" % m.group(1))
            continue
        m = re.match(r"^(\s*)bind \S+(.*)$", line)
        if m:
            out.append("%sbind 127.0.0.1:%d%s" % (m.group(1), bind_port, m.group(2)))
            continue
        m = re.match(r"^(\s*)server \S+ \S+(.*)$", line)
        if m:
            if not servers_done:
                for i, (mqtt_port, http_port) in enumerate(nodes):
                    rest = re.sub(r"\bport \d+", "port %d" % http_port, m.group(2))
                    out.append("%sserver imqtt%d 127.0.0.1:%d%s"
                               % (m.group(1), i + 1, mqtt_port, rest))
                servers_done = True
            continue
        if not proxy_protocol:
            line = re.sub(r"\s+send-proxy-v2\b", "", line)
        out.append(line)
    if not servers_done:
        raise ValueError("template has no server line")
    return "\n".join(out) + "\n"


class HAProxy:
    def __init__(self, tmpdir, nodes, proxy_protocol=True):
        with open(HAPROXY_TEMPLATE) as f:
            template = f.read()
        self.nodes = list(nodes)
        self.log_path = os.path.join(tmpdir, "haproxy.log")
        self.conf = os.path.join(tmpdir, "haproxy.cfg")
        for attempt in range(5):
            self.port = free_port()
            with open(self.conf, "w") as f:
                f.write(haproxy_config(template, self.port, self.nodes,
                                       proxy_protocol))
            r = subprocess.run([HAPROXY, "-c", "-f", self.conf],
                               capture_output=True, timeout=30)
            if r.returncode != 0:
                pytest.fail("haproxy -c refused the generated config:\n%s"
                            % (r.stdout + r.stderr).decode())
            self._log = open(self.log_path, "ab")
            # -db: stay in the foreground, so the PID is haproxy's own
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.conf],
                                         stdout=self._log, stderr=self._log,
                                         stdin=subprocess.DEVNULL)
            if self._wait_listening():
                return
            self._log.close()
        pytest.fail("haproxy did not start:\n%s" % self.log_text())

    def _wait_listening(self, timeout=10.0 * SLOW):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # e.g. the port was taken: caller retries
            if _listener_owned_by(self.proc.pid, self.port):
                return True
            time.sleep(0.05)
        _stop_pid(self.proc)
        return False

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_servers_up(self, count=None, timeout=15.0 * SLOW):
        """Wait until haproxy's log says `count` servers (all by default)
        passed their /healthz check, or they answer /healthz themselves."""
        count = len(self.nodes) if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            up = sum(1 for _, hp in self.nodes if http_get(hp, "/healthz")[0] == 200)
            if up >= count:
                # haproxy starts with every server up and marks a server
                # down after `fall` failed checks (2 x 2 s), so give it one
                # check interval to see what we see
                time.sleep(0.1)
                return
            time.sleep(0.1)
        pytest.fail("nodes not healthy:\n%s" % self.log_text())

    def stop(self):
        _stop_pid(self.proc)
        self._log.close()


@pytest.fixture
def haproxy():
    """Factory: haproxy(nodes, proxy_protocol=True) -> running HAProxy in
    front of nodes, a list of (mqtt_port, http_port) or of conftest Broker
    objects whose config has an "http" port. Stopped at teardown."""
    started, dirs = [], []

    def start(nodes, proxy_protocol=True):
        pairs = []
        for n in nodes:
            if hasattr(n, "config"):
                pairs.append((n.port, n.config["http"]["port"]))
            else:
                pairs.append(tuple(n))
        d = tempfile.mkdtemp(prefix="imqtt-haproxy-")
        dirs.append(d)
        h = HAProxy(d, pairs, proxy_protocol)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)



# ------------------------------------------------------- imqtt cluster nodes

def node_config(nats, name, proxy=True, **extra):
    """A node's config: cluster section on all of `nats`'s servers, an
    HTTP listener for /healthz and /metrics, and (proxy=True) a first
    listener that takes PROXY headers from 127.0.0.1 (HAProxy)."""
    cfg = {"http": {"port": free_port()},
           "cluster": {"nats_urls": [s.url for s in nats.servers],
                       "node": name, "replicas": min(3, len(nats.servers))}}
    if proxy:
        cfg["listeners"] = [{"proxy_protocol": True, "proxy_from": ["127.0.0.1"]}]
    cfg.update(extra)
    return cfg


class ImqttCluster:
    def __init__(self, nats, nodes, haproxy):
        self.nats = nats
        self.nodes = nodes      # conftest Broker objects, node i is "imqtt<i+1>"
        self.haproxy = haproxy  # HAProxy in front of them (send-proxy-v2)

    @property
    def port(self):
        """Where clients connect: HAProxy."""
        return self.haproxy.port


@pytest.fixture
def imqtt_cluster(broker, nats_cluster, haproxy):
    """Factory: imqtt_cluster(n=3, nats=None) -> ImqttCluster: n imqtt
    nodes in cluster mode on a 3-server JetStream NATS cluster (a new one
    unless given), behind HAProxy from the example config, every node
    healthy. Everything is stopped by the fixtures it is built from."""
    def start(n=3, nats=None, **extra):
        nats = nats or nats_cluster()
        nodes = [broker(node_config(nats, "imqtt%d" % (i + 1), **extra))
                 for i in range(n)]
        hp = haproxy(nodes)
        hp.wait_servers_up()
        return ImqttCluster(nats, nodes, hp)

    return start
