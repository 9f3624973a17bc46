"""Static checks of examples/cluster (the docker-compose example) and of
bench/cluster's command line: no process of the cluster is started, the
whole file takes well under a second. Running the example is
documented in docs/cluster.md ("docker compose") and not part of CI."""
import json
import os
import re
import subprocess

import pytest

from conftest import SOURCE_DIR

EX = os.path.join(SOURCE_DIR, "examples", "cluster")
NODES = ["imqtt1", "imqtt2", "imqtt3"]
NATS = ["nats1", "nats2", "nats3"]


@pytest.fixture(scope="module")
def compose():
    yaml = pytest.importorskip("yaml", reason="python3-yaml (scripts/setup --test) "
                               "parses the compose file")
    with open(os.path.join(EX, "docker-compose.yml")) as f:
        return yaml.safe_load(f)


def test_compose_services(compose):
    s = compose["services"]
    assert set(s) == set(NATS + NODES + ["haproxy"])
    for n in NATS:
        assert s[n]["environment"]["NATS_NAME"] == n
        assert "./nats.conf:/etc/nats/nats.conf:ro" in s[n]["volumes"]
    haproxy_ip = s["haproxy"]["networks"]["cluster"]["ipv4_address"]
    assert "./haproxy-compose.cfg:/etc/haproxy/haproxy.cfg:ro" in s["haproxy"]["volumes"]
    assert set(s["haproxy"]["depends_on"]) == set(NODES)
    # HAProxy is the only service with a port on the host
    assert [k for k, v in s.items() if v.get("ports")] == ["haproxy"]
    names = set()
    for n in NODES:
        assert s[n]["build"]["context"] == "../.."
        assert s[n]["build"]["dockerfile"] == "Dockerfile"
        assert set(s[n]["depends_on"]) == set(NATS)
        assert "./%s.json:/etc/imqtt/imqtt.json:ro" % n in s[n]["volumes"]
        with open(os.path.join(EX, "%s.json" % n)) as f:
            cfg = json.load(f)
        lst = cfg["listeners"]
        # PROXY protocol from HAProxy only, on every listener
        assert lst and all(x.get("proxy_protocol") and x["proxy_from"] == [haproxy_ip]
                           for x in lst)
        assert cfg["http"]["port"] == 9883
        c = cfg["cluster"]
        assert c["nats_urls"] == ["nats://%s:4222" % x for x in NATS]
        assert c["node"] == n
        names.add(c["node"])
    assert len(names) == 3


def test_compose_haproxy_is_the_example():
    """haproxy-compose.cfg is haproxy.cfg but for its header comment and
    the server addresses (the compose services, same check port)."""
    def body(name):
        lines = open(os.path.join(EX, name)).read().splitlines()
        start = next(i for i, x in enumerate(lines) if not x.startswith("#"))
        return lines[start:]
    ex, co = body("haproxy.cfg"), body("haproxy-compose.cfg")
    assert len(ex) == len(co)
    servers = []
    for a, b in zip(ex, co):
        if a.strip().startswith("server "):
            m = re.match(r"^(\s*server (\S+)) \S+:1883( check port 9883)$", a)
            assert m and b == "%s %s:1883%s" % (m.group(1), m.group(2), m.group(3)), b
            servers.append(m.group(2))
        else:
            assert a == b
    assert servers == NODES


def test_bench_cluster_help():
    p = subprocess.run(["/usr/bin/python3", os.path.join(SOURCE_DIR, "bench", "cluster"),
                        "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "--nodes" in p.stdout and "failover" in p.stdout
