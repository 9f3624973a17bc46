"""TLS listeners (mbedTLS): mosquitto_pub/sub --cafile, Paho with
tls_set, mutual TLS, session resumption, cipher suites, and a failed
handshake that closes only its own connection."""
import os
import queue
import socket
import ssl
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

import mqttraw
from conftest import assert_alive
from opshelp import certs, start, tls_cfg

pytestmark = pytest.mark.imqtt_only


def tls_broker(broker, config=None, **tls):
    return start(broker, [{"transport": "tls", "tls": tls_cfg(**tls)}], config)


def test_mosquitto_clients(broker):
    c = certs()
    b, (port,) = tls_broker(broker)
    sub = subprocess.Popen(["mosquitto_sub", "-h", "localhost", "-p", str(port), "--cafile",
                            c["ca_crt"], "-t", "m/#", "-C", "2", "-W", "10", "-v", "-q", "1"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    for i in range(2):
        subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(port), "--cafile",
                        c["ca_crt"], "-t", "m/%d" % i, "-m", "hello %d" % i, "-q", "1"],
                       check=True, timeout=10)
    out, _ = sub.communicate(timeout=15)
    assert out.splitlines() == ["m/0 hello 0", "m/1 hello 1"]


def paho(port, cid, version=mqtt.MQTTv5, cert=None, key=None):
    c = certs()
    cl = mqtt.Client(client_id=cid, protocol=version)
    cl.tls_set(ca_certs=c["ca_crt"], certfile=cert, keyfile=key)
    got = queue.Queue()
    conn = queue.Queue()
    cl.on_message = lambda x, u, m: got.put((m.topic, m.payload))
    if version == mqtt.MQTTv5:
        cl.on_connect = lambda x, u, f, rc, p=None: conn.put(rc)
    else:
        cl.on_connect = lambda x, u, f, rc: conn.put(rc)
    cl.connect("localhost", port)
    cl.loop_start()
    return cl, got, conn


