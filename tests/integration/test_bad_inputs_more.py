"""BAD_INPUTS rows 3, 10, 16 and 20 (shared/BAD_INPUTS.md), in addition to
test_bad_inputs.py and the tests listed in docs/reliability.md.

Each sends the input to the real broker binary many times, checks the
answer (refusal, close, or the right protocol behaviour), that the broker
keeps serving others (assert_alive), and that RSS does not grow over the
repetitions (not under ASan, whose quarantine keeps freed memory; there
LeakSanitizer at broker exit covers leaks).
"""
import os
import socket
import stat
import threading
import time

import pytest

import mqttraw as m
from conftest import assert_alive, raw, raw_socket, SLOW
from test_bad_inputs import ASAN, MB, assert_rss_bounded

pytestmark = pytest.mark.imqtt_only


def _settle(b, seconds=0.3):
    time.sleep(seconds)
    return b.rss_kb()


# ---------------------------------------------------------------- row 3

def test_row3_many_partial_connects_declaring_large_sizes(broker):
    """Row 3 (EMQX CVE-2021-33175, VerneMQ CVE-2021-33176): 300
    unauthenticated connections each send a CONNECT header declaring 1 MB
    (within max_packet_size) and 10 bytes of it, then stall. The broker
    must not reserve the declared size per connection: RSS grows by far
    less than 300 MB; the stalled connections are closed when the connect
    timeout passes or when we drop them, and others keep being served."""
    b = broker({"max_packet_size": 2 * 1024 * 1024})
    before = _settle(b)
    socks = []
    try:
        for _ in range(300):
            s = socket.create_connection((b.host, b.port), timeout=5)
            s.sendall(bytes([0x10]) + m.varint(1024 * 1024) + b"\x00\x04MQTT\x04\x02")
            socks.append(s)
        time.sleep(0.5)
        grown = b.rss_kb() - before
        if not ASAN:
            assert grown < 40 * MB, "300 stalled 1 MB CONNECTs grew RSS by %d kB" % grown
        assert_alive(b)
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    assert_rss_bounded(b, before, 16 * MB, "after closing 300 partial CONNECTs")


def test_row3_partial_publishes_after_connect(broker):
    """Row 3: 100 connected clients each start a PUBLISH declaring 512 KB
    and send 1 KB of it, over 5 rounds (connect, stall, drop). What a
    connection holds is bounded by what it actually sent, and everything
    is released when it goes: RSS after the last round is back near the
    first."""
    b = broker({"max_packet_size": 1024 * 1024})
    hdr = bytes([0x30]) + m.varint(512 * 1024) + m.mstr("row3/t")
    rss = []
    for rnd in range(5):
        cs = [raw(b) for _ in range(100)]
        for c in cs:
            c.send(hdr + b"x" * 1024)
        time.sleep(0.3)
        if not ASAN:
            assert b.rss_kb() - (rss[0] if rss else b.rss_kb()) < 60 * MB
        for c in cs:
            c.close()
        rss.append(_settle(b, 0.5))
    assert_rss_bounded(b, rss[1], 8 * MB, "5 rounds of 100 stalled 512 KB PUBLISHes")
    assert_alive(b)


def test_row3_many_subscriptions_released(broker):
    """Row 3: a clean-session client subscribes to 5,000 distinct filters
    (100 SUBSCRIBE packets of 50), then disconnects; three rounds. The
    subscriptions go with the session, so RSS after round 3 is within a
    few MB of round 1 and the index does not keep growing."""
    b = broker()
    rss = []
    for rnd in range(3):
        with raw(b, version=5, client_id="row3-subs") as c:
            for k in range(100):
                filters = [("row3/%d/%d/+/x" % (k, j), 1) for j in range(50)]
                c.send(m.subscribe(k + 1, filters, version=5))
            for k in range(100):
                p = c.expect(m.SUBACK, timeout=10)
                assert p.reasons == [1] * 50, p
            c.send(m.disconnect(5))
        rss.append(_settle(b, 0.5))
    assert_rss_bounded(b, rss[0], 6 * MB, "3 rounds of 5,000 subscriptions")
    assert_alive(b)


# ---------------------------------------------------------------- row 10

