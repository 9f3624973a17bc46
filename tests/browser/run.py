"""Headless Chromium driver: serve tests/browser/page.html and the MQTT.js
bundle (tests/ws/node_modules) on localhost, open the page with the
broker's WebSocket URL, and read what the page wrote into #result through
the DevTools protocol (polling in real time, so a slow broker or machine
only makes it wait longer).

    python3 tests/browser/run.py ws://127.0.0.1:8083/mqtt [4|5]

Other pages of this directory (im.html: an IM device) take their own
query parameters: run(url, 5, page="im.html", query={...}).
"""
import base64
import http.server
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # tests/
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Handler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path):
        path = path.split("?", 1)[0]
        if path.startswith("/node_modules/"):
            return os.path.join(ROOT, "ws", path.lstrip("/"))
        return os.path.join(HERE, os.path.basename(path) or "page.html")

    def log_message(self, *a):
        pass


class DevTools:
    """Just enough of a WebSocket client for the DevTools protocol."""

    def __init__(self, ws_url):
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", ws_url)
        self.s = socket.create_connection((m.group(1), int(m.group(2))), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n"
                        % (m.group(3), m.group(2), key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(4096)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.next_id = 0

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d

    def _frame(self):
        self._need(2)
        n, at = self.buf[1] & 0x7F, 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(at + n)
        data, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return data

    def call(self, method, **params):
        self.next_id += 1
        msg = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        hdr = bytes([0x81]) + (bytes([0x80 | len(msg)]) if len(msg) < 126
                               else bytes([0x80 | 126]) + struct.pack(">H", len(msg)))
        self.s.sendall(hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(msg)))
        while True:
            reply = json.loads(self._frame())
            if reply.get("id") == self.next_id:
                return reply.get("result", {})


def _devtools_port(profile):
    """The port Chromium chose for DevTools (--remote-debugging-port=0
    writes it to DevToolsActivePort): no port picked here that another
    process could take first. None until the file is there."""
    try:
        with open(os.path.join(profile, "DevToolsActivePort")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def run(ws_url, version=4, timeout=30, insecure=False, page="page.html", query=None):
    """Text of #result once it is no longer "pending" (or at timeout).
    insecure: accept the test CA's certificate (wss:// with a certificate
    Chromium does not know). page: the page of this directory to open,
    with ?url=&v= and the `query` dict."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    profile = tempfile.mkdtemp(prefix="imqtt-chromium-")
    q = dict(query or {}, url=ws_url, v=version)
    page = "http://127.0.0.1:%d/%s?%s" % (srv.server_address[1], page, urllib.parse.urlencode(q))
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + profile,
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", page]
    if insecure:
        argv.insert(1, "--ignore-certificate-errors")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = "no result"
    try:
        deadline = time.monotonic() + timeout
        target = None
        while target is None and time.monotonic() < deadline:
            dport = _devtools_port(profile)
            try:
                if dport is None:
                    raise OSError("DevTools not listening yet")
                with urllib.request.urlopen("http://127.0.0.1:%d/json" % dport, timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                    target = pages[0]["webSocketDebuggerUrl"] if pages else None
            except OSError:
                pass
            if target is None:
                time.sleep(0.1)
        if target is None:
            return "no DevTools target"
        dt = DevTools(target)
        while time.monotonic() < deadline:
            r = dt.call("Runtime.evaluate", expression=(
                "(document.getElementById('result')||{}).textContent"))
            result = r.get("result", {}).get("value") or "pending"
            if result != "pending":
                break
            time.sleep(0.1)
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        srv.shutdown()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    print(run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4))