@pytest.mark.parametrize("version", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_paho_tls(broker, version):
    b, (port,) = tls_broker(broker)
    cl, got, conn = paho(port, "paho-tls", version)
    try:
        assert conn.get(timeout=5) == 0
        cl.subscribe("p/t", 1)
        time.sleep(0.2)
        big = os.urandom(100000)  # many TLS records
        cl.publish("p/t", big, 1)
        cl.publish("p/t", b"small", 2)
        got_msgs = [got.get(timeout=5), got.get(timeout=5)]
        assert sorted(p for _, p in got_msgs) == sorted([big, b"small"])
    finally:
        cl.disconnect()
        cl.loop_stop()


def test_mutual_tls(broker):
    c = certs()
    b, (port,) = tls_broker(broker, ca_file=c["ca_crt"], verify_client=True)
    # with a certificate from the trusted CA
    cl, got, conn = paho(port, "mtls", cert=c["client_crt"], key=c["client_key"])
    assert conn.get(timeout=5) == 0
    cl.disconnect()
    cl.loop_stop()
    # without one, or with one from another CA: the handshake fails
    for cert, key in ((None, None), (c["rogue_crt"], c["rogue_key"])):
        ctx = ssl.create_default_context(cafile=c["ca_crt"])
        if cert:
            ctx.load_cert_chain(cert, key)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            t = ctx.wrap_socket(s, server_hostname="localhost")
            # TLS 1.2: the failure may surface at the first read
            t.sendall(mqttraw.connect("nocert"))
            if not t.recv(10):
                raise ConnectionError("closed")
        s.close()
    assert "TLS handshake failed" in b.stderr_text()
    assert_alive(b)


def test_failed_handshake_closes_only_that_connection(broker):
    b, (port,) = tls_broker(broker)
    cl, got, conn = paho(port, "survivor")
    assert conn.get(timeout=5) == 0
    cl.subscribe("s/#", 1)
    # plain MQTT to the TLS port, then garbage, then a hello cut short
    for data in (mqttraw.connect("plain"), os.urandom(300), b"\x16\x03\x01\x00\xff\x01"):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(data)
        if data[0] != 0x16:
            s.settimeout(5)
            try:
                while s.recv(100):
                    pass
            except OSError:
                pass
        s.close()
    time.sleep(0.3)
    assert "TLS handshake failed" in b.stderr_text()
    cl.publish("s/1", b"still here", 1)
    assert got.get(timeout=5) == ("s/1", b"still here")
    cl.disconnect()
    cl.loop_stop()
    assert_alive(b)


def test_session_resumption(broker):
    c = certs()
    b, (port,) = tls_broker(broker)
    ctx = ssl.create_default_context(cafile=c["ca_crt"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s1 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s1.sendall(mqttraw.connect("resume-1"))
    assert s1.recv(4)[0] == 0x20
    sess = s1.session
    s1.close()
    s2 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                         server_hostname="localhost", session=sess)
    s2.sendall(mqttraw.connect("resume-2"))
    assert s2.recv(4)[0] == 0x20
    assert s2.session_reused
    s2.close()


def test_min_version_and_ciphers(broker):
    c = certs()
    suite = "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256"
    b, (port,) = tls_broker(broker, min_version="1.2", ciphers=suite)
    ctx = ssl.create_default_context(cafile=c["ca_crt"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    assert s.version() == "TLSv1.2"
    assert s.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"
    s.close()
    # TLS 1.1 is refused
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer TLS 1.1")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")


@pytest.mark.parametrize("tls,msg", [
    ({"cert_file": "/nonexistent.crt", "key_file": "/nonexistent.key"}, "/nonexistent.crt"),
    ({"cert_file": "SERVER", "key_file": "CA_KEY"}, "does not match"),
    ({"cert_file": "SERVER", "key_file": "KEY", "ciphers": "NOT-A-SUITE"}, "NOT-A-SUITE"),
    ({"cert_file": "SERVER", "key_file": "KEY", "min_version": "1.0"}, "min_version"),
    ({"cert_file": "SERVER", "key_file": "KEY", "verify_client": True}, "ca_file"),
    ({"key_file": "KEY"}, "cert_file"),
])
def test_bad_tls_config_refused(tmp_path, tls, msg):
    from conftest import IMQTT_BIN
    c = certs()
    sub = {"SERVER": c["server_crt"], "KEY": c["server_key"],
           "CA_KEY": os.path.join(c["dir"], "ca.key")}
    tls = {k: sub.get(v, v) if isinstance(v, str) else v for k, v in tls.items()}
    cfg = tmp_path / "c.json"
    import json
    cfg.write_text(json.dumps({"listeners": [{"port": 1, "transport": "tls", "tls": tls}]}))
    out = subprocess.run([IMQTT_BIN, "--config", str(cfg)], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 2
    assert msg in out.stderr, out.stderr


class TLSRaw(mqttraw.RawClient):
    """A raw MQTT client over TLS, presenting a client certificate."""

    def __init__(self, port, cert, key, version=5):
        c = certs()
        ctx = ssl.create_default_context(cafile=c["ca_crt"])
        ctx.load_cert_chain(cert, key)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock = ctx.wrap_socket(s, server_hostname="localhost")
        self.version = version
        self.buf = bytearray()


def cert_listener(**extra):
    c = certs()
    d = {"transport": "tls", "tls": tls_cfg(ca_file=c["ca_crt"], verify_client=True,
                                            identity_from_cert=True)}
    d.update(extra)
    return d


def test_identity_from_cert_is_the_acl_user(broker):
    """The client certificate's CN (alice) is %u: users/alice/# is hers,
    users/bob/# is not, whatever user name the CONNECT would have said."""
    c = certs()
    b, (port,) = start(broker, [cert_listener()], {"acl": {"default": "deny", "rules": [
        {"permission": "allow", "action": "all", "topic": "users/%u/#"}]}})
    cl = TLSRaw(port, c["client_crt"], c["client_key"])
    assert cl.connect("dev1").reason == 0
    cl.send(mqttraw.subscribe(1, [("users/alice/#", 1), ("users/bob/#", 1)], version=5))
    assert cl.expect(mqttraw.SUBACK).reasons == [1, 0x87]
    cl.send(mqttraw.publish("users/alice/x", b"mine", qos=1, pid=2, version=5))
    cl.send(mqttraw.publish("users/bob/x", b"theirs", qos=1, pid=3, version=5))
    acks, msgs = {}, []
    while len(acks) < 2 or not msgs:
        p = cl.recv()
        if p.type == mqttraw.PUBACK:
            acks[p.pid] = p.reason or 0
        elif p.type == mqttraw.PUBLISH:
            msgs.append(p.body)
            cl.send(mqttraw.ack(mqttraw.PUBACK, p.pid, version=5))
    assert acks == {2: 0, 3: 0x87}
    assert len(msgs) == 1 and msgs[0].endswith(b"mine")
    cl.close()
    # a user name other than the certificate's is refused
    cl = TLSRaw(port, c["client_crt"], c["client_key"])
    assert cl.connect("dev2", username="bob", password="x").reason == 0x87
    cl.close()
    # the same user name is accepted
    cl = TLSRaw(port, c["client_crt"], c["client_key"], version=4)
    assert cl.connect("dev3", username="alice").reason == 0
    cl.close()
    assert "differs from the certificate's identity" in b.stderr_text()


def test_identity_from_cert_on_im_listener(broker):
    """On an IM listener the client id's user must be the certificate's."""
    c = certs()
    b, (port,) = start(broker, [cert_listener(im=True, auth="anonymous")])
    cl = TLSRaw(port, c["client_crt"], c["client_key"])
    assert cl.connect("alice@phone").reason == 0
    cl.close()
    cl = TLSRaw(port, c["client_crt"], c["client_key"])
    assert cl.connect("bob@phone").reason == 0x87
    cl.close()
    cl = TLSRaw(port, c["client_crt"], c["client_key"], version=4)
    assert cl.connect("bob@phone").reason == 5  # 3.1.1: not authorized
    cl.close()
