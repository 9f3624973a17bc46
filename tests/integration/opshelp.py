"""Helpers for the transport and operations tests (TLS, WebSocket, $SYS,
metrics, reload): certificates, brokers with extra listeners, a minimal
WebSocket client that can also send what a real client never would."""
import base64
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import free_port, SOURCE_DIR, SLOW

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "fixtures"))
import certs as certgen  # noqa: E402

WS_DIR = os.path.join(SOURCE_DIR, "tests", "ws")
NODE_MODULES = os.path.join(WS_DIR, "node_modules")

_certs = None


def certs():
    """One set of certificates per test process (RSA keys are slow)."""
    global _certs
    if not certgen.available():
        pytest.skip("python3-cryptography not installed (scripts/setup installs it)")
    if _certs is None:
        _certs = certgen.make(tempfile.mkdtemp(prefix="imqtt-certs-"))
    return _certs


def tls_cfg(c=None, **kw):
    c = c or certs()
    d = {"cert_file": c["server_crt"], "key_file": c["server_key"]}
    d.update(kw)
    return d


def start(broker, extra, config=None):
    """broker with a plain listener (the fixture's port) plus `extra`
    listeners: list of dicts without ports; returns (b, [ports])."""
    cfg = dict(config or {})
    ports = []
    listeners = [{"bind": "127.0.0.1", "port": 0}]
    for lst in extra:
        p = free_port()
        ports.append(p)
        d = {"bind": "127.0.0.1", "port": p}
        d.update(lst)
        listeners.append(d)
    cfg["listeners"] = listeners
    # conftest overrides the first listener's port with its own
    listeners[0]["port"] = free_port()
    b = broker(cfg)
    # The fixture waited for the first listener only; make sure every extra
    # one accepts too, and say why when one does not.
    for p in ports:
        deadline = time.monotonic() + 5 * SLOW
        while True:
            try:
                socket.create_connection(("127.0.0.1", p), timeout=1).close()
                break
            except OSError as e:
                if time.monotonic() > deadline or not b.alive():
                    pytest.fail("listener on port %d not accepting (%s); broker "
                                "stderr:\n%s" % (p, e, b.stderr_text()[-3000:]))
                time.sleep(0.05)
    return b, ports


def need_node():
    if not os.path.isdir(os.path.join(NODE_MODULES, "mqtt")):
        pytest.skip("MQTT.js not installed: run scripts/setup (npm install in tests/ws)")


def node(script, *args, timeout=30):
    need_node()
    out = subprocess.run(["node", os.path.join(WS_DIR, script)] + [str(a) for a in args],
                         capture_output=True, text=True, timeout=timeout, cwd=WS_DIR)
    return out


# ---------------------------------------------------------------- raw WebSocket

def ws_accept(key):
    return base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        hdr = bytes([b0, (0x80 if mask else 0) | n])
    elif n < 65536:
        hdr = bytes([b0, (0x80 if mask else 0) | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, (0x80 if mask else 0) | 127]) + struct.pack(">Q", n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class RawWS:
    """A WebSocket client over a plain (or TLS) socket."""

    def __init__(self, port, path="/mqtt", protocol="mqtt", tls_ca=None, upgrade=True):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if tls_ca:
            ctx = ssl.create_default_context(cafile=tls_ca)
            s = ctx.wrap_socket(s, server_hostname="localhost")
        self.s = s
        self.buf = b""
        if upgrade:
            status, headers = self.upgrade(path, protocol)
            assert status == 101, (status, headers)
            self.headers = headers

    def request(self, raw):
        self.s.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0]:
            return None, {}
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def upgrade(self, path="/mqtt", protocol="mqtt"):
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n" % (path, key))
        if protocol:
            req += "Sec-WebSocket-Protocol: %s\r\n" % protocol
        status, headers = self.request((req + "\r\n").encode())
        if status == 101:
            assert headers["sec-websocket-accept"] == ws_accept(key)
        return status, headers

    def send(self, data):
        self.s.sendall(data)

    def send_binary(self, payload):
        self.s.sendall(frame(0x2, payload))

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d

    def recv_frame(self):
        """(opcode, payload); server frames are never masked."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frames must not be masked"
        n, at = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(at + n)
        payload = self.buf[at:at + n]
        self.buf = self.buf[at + n:]
        return b0 & 0x0F, payload

    def recv_mqtt(self):
        """Collect binary frames until one whole MQTT packet is there."""
        data = getattr(self, "_mq", b"")
        while True:
            if len(data) >= 2:
                mult, length, i = 1, 0, 1
                while i < len(data):
                    length += (data[i] & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not data[i - 1] & 0x80:
                        if len(data) >= i + length:
                            self._mq = data[i + length:]
                            return data[:i + length]
                        break
            op, payload = self.recv_frame()
            assert op in (0x2, 0x0), "unexpected opcode %d" % op
            data += payload

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
