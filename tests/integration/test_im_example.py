"""examples/chat.py against the real broker: the README's walkthrough
(two users, alice on two devices) in miniature, and examples/im.json
is a config the broker accepts."""
import json
import re
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


@pytest.mark.parametrize("v311", [False, True])
def test_chat_example_receipts(broker, terms, v311):
    """chat.py shows delivered and read receipts (/read), the reader's
    other device sees its own read, MQTT 5 and 3.1.1 (envelope) alike."""
    b = broker(im_config(listener_extra={"im_envelope": True,
                                         "im_receipts": {"delivery": True}}))
    v = ["--v311"] if v311 else []
    phone = terms(b, "alice", "phone", ["--clean"] + v)
    bob = terms(b, "bob", "pc", ["--clean"] + v)
    tab = terms(b, "bob", "tab", ["--clean"] + v)
    for t in (phone, bob, tab):
        t.wait_text("* connected as")
    phone.type("@bob are you there")
    bob.wait_text("are you there")
    line = phone.wait_text("* delivered to")
    assert re.fullmatch(r"\* delivered to bob@(pc|tab): \d+", line), line
    ident = line.rsplit(" ", 1)[1]
    bob.type("/read alice %s" % ident)
    assert phone.wait_text("* read by") == "* read by bob@pc: %s" % ident
    assert tab.wait_text("read @alice") == "* (you, on pc) read @alice: %s" % ident
    assert [l for l in phone.rest() if "delivered" in l] == []


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


