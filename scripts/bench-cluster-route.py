#!/usr/bin/python3
"""Cross-node rate through live routing (docs/cluster.md, "Figures"):
3 nats-server (JetStream cluster) and 2 imqtt nodes on loopback; -c pairs,
subscribers on node 2 (imqtt-bench sub), publishers on node 1
(imqtt-bench pub, open loop at -R msgs/s); prints both reports.

    scripts/bench-cluster-route.py [RATE] [PAIRS] [QOS] [SECONDS]

Run from the source tree after a Release build."""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from clusterhelp import NatsCluster, node_config  # noqa: E402
from conftest import Broker  # noqa: E402

BENCH = os.path.join(HERE, "..", "build", "imqtt-bench")


def main():
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    qos = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    secs = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    d = tempfile.mkdtemp(prefix="imqtt-bench-cluster-")
    nats = NatsCluster(d, n=3)
    nodes = []
    try:
        for i in range(2):
            nd = os.path.join(d, "node%d" % (i + 1))
            os.mkdir(nd)
            nodes.append(Broker(node_config(nats, "imqtt%d" % (i + 1), proxy=False), nd))
        n1, n2 = nodes
        sub = subprocess.Popen(
            [BENCH, "sub", "-p", str(n2.port), "-c", str(pairs), "-t", "bench/%i",
             "-q", str(qos), "-d", str(secs + 6), "--prefix", "s",
             "--broker-pid", str(n2.pid)])
        time.sleep(2)  # subscriptions spread across the NATS routes
        pub = subprocess.run(
            [BENCH, "pub", "-p", str(n1.port), "-c", str(pairs), "-t", "bench/%i",
             "-q", str(qos), "-R", str(rate), "-d", str(secs), "--prefix", "p",
             "--broker-pid", str(n1.pid)], timeout=secs + 60)
        sub.wait(timeout=secs + 60)
        return pub.returncode or sub.returncode
    finally:
        for b in nodes:
            b.stop()
        nats.stop()


if __name__ == "__main__":
    sys.exit(main())