def test_row10_will_delay_beyond_expiry_reconnect_rounds(broker, clients):
    """Row 10 (Mosquitto CVE-2019-11778): will delay 30 s, session expiry
    2 s. 100 rounds of connect / abnormal close / immediate reconnect of
    the same session: every reconnect finds the session (present=1) and
    cancels the pending will, so no will is published during the rounds.
    After the last abnormal close the session ends at ~2 s, before the
    will delay, and the will is published exactly once then. No crash, RSS
    flat across the rounds."""
    b = broker()
    w = clients(b, "row10-watch", version=5)
    assert w.subscribe("row10/will", 1) == [1]
    will = {"topic": "row10/will", "payload": b"gone", "qos": 1,
            "properties": [("will_delay_interval", 30)]}
    cp = [("session_expiry_interval", 2)]
    c = raw(b, version=5, client_id="row10", clean=False, will=will, properties=cp)
    c.close()
    rss0 = None
    for i in range(100):
        c = raw(b, version=5, client_id="row10", clean=False, will=will, properties=cp)
        assert c.connack.session_present == 1, (i, c.connack)
        if i % 2:
            c.send(m.subscribe(1, [("row10/x/%d" % i, 1)], version=5))
            c.expect(m.SUBACK)
        c.close()
        if i == 20:
            rss0 = _settle(b, 0.2)
    w.expect_none(0.3)
    msg = w.get(10)
    assert msg.payload == b"gone"
    w.expect_none(1.0)
    # The session is gone: a new one starts.
    with raw(b, version=5, client_id="row10", clean=False, properties=cp) as c:
        assert c.connack.session_present == 0
        c.send(m.disconnect(5))
    assert_rss_bounded(b, rss0, 4 * MB, "100 reconnects with a pending will")
    assert_alive(b, version=5)


def test_row10_takeover_while_will_pending(broker, clients):
    """Row 10 variant: the old connection is still open when the same
    client id connects again (takeover), 50 times, with will delay >
    session expiry. Each takeover with clean start 0 keeps the session
    (present=1) and closes the old connection (v5 DISCONNECT 0x8E); the
    delayed will of a replaced connection is not published while the
    session continues, none after a normal DISCONNECT, and nothing
    crashes."""
    b = broker()
    w = clients(b, "row10t-watch", version=5)
    assert w.subscribe("row10t/will", 1) == [1]
    will = {"topic": "row10t/will", "payload": b"gone", "qos": 1,
            "properties": [("will_delay_interval", 30)]}
    cp = [("session_expiry_interval", 2)]
    old = raw(b, version=5, client_id="row10t", clean=False, will=will, properties=cp)
    for i in range(50):
        new = raw(b, version=5, client_id="row10t", clean=False, will=will, properties=cp)
        assert new.connack.session_present == 1
        p = old.recv_or_closed(3)
        assert p is None or (p.type == m.DISCONNECT and p.reason == 0x8E), p
        old.close()
        old = new
    w.expect_none(0.5)
    old.send(m.disconnect(5))
    old.close()
    w.expect_none(0.5)
    assert_alive(b, version=5)


# ---------------------------------------------------------------- row 16

def _storm(b, ids, rounds, version, errors):
    for r in range(rounds):
        cid = ids[r % len(ids)]
        try:
            kw = {}
            if version == 5:
                kw["properties"] = [("session_expiry_interval", 30)]
            c = m.RawClient(b.host, b.port, version=version, timeout=5)
            ack = c.connect(cid, clean=(r % 3 == 0), **kw)
            if ack.reason != 0:
                errors.append("CONNACK %r" % ack)
                c.close()
                continue
            c.try_send(m.subscribe(1, [("row16/%s/%d" % (cid, r % 7), 1), ("row16/+/x", 2)],
                                   version=version))
            c.try_send(m.publish("row16/%s/x" % cid, b"p", qos=1, pid=2, version=version))
            c.try_send(m.unsubscribe(3, ["row16/%s/%d" % (cid, r % 7)], version=version))
            if r % 4 == 0:
                c.try_send(m.disconnect(version))
            c.close()
        except (OSError, m.Closed, TimeoutError):
            pass  # taken over by another thread: fine
        except AssertionError as e:
            errors.append(str(e))


@pytest.mark.parametrize("version", [4, 5])
def test_row16_reconnect_storm_same_ids(broker, version):
    """Row 16 (NanoMQ CVE-2026-22040): 8 threads reconnect with the same 4
    client ids (persistent and clean sessions mixed), subscribing,
    publishing and unsubscribing on each connection and dropping it, 150
    connections per thread per storm; two storms. No crash, no sanitizer
    report (fixture), RSS after the second storm within bounds of the
    first, and the broker serves others."""
    b = broker()
    ids = ["row16-%d" % i for i in range(4)]
    rss = []
    for storm in range(2):
        errors = []
        ts = [threading.Thread(target=_storm, args=(b, ids, 150, version, errors), daemon=True)
              for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60 * SLOW)
            assert not t.is_alive(), "storm thread stuck"
        assert not errors, errors[:5]
        assert b.alive(), b.stderr_text()[-3000:]
        rss.append(_settle(b, 0.5))
    assert_rss_bounded(b, rss[0], 6 * MB, "second reconnect storm")
    # Every id still works, and its session answers normally.
    for cid in ids:
        with raw(b, version=version, client_id=cid, clean=True) as c:
            c.send(m.pingreq())
            c.expect(m.PINGRESP)
    assert_alive(b, version=version)


