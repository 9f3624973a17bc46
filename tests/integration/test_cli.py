"""The broker's command line (issue 14): Mosquitto-style -c, -p, -v,
--version from the CMake project version, bad options named with exit 2,
config errors with line and column, and loopback-only listeners when the
broker starts without a config."""
import os
import re
import socket
import subprocess
import time

import pytest

import mqttraw as m
from conftest import IMQTT_BIN, SLOW, SOURCE_DIR, free_port

pytestmark = pytest.mark.imqtt_only

LOOPBACK_NOTE = ("no config: listening on loopback only; use --bind 0.0.0.0 or a "
                 "config to listen on all addresses")


def run(*args, timeout=10):
    return subprocess.run([IMQTT_BIN] + list(args), capture_output=True, text=True,
                          timeout=timeout * SLOW, stdin=subprocess.DEVNULL)


def test_version_is_the_cmake_project_version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        want = re.search(r"project\(imqtt VERSION (\S+)", f.read()).group(1)
    r = run("--version")
    assert r.returncode == 0 and r.stdout == "imqtt %s\n" % want, r


@pytest.mark.parametrize("argv,named", [
    (["-x"], "unknown option -x"),
    (["--nope"], "unknown option --nope"),
    (["-d"], "unknown option -d"),
    (["stray"], "unexpected argument stray"),
    (["-c"], "option -c needs a file name"),
    (["--config"], "option --config needs a file name"),
    (["-p"], "option -p needs a port number"),
    (["-p", "abc"], "-p: expected a port 0..65535"),
    (["-p", "70000"], "-p: expected a port 0..65535"),
    (["--port="], "--port=: expected a port 0..65535"),
    (["--bind", "localhost"], "--bind: expected an IPv4 or IPv6 address"),
    (["-v", "-q"], "unknown option -q"),
    (["--threads"], "option --threads needs a number"),
    (["--threads", "two"], "--threads: expected 0..256 (0: one per core)"),
    (["--threads", "257"], "--threads: expected 0..256 (0: one per core)"),
])
def test_bad_option_named_with_usage_exit_2(argv, named):
    r = run(*argv)
    assert r.returncode == 2, r
    lines = r.stderr.splitlines()
    assert lines[0] == "imqtt: " + named, r.stderr
    assert any(l.startswith("usage: imqtt") for l in lines[1:]), r.stderr
    assert r.stdout == ""


def test_help_to_stdout_exit_0():
    r = run("-h")
    assert r.returncode == 0 and r.stdout.startswith("usage: imqtt"), r
    assert "-c, --config FILE" in r.stdout and "-v, --verbose" in r.stdout


def test_short_options_c_and_p(broker):
    """-c FILE -p PORT: the config is read and -p moves its first listener
    (configured on another port here) to PORT."""
    other = free_port()
    b = broker({"listeners": [{"bind": "127.0.0.1", "port": other}]},
               argv=lambda port, conf: ["-c", conf, "-p", str(port)])
    with m.open_connected(b.host, b.port, "short-opts") as c:
        c.send(m.disconnect())
    assert "listening on 127.0.0.1:%d" % b.port in b.stderr_text()
    assert LOOPBACK_NOTE not in b.stderr_text()


def listening_addresses(pid, port):
    """The local addresses of the TCP sockets of pid listening on port,
    from the kernel's tables, as ('4'|'6', hex address)."""
    inodes = {}
    for fam, table in (("4", "/proc/net/tcp"), ("6", "/proc/net/tcp6")):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    addr, p = parts[1].rsplit(":", 1)
                    if parts[3] == "0A" and int(p, 16) == port:
                        inodes["socket:[%s]" % parts[9]] = (fam, addr)
        except OSError:
            pass
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link in inodes:
            out.add(inodes[link])
    return out


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


V4_LOOPBACK = ("4", "0100007F")
V6_LOOPBACK = ("6", "00000000000000000000000001000000")


def test_no_config_listens_on_loopback_only(broker):
    """Without a config and without --bind: 127.0.0.1 and ::1 (when the host
    has it) on the -p port, nothing else, and the log says so."""
    b = broker(None, argv=lambda port, conf: ["-p", str(port)])
    want = {V4_LOOPBACK, V6_LOOPBACK} if ipv6_loopback() else {V4_LOOPBACK}
    deadline = time.monotonic() + 5 * SLOW
    while listening_addresses(b.pid, b.port) != want:
        assert time.monotonic() < deadline, listening_addresses(b.pid, b.port)
        time.sleep(0.05)
    assert LOOPBACK_NOTE in b.stderr_text()
    with m.open_connected("127.0.0.1", b.port, "lo4") as c:
        c.send(m.disconnect())
    if ipv6_loopback():
        with m.open_connected("::1", b.port, "lo6") as c:
            c.send(m.disconnect())
    # Its store is ./data of the directory it was started in.
    assert os.path.isdir(os.path.join(b.tmpdir, "data"))


def test_no_config_with_bind_listens_where_told(broker):
    """--bind is a choice: no loopback default, no note."""
    b = broker(None, argv=lambda port, conf: ["-p", str(port), "--bind", "127.0.0.1"])
    assert listening_addresses(b.pid, b.port) == {V4_LOOPBACK}
    assert LOOPBACK_NOTE not in b.stderr_text()


