"""examples/chat.py against the real broker: the README's walkthrough
(two users, alice on two devices) in miniature, and examples/im.json
is a config the broker accepts."""
import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from conftest import SOURCE_DIR, SLOW
from imhelp import SECRET, im_config

pytestmark = pytest.mark.imqtt_only

CHAT = os.path.join(SOURCE_DIR, "examples", "chat.py")


class Term:
    """chat.py in a pipe: write lines, wait for output lines."""

    def __init__(self, b, user, device, extra=()):
        self.name = "%s@%s" % (user, device)
        self.p = subprocess.Popen(
            ["/usr/bin/python3", "-u", CHAT, "--host", b.host, "--port", str(b.port),
             "--user", user, "--device", device, "--secret", SECRET] + list(extra),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def type(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def wait(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if pred(line):
                return line
        raise AssertionError("%s: no matching line; output so far:\n%s"
                             % (self.name, "\n".join(self.seen)))

    def wait_text(self, text, timeout=5.0):
        return self.wait(lambda l: text in l, timeout)

    def rest(self, quiet=0.4):
        out = []
        while True:
            try:
                out.append(self.lines.get(timeout=quiet))
            except queue.Empty:
                return out

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)


@pytest.fixture
def terms():
    made = []

    def make(*a, **kw):
        t = Term(*a, **kw)
        made.append(t)
        return t
    yield make
    for t in made:
        t.close()


def test_chat_example_two_users_sync(broker, terms):
    b = broker(im_config(im={"presence": True}))
    phone = terms(b, "alice", "phone", ["--groups", "friends", "--clean"])
    laptop = terms(b, "alice", "laptop", ["--groups", "friends", "--clean"])
    bob = terms(b, "bob", "pc", ["--groups", "friends", "--clean"])
    for t in (phone, laptop, bob):
        t.wait_text("* connected as")
    time.sleep(0.3)  # group subscriptions
    phone.type("@bob hi bob")
    assert bob.wait_text("hi bob") == "[alice@phone] hi bob"
    assert laptop.wait_text("hi bob") == "[alice@phone -> @bob] (you, on phone) hi bob"
    bob.type("@alice hello alice")
    assert phone.wait_text("hello alice") == "[bob@pc] hello alice"
    assert laptop.wait_text("hello alice") == "[bob@pc] hello alice"
    laptop.type("#friends hi all")
    assert bob.wait_text("hi all") == "[#friends alice@laptop] hi all"
    assert phone.wait_text("hi all") == "[#friends alice@laptop] (you, on laptop) hi all"
    bob.type("/who alice")
    assert bob.wait_text("* alice:") == "* alice: online on laptop, phone"
    # no echo: nothing else reached the phone
    assert [l for l in phone.rest() if "hi bob" in l] == []


def test_chat_example_v311_envelope_and_history(broker, terms):
    """chat.py --v311 on a listener with the envelope knows who wrote what
    (from the envelope), and /history shows the conversation."""
    b = broker(im_config(listener_extra={"im_envelope": True}))
    phone = terms(b, "alice", "phone", ["--clean"])
    old = terms(b, "bob", "old", ["--clean", "--v311"])
    for t in (phone, old):
        t.wait_text("* connected as")
    phone.type("@bob hi from alice")
    assert old.wait_text("hi from alice") == "[alice@phone] hi from alice"
    old.type("@alice hi back")
    assert phone.wait_text("hi back") == "[bob@old] hi back"
    old.type("/history alice")
    assert old.wait_text("* history") == "* history with @alice (2 messages):"
    assert old.wait_text("hi from alice").endswith("[alice@phone] hi from alice")
    assert old.wait_text("hi back").endswith("[bob@old] hi back")


def test_example_config_accepted(tmp_path):
    """examples/im.json starts (on another port, store in a temp dir) and
    its secret works with chat.py-style tokens."""
    from conftest import IMQTT_BIN, free_port
    import socket
    with open(os.path.join(SOURCE_DIR, "examples", "im.json")) as f:
        cfg = json.load(f)
    cfg["store"] = {"dir": str(tmp_path / "data")}
    path = tmp_path / "im.json"
    path.write_text(json.dumps(cfg))
    port = free_port()
    p = subprocess.Popen([IMQTT_BIN, "--config", str(path), "--port", str(port), "--bind",
                          "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 5 * SLOW
        while True:
            assert p.poll() is None, p.stdout.read().decode()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "examples/im.json: broker not up"
                time.sleep(0.05)
        import importlib.util
        spec = importlib.util.spec_from_file_location("chat", CHAT)
        chat = importlib.util.module_from_spec(spec)
        sys.dont_write_bytecode, old = True, sys.dont_write_bytecode
        try:
            spec.loader.exec_module(chat)
        finally:
            sys.dont_write_bytecode = old
        import mqttraw as m
        tok = chat.mint_token("alice", cfg["auth"]["jwt"]["secret"], 60, ["friends"])
        with m.RawClient("127.0.0.1", port, version=5) as c:
            assert c.connect("alice@phone", username="alice", password=tok).reason == 0
    finally:
        p.terminate()
        p.wait(5)