# ---------------------------------------------------------------- row 20

def test_row20_data_dir_private_under_permissive_umask(tmp_path):
    """Row 20 (Mosquitto CVE-2017-9868): started with umask 000 and a data
    dir that does not exist yet, the broker creates the data dir 0700 and its files 0600 (no group/other bits), also after
    traffic, and refuses nothing."""
    from conftest import Broker
    data = tmp_path / "imqtt-data"
    old = os.umask(0)
    try:
        b = Broker({"store": {"dir": str(data)}}, str(tmp_path))
    finally:
        os.umask(old)
    try:
        with raw(b, client_id="row20", clean=False) as c:
            c.send(m.subscribe(1, [("row20/t", 1)]))
            c.expect(m.SUBACK)
        with raw(b) as p:
            p.send(m.publish("row20/t", b"secret", qos=1, pid=1, retain=True))
            p.expect(m.PUBACK)
        mode = stat.S_IMODE(os.stat(data).st_mode)
        assert mode == 0o700, oct(mode)
        names = os.listdir(data)
        assert names, "no store files"
        for name in names:
            fm = stat.S_IMODE(os.stat(data / name).st_mode)
            assert fm & 0o077 == 0, (name, oct(fm))
    finally:
        b.check_stop()


# ---------------------------------------------------------------- rows 11, 14, 17, 18 repeated

def test_rows_11_14_17_18_repeated_refusals_do_not_grow_memory(broker):
    """The single-shot tests of rows 11, 14, 17 and 18 (test_im_acl.py,
    test_im_auth.py, test_bad_inputs.py) check the answer; this repeats a
    mix of those inputs 400 times on an IM listener and checks that each
    is still refused with the right code, that RSS stays flat after a
    warm-up, and that a valid client is served at the end. Rows: 18 (alg
    none, other alg, expired, nbf in the future, bad signature, oversized),
    14 (will to $SYS and to another user's presence), 11 (client ids and
    user names with '#', '+', '/'), 17 (U+0000 / surrogate bytes in the
    client id)."""
    from imhelp import im_config, im_raw, mint, refused
    b = broker(im_config())
    now = int(time.time())
    cases = [
        ("alice@phone", mint("alice", alg="none"), {}, "auth"),
        ("alice@phone", mint("alice", alg="HS512"), {}, "auth"),
        ("alice@phone", mint("alice", exp=now - 600), {}, "auth"),
        ("alice@phone", mint("alice", nbf=now + 600), {}, "auth"),
        ("alice@phone", mint("alice", sign_with="wrong-secret-wrong-secret-wrong-secret"), {}, "auth"),
        ("alice@phone", mint("alice", extra={"pad": "x" * 5000}), {}, "auth"),
        ("alice@phone", mint("alice"), {"will": {"topic": "$SYS/x", "payload": b"w"}}, "notauth"),
        ("alice@phone", mint("alice"), {"will": {"topic": "p2p/presence/bob", "payload": b"w"}},
         "notauth"),
        ("al#ce@phone", mint("al#ce"), {}, None),
        ("alice@ph+ne", mint("alice"), {}, None),
        ("a/b@phone", mint("a/b"), {}, None),
    ]
    bad_utf8 = [b"alice@ph\x00ne", b"alice@\xed\xa0\x80"]

    def one_round():
        for version in (4, 5):
            for cid, tok, kw, kind in cases:
                c, ack = im_raw(b, cid, tok, version=version, **kw)
                with c:
                    if kind is None:
                        assert ack.reason != 0, (cid, ack)
                    else:
                        assert ack.reason == refused(version, kind), (cid, kind, ack)
            for cid in bad_utf8:
                with raw_socket(b, version=version) as c:
                    c.send(m.connect(cid, version=version, username="alice",
                                     password=mint("alice")))
                    p = c.recv_or_closed(3)
                    assert p is None or (p.type == m.CONNACK and p.reason != 0), p

    for _ in range(3):
        one_round()
    before = _settle(b)
    for _ in range(15):
        one_round()
    assert_rss_bounded(b, before, 4 * MB, "repeated refused CONNECTs (rows 11/14/17/18)")
    ok, ack = im_raw(b, "alice@phone", mint("alice"), version=5)
    with ok:
        assert ack.reason == 0
