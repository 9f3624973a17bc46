"""Real third-party clients against the broker: the Paho C client library
(tests/clients/paho_c_pubsub.c) and mosquitto_pub / mosquitto_sub."""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import BUILD_DIR, SOURCE_DIR, SLOW

MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"


@pytest.fixture(scope="module")
def paho_c():
    """Path of paho_c_pubsub: the CMake-built one, else built here with cc
    (development mode without a build tree)."""
    for cand in (os.path.join(BUILD_DIR, "tests", "paho_c_pubsub"),
                 os.path.join(BUILD_DIR, "paho_c_pubsub")):
        if os.access(cand, os.X_OK):
            return cand
    cc = shutil.which("cc") or shutil.which("gcc")
    src = os.path.join(SOURCE_DIR, "tests", "clients", "paho_c_pubsub.c")
    if not cc or not os.path.exists(src):
        pytest.fail("paho_c_pubsub not built (expected in %s/tests)" % BUILD_DIR)
    out = os.path.join(tempfile.mkdtemp(prefix="imqtt-pahoc-"), "paho_c_pubsub")
    subprocess.run([cc, "-std=c11", "-O1", "-o", out, src, "-lpaho-mqtt3c"], check=True)
    return out


@pytest.mark.parametrize("version", [3, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_c_pubsub(broker, paho_c, version, qos):
    """[MQTT-4.3] the Paho C client (MQTTClient, 3.1.1 and 5) publishes N
    messages at QoS q to a topic it subscribes to and receives all of them,
    in order [MQTT-4.6.0-5], at QoS q.  (N is 10 for QoS > 0: the
    synchronous MQTTClient polls ~100 ms per acknowledged publish.)"""
    b = broker()
    n = 50 if qos == 0 else 10
    r = subprocess.run([paho_c, "-h", b.host, "-p", str(b.port), "-V", str(version),
                        "-q", str(qos), "-n", str(n), "-t", "pahoc/%d/%d" % (version, qos)],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sent=%d received=%d in_order=1 max_qos=%d" % (n, n, qos) in r.stdout, r.stdout


def run(argv, inp=None, timeout=10):
    r = subprocess.run(argv, input=inp, capture_output=True, text=True, timeout=timeout * SLOW)
    return r


@pytest.mark.parametrize("proto", ["mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", [1, 2])
def test_mosquitto_pub_sub_pipe(broker, proto, qos):
    """[MQTT-3.1.2-5] mosquitto_sub registers a persistent session (-c, -E:
    exit once subscribed), mosquitto_pub -l pipes 20 lines at QoS q while it
    is offline, mosquitto_sub reconnects and prints all 20 in order."""
    b = broker()
    hp = ["-h", b.host, "-p", str(b.port), "-V", proto]
    sid = "mosq-sub-%s-%d" % (proto, qos)
    topic = "mosq/pipe/%s/%d" % (proto, qos)
    extra = ["-x", "60"] if proto == "mqttv5" else []
    r = run([MOSQUITTO_SUB] + hp + ["-i", sid, "-c", "-q", str(qos), "-t", topic, "-E"] + extra)
    assert r.returncode == 0, r.stderr
    lines = ["line %02d" % i for i in range(20)]
    r = run([MOSQUITTO_PUB] + hp + ["-q", str(qos), "-t", topic, "-l"], inp="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    r = run([MOSQUITTO_SUB] + hp + ["-i", sid, "-c", "-q", str(qos), "-t", topic,
                                    "-C", "20", "-W", "5", "-F", "%q %p"] + extra)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["%d %s" % (qos, x) for x in lines]


@pytest.mark.parametrize("proto", ["mqttv311", "mqttv5"])
def test_mosquitto_pub_sub_retained(broker, proto):
    """[MQTT-3.3.1-5][MQTT-3.3.1-8] mosquitto_pub -r stores a retained
    message; mosquitto_sub started afterwards receives it with RETAIN=1;
    mosquitto_pub -r -n clears it [MQTT-3.3.1-10]."""
    b = broker()
    hp = ["-h", b.host, "-p", str(b.port), "-V", proto]
    topic = "mosq/ret/" + proto
    r = run([MOSQUITTO_PUB] + hp + ["-q", "1", "-r", "-t", topic, "-m", "kept"])
    assert r.returncode == 0, r.stderr
    r = run([MOSQUITTO_SUB] + hp + ["-q", "1", "-t", topic, "-C", "1", "-W", "5", "-F", "%r %t %p"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1 %s kept" % topic
    r = run([MOSQUITTO_PUB] + hp + ["-q", "1", "-r", "-t", topic, "-n"])
    assert r.returncode == 0, r.stderr
    # --retained-only: print retained messages only and exit on the first
    # non-retained; -W bounds the wait when there is none.
    r = run([MOSQUITTO_SUB] + hp + ["-q", "1", "-t", topic, "-C", "1", "-W", "1", "--retained-only"])
    assert r.stdout.strip() == "", r.stdout