def trace_lines(b):
    return [l.split(" DEBUG ", 1)[1] for l in b.stderr_text().splitlines()
            if " DEBUG " in l and (" Received " in l or " Sending " in l)]


def wait_trace(b, line, timeout=5.0):
    deadline = time.monotonic() + timeout * SLOW
    while line not in trace_lines(b):
        assert time.monotonic() < deadline, "no trace line %r in:\n%s" % (
            line, "\n".join(trace_lines(b)))
        time.sleep(0.02)


@pytest.mark.parametrize("version", [4, 5])
def test_verbose_traces_every_packet(broker, version):
    """-v: one DEBUG line per packet in and out, with the packet's fields,
    even when the config asks for level error."""
    b = broker({"log": {"level": "error"}},
               argv=lambda port, conf: ["-c", conf, "-p", str(port), "-v"])
    sub = m.RawClient(b.host, b.port, version=version)
    pub = m.RawClient(b.host, b.port, version=version)
    try:
        sub_peer = "%s:%d" % sub.sock.getsockname()[:2]
        assert sub.connect("tr-sub").reason == 0
        sub.send(m.subscribe(3, [("tr/#", 1)], version=version))
        sub.expect(m.SUBACK)
        assert pub.connect("tr-pub", username="ann").reason == 0
        pub.send(m.publish("tr/t", b"hello", qos=1, pid=7, version=version))
        pub.expect(m.PUBACK)
        got = sub.expect(m.PUBLISH)
        sub.send(m.ack(m.PUBACK, got.pid, version=version))
        pub.send(m.pingreq())
        pub.expect(m.PINGRESP)
        pub.send(m.disconnect(version))
        pub.expect_closed()
    finally:
        sub.close()
        pub.close()
    v = 5 if version == 5 else 4
    wait_trace(b, "Received CONNECT from %s (p%d, c1, k60, 'tr-sub')" % (sub_peer, v))
    wait_trace(b, "Sending CONNACK to tr-sub (s0, rc0)")
    wait_trace(b, "Received SUBSCRIBE from tr-sub (m3, 'tr/#' q1)")
    wait_trace(b, "Sending SUBACK to tr-sub (m3, rc1)")
    assert any(l.startswith("Received CONNECT from ") and "'tr-pub', u'ann')" in l
               for l in trace_lines(b)), trace_lines(b)
    wait_trace(b, "Received PUBLISH from tr-pub (d0, q1, r0, m7, 'tr/t', ... (5 bytes))")
    wait_trace(b, "Sending PUBLISH to tr-sub (d0, q1, r0, m%d, 'tr/t', ... (5 bytes))" % got.pid)
    wait_trace(b, "Sending PUBACK to tr-pub (m7, rc0)")
    wait_trace(b, "Received PUBACK from tr-sub (m%d, rc0)" % got.pid)
    wait_trace(b, "Received PINGREQ from tr-pub")
    wait_trace(b, "Sending PINGRESP to tr-pub")
    wait_trace(b, "Received DISCONNECT from tr-pub (rc0)")


def test_no_trace_without_verbose(broker):
    """log.level debug alone does not trace packets: -v does."""
    b = broker({"log": {"level": "debug"}})
    with m.open_connected(b.host, b.port, "quiet", version=5) as c:
        c.send(m.publish("q/t", b"x", qos=1, pid=1, version=5))
        c.expect(m.PUBACK)
        c.send(m.disconnect(5))
        c.expect_closed()
    time.sleep(0.1)
    assert trace_lines(b) == []


def test_config_syntax_error_has_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "max_connections": 10,\n  "log": {"level": "info",}\n}\n')
    r = run("-c", str(path))
    assert r.returncode == 2, r
    # cJSON stops just past the "}" where it wanted a key (column 27).
    assert r.stderr == "imqtt: %s: invalid JSON at line 3, column 28\n" % path, r.stderr

    path.write_text('{\n  "log": {"level": "info"}\n}\n]\n')
    r = run("-c", str(path))
    assert r.returncode == 2, r
    assert "invalid JSON: unexpected data at line 4, column 1" in r.stderr, r.stderr


@pytest.mark.parametrize("text,named", [
    ('{"log": {"level": "loud"}}', "log.level: expected"),
    ('{"listeners": [{"port": 1883, "prot": 1}]}', 'unknown key "listeners[0].prot"'),
    ('{"max_connections": -1}', "max_connections: expected an integer"),
])
def test_config_semantic_error_names_the_key(tmp_path, text, named):
    path = tmp_path / "bad.json"
    path.write_text(text)
    r = run("--config", str(path))
    assert r.returncode == 2 and named in r.stderr, r


def test_threads_option_sets_the_loops(tmp_path):
    """--threads overrides `threads`; the log says how many loops run."""
    port = free_port()
    conf = tmp_path / "c.json"
    conf.write_text('{"threads": 1, "listeners": [{"bind": "127.0.0.1", '
                    '"port": %d}], "store": {"dir": "%s"}}' % (port, tmp_path / "data"))
    p = subprocess.Popen([IMQTT_BIN, "-c", str(conf), "--threads", "3"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10 * SLOW)
    assert p.returncode == 0, err
    assert "3 loop threads" in err, err