def test_chat_empty_token_explained():
    """`--token "$ALICE"` in a terminal where ALICE is unset: a message that
    names the likely cause, exit 2, no traceback."""
    p = subprocess.run(["/usr/bin/python3", CHAT, "--user", "alice", "--device", "phone",
                        "--token", ""], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p.stderr
    assert "--token is empty" in p.stderr and "$ALICE" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_chat_takeover_stops(broker, terms):
    """Two clients with the same user@device: the older is told its session
    was taken over and exits 1; it does not reconnect, so the newer stays
    connected (before: both reconnected once a second, 'disconnected (7)')."""
    b = broker(im_config())
    first = terms(b, "alice", "phone", ["--clean"])
    first.wait_text("* connected as alice@phone")
    second = terms(b, "alice", "phone", ["--clean"])
    second.wait_text("* connected as alice@phone")
    line = first.wait_text("session taken over")
    assert "another client connected as alice@phone" in line
    assert first.p.wait(5 * SLOW) == 1
    time.sleep(2.5)  # paho's reconnect delay is 1 s: a retry would show by now
    # The broker's line: "client alice@phone (<peer>): session taken over by <peer>".
    takeovers = [l for l in b.stderr_text().splitlines()
                 if "client alice@phone (" in l and "session taken over" in l]
    assert len(takeovers) == 1, b.stderr_text()
    assert not [l for l in second.rest() if "disconnected" in l or "taken over" in l]
    assert second.p.poll() is None


def readme_section(title):
    text = open(os.path.join(SOURCE_DIR, "README.md")).read()
    start = text.index("## " + title)
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def test_readme_walkthrough_as_written(tmp_path, terms):
    """The README's "IM in five minutes", by hand: the broker line and the
    three chat.py lines (each its own block, each self-contained, as a new
    terminal would run them), run as written from the repository root —
    but with the config path pointing at a copy of examples/im.json whose
    port and store are moved, so the test can run beside anything."""
    import shlex
    from conftest import IMQTT_BIN, free_port
    section = readme_section("IM in five minutes")
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert blocks[0].strip() == "scripts/demo"
    lines = [l for b in blocks for l in b.splitlines() if l.strip()]
    broker_line = [l for l in lines if l.startswith("build/imqtt ")]
    chats = [l for l in lines if l.startswith("examples/chat.py ")]
    assert broker_line == ["build/imqtt --config examples/im.json"]
    assert len(chats) == 3
    # one client per block: pasting a block never feeds a client its neighbour
    for b in blocks:
        assert sum(1 for l in b.splitlines() if l.startswith("examples/chat.py")) <= 1, b
    cfg = json.load(open(os.path.join(SOURCE_DIR, "examples", "im.json")))
    assert cfg["listeners"][0]["port"] != 1883  # scripts/run holds 1883
    assert "127.0.0.1:%d" % cfg["listeners"][0]["port"] in section
    port = free_port()
    cfg["listeners"][0]["port"] = port
    cfg["store"] = {"dir": str(tmp_path / "data")}
    copy = tmp_path / "im.json"
    copy.write_text(json.dumps(cfg))
    argv = [a if a != "examples/im.json" else str(copy) for a in shlex.split(broker_line[0])]
    p = subprocess.Popen([IMQTT_BIN] + argv[1:], cwd=SOURCE_DIR,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, p)
        clients = {}
        for line in chats:
            argv = [a if a != "examples/im.json" else str(copy) for a in shlex.split(line)]
            argv[0] = CHAT
            c = subprocess.Popen(["/usr/bin/python3", "-u"] + argv, cwd=SOURCE_DIR,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, bufsize=1)
            t = Term.__new__(Term)
            t.name, t.p, t.lines, t.seen = line, c, queue.Queue(), []
            threading.Thread(target=t._read, daemon=True).start()
            user = argv[argv.index("--user") + 1]
            device = argv[argv.index("--device") + 1]
            clients["%s@%s" % (user, device)] = t
        try:
            for t in clients.values():
                t.wait_text("* connected as")
            time.sleep(0.3)
            clients["alice@phone"].type("@bob hi")
            assert clients["bob@pc"].wait_text("hi") == "[alice@phone] hi"
            assert clients["alice@laptop"].wait_text(" hi") == \
                "[alice@phone -> @bob] (you, on phone) hi"
            clients["bob@pc"].type("#friends hello")
            assert clients["alice@phone"].wait_text("hello") == "[#friends bob@pc] hello"
        finally:
            for t in clients.values():
                t.close()
    finally:
        p.terminate()
        p.wait(5)


def wait_port(port, proc, timeout=10.0):
    import socket
    deadline = time.monotonic() + timeout * SLOW
    while True:
        assert proc.poll() is None, "broker exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "broker not up on %d" % port
            time.sleep(0.05)


def tmux(env, *args, check=True):
    p = subprocess.run(["tmux"] + list(args), env=env, capture_output=True, text=True,
                       timeout=30)
    assert not check or p.returncode == 0, (args, p.stderr)
    return p


def test_demo_script_in_tmux(tmp_path):
    """scripts/demo for real, in a private tmux server: the broker and three
    clients come up in panes, a message typed in alice@phone's pane reaches
    bob@pc's and alice@laptop's, and killing the session stops the broker
    too (tmux's SIGHUP would only make imqtt reload its config)."""
    import shutil
    from conftest import IMQTT_BIN, free_port
    if not shutil.which("tmux"):
        pytest.skip("tmux not installed (scripts/setup installs it)")
    env = dict(os.environ, IMQTT_BIN=IMQTT_BIN, TMUX_TMPDIR=str(tmp_path))
    env.pop("TMUX", None)
    port = free_port()
    session = "imqtt-test-demo"
    broker_pid = None
    out = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "demo"), "--port", str(port),
                          "--session", session, "--dir", str(tmp_path / "run"), "--no-attach"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    try:
        panes = {}
        for row in tmux(env, "list-panes", "-t", session, "-F",
                        "#{pane_id} #{pane_pid} #{pane_start_command}").stdout.splitlines():
            pane_id, pid, command = row.split(" ", 2)
            m = re.search(r"--user (\w+) --device (\w+)", command)
            panes[("%s@%s" % m.groups()) if m else "broker"] = (pane_id, int(pid))
        assert set(panes) == {"broker", "alice@phone", "alice@laptop", "bob@pc"}

        def screen(who):
            return tmux(env, "capture-pane", "-p", "-J", "-t", panes[who][0]).stdout

        def wait_screen(who, text, timeout=10.0):
            deadline = time.monotonic() + timeout * SLOW
            while text not in screen(who):
                assert time.monotonic() < deadline, "%s: no %r in\n%s" % (who, text, screen(who))
                time.sleep(0.1)
        for who in ("alice@phone", "alice@laptop", "bob@pc"):
            wait_screen(who, "* connected as " + who)
        time.sleep(0.3)
        tmux(env, "send-keys", "-t", panes["alice@phone"][0], "@bob hi from the demo", "Enter")
        wait_screen("bob@pc", "[alice@phone] hi from the demo")
        wait_screen("alice@laptop", "(you, on phone) hi from the demo")
        wait_screen("broker", "listening on 127.0.0.1:%d" % port)
        assert (tmp_path / "run" / "imqtt-demo-data").is_dir()
        shell_pid = panes["broker"][1]
        kids = subprocess.run(["pgrep", "-P", str(shell_pid)], capture_output=True,
                              text=True).stdout.split()
        assert len(kids) == 1, kids
        broker_pid = int(kids[0])
        assert os.readlink("/proc/%d/exe" % broker_pid) == os.path.realpath(IMQTT_BIN)
    finally:
        tmux(env, "kill-session", "-t", session, check=False)
    deadline = time.monotonic() + 10 * SLOW
    while broker_pid and os.path.exists("/proc/%d" % broker_pid):
        with open("/proc/%d/stat" % broker_pid) as f:
            if f.read().split(") ")[1].startswith("Z"):
                break
        assert time.monotonic() < deadline, "the broker outlived its tmux session"
        time.sleep(0.1)
    tmux(env, "kill-server", check=False)
