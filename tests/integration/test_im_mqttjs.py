"""The IM features (issue 13: message identity, dedup by id, history over
request/response, receipts, the 3.1.1 envelope) seen by MQTT.js devices in
Node (tests/ws/im.js) and in headless Chromium (tests/browser/im.html),
over WebSocket, against the real broker binary.

Every broker has two IM listeners on loopback: TCP (the fixture's port,
for the Paho helpers) and WebSocket (the MQTT.js devices). Node runs under
subprocess.run with a timeout (killed by PID past it); Chromium is started
and stopped by tests/browser/run.py.
"""
import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import SLOW, free_port
from imhelp import im, im_config, token, drain
from opshelp import WS_DIR, need_node

pytestmark = pytest.mark.imqtt_only


def im_ws_broker(broker, listener_extra=None, tls=None, **kw):
    """broker with an IM listener on TCP and one on WebSocket (same
    listener options; tls: the listener's tls object, wss://); returns
    (b, url)."""
    cfg = im_config(listener_extra=listener_extra, **kw)
    ws = dict(cfg["listeners"][0], transport="wss" if tls else "ws", port=free_port())
    if tls:
        ws["tls"] = tls
    cfg["listeners"].append(ws)
    b = broker(cfg)
    wait_port(b, ws["port"])
    return b, "%s://%s:%d/mqtt" % ("wss" if tls else "ws", "localhost" if tls else "127.0.0.1",
                                   ws["port"])


def wait_port(b, port):
    deadline = time.monotonic() + 5 * SLOW
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError as e:
            if time.monotonic() > deadline or not b.alive():
                pytest.fail("ws listener not accepting (%s):\n%s" % (e, b.stderr_text()[-3000:]))
            time.sleep(0.05)


def run_js(b, url, scenario, users, timeout=30, **opts):
    """Run one tests/ws/im.js scenario; returns its JSON result."""
    need_node()
    args = dict(opts, url=url, tokens={u: token(u, ttl=600) for u in users},
                timeout_ms=int(timeout * 1000 * SLOW))
    out = subprocess.run(["node", os.path.join(WS_DIR, "im.js"), scenario, json.dumps(args)],
                         capture_output=True, text=True, timeout=(timeout + 15) * SLOW,
                         cwd=WS_DIR, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    assert lines, (out.stdout[-2000:], out.stderr[-3000:])
    r = json.loads(lines[-1])
    assert r.get("ok"), (r, out.stderr[-3000:], b.stderr_text()[-3000:])
    return r


def up(x, key):
    """A user property of an im.js message: the value, or a list when repeated."""
    return (x.get("up") or {}).get(key)


def chat(msgs):
    return [x for x in msgs if x["topic"].startswith("p2p/talk/")]


# ---------------------------------------------------------------- (a) direct

@pytest.mark.parametrize("alias,recv_max", [(False, None), (True, None), (False, 1)],
                         ids=["plain", "topic_alias", "receive_max_1"])
def test_direct_messages_from_id_ts_sync_no_echo(broker, alias, recv_max):
    """alice@phone (MQTT.js, v5) writes 20 messages to bob: bob@laptop
    gets each once with from/id/ts first (the client's own from/id/ts are
    replaced, its other properties kept), ids +1 each; alice@laptop gets
    the sync copy with the same ids; alice@phone gets nothing back.
    topic_alias: alice's MQTT.js sends a Topic Alias instead of the topic
    after the first message, and bob takes the broker's aliases: the same.
    receive_max_1: bob's Receive Maximum is 1, one message in flight."""
    b, url = im_ws_broker(broker)
    n = 20
    t0 = int(time.time() * 1000)
    r = run_js(b, url, "direct", ["alice", "bob"], n=n, alias=alias, recv_max=recv_max)
    if alias:  # the aliases were used (else this case tests nothing new)
        assert r["alias_sent"] >= n - 1 and r["alias_received"] >= n - 1, r
    t1 = int(time.time() * 1000)
    bob = chat(r["bob"])
    assert [x["payload"] for x in bob] == ["m%d" % i for i in range(n)]
    for x in bob:
        assert x["topic"] == "p2p/talk/bob" and x["qos"] == 1
        u = x["up"]
        assert list(u)[:3] == ["from", "id", "ts"], u
        assert u["from"] == "alice@phone", u  # one value, not a list
        assert isinstance(u["id"], str) and isinstance(u["ts"], str), u
        assert u["app"] == "yes", u
        assert t0 - 1000 <= int(u["ts"]) <= t1 + 1000, (t0, u, t1)
    ids = [int(up(x, "id")) for x in bob]
    assert ids == list(range(ids[0], ids[0] + n)), ids
    assert ids[-1] < 2 ** 53
    lap = chat(r["alice_laptop"])
    assert [(x["topic"], x["payload"], int(up(x, "id"))) for x in lap] == \
        [("p2p/talk/bob", "m%d" % i, ids[i]) for i in range(n)]
    assert all(up(x, "from") == "alice@phone" for x in lap)
    assert chat(r["alice_phone"]) == [], "echo to the sending device"


def test_direct_messages_over_wss(broker):
    """The same over wss:// (TLS): stamp, ids, sync, no echo."""
    from opshelp import certs, tls_cfg
    c = certs()
    b, url = im_ws_broker(broker, tls=tls_cfg(c))
    n = 5
    r = run_js(b, url, "direct", ["alice", "bob"], n=n, ca=c["ca_crt"])
    bob = chat(r["bob"])
    assert [x["payload"] for x in bob] == ["m%d" % i for i in range(n)]
    assert all(list(x["up"])[:3] == ["from", "id", "ts"] for x in bob)
    ids = [int(up(x, "id")) for x in bob]
    assert ids == list(range(ids[0], ids[0] + n))
    assert [int(up(x, "id")) for x in chat(r["alice_laptop"])] == ids
    assert chat(r["alice_phone"]) == []


# ---------------------------------------------------------------- (b) dedup

def test_qos1_redelivery_dropped_by_id(broker):
    """bob@laptop (persistent session) loses its PUBACKs for the last 5 of
    10 messages and its connection; at the reconnect (clean=false) the
    broker sends those 5 again (DUP, the same ids) before 5 new ones.
    Every id arrives at most twice, and dropping seen ids leaves every
    message exactly once, in order."""
    b, url = im_ws_broker(broker)
    n, unacked, more = 10, 5, 5
    r = run_js(b, url, "dedup", ["alice", "bob"], n=n, unacked=unacked, more=more)
    raw = r["raw"]
    assert r["session_present"] is True
    assert r["dropped_acks"] == unacked
    ids = [int(up(x, "id")) for x in raw]
    counts = {i: ids.count(i) for i in ids}
    assert max(counts.values()) <= 2, counts
    again = [x for x in raw if x["conn"] == 2 and counts[int(up(x, "id"))] == 2]
    # the redelivered ones: the unacknowledged messages, same ids, DUP set
    assert [x["payload"] for x in again] == ["d%d" % i for i in range(n - unacked, n)], raw
    assert all(x["dup"] for x in again), again
    app = r["app"]
    assert [x["payload"] for x in app] == ["d%d" % i for i in range(n + more)]
    app_ids = [int(up(x, "id")) for x in app]
    assert app_ids == list(range(app_ids[0], app_ids[0] + n + more))
    assert len(raw) == n + more + unacked


def test_redelivery_after_kill9_dropped_by_id(broker):
    """The same across kill -9: bob@laptop acknowledges 5 of 10 messages,
    its connection drops, the broker is killed (-9) and started again on
    its store; at bob's reconnect the unacknowledged ones come again with
    the ids they had (PUBACKs that were not committed yet can make a few
    acknowledged ones come again too: ids tell). New messages get ids above
    every earlier one; the app's dedup by id leaves each message once."""
    from store_helpers import StoreBroker
    cfg = im_config()
    ws_port = free_port()
    cfg["listeners"].append(dict(cfg["listeners"][0], transport="ws", port=ws_port))
    url = "ws://127.0.0.1:%d/mqtt" % ws_port
    sb = StoreBroker(extra=cfg)
    try:
        b = sb.start()
        wait_port(b, ws_port)
        n, acked, more = 10, 5, 5
        r1 = run_js(b, url, "kill_before", ["alice", "bob"], n=n, acked=acked)
        assert [x["payload"] for x in r1["raw"]] == ["k%d" % i for i in range(n)]
        sb.stop(signal.SIGKILL, check=False)
        b = sb.start()
        wait_port(b, ws_port)
        r2 = run_js(b, url, "kill_after", ["alice", "bob"], n=n, acked=acked, more=more)
        assert r2["session_present"] is True
        raw = r1["raw"] + r2["raw"]
        ids = [int(up(x, "id")) for x in raw]
        counts = {i: ids.count(i) for i in ids}
        assert max(counts.values()) <= 2, raw
        first = {x["payload"]: int(up(x, "id")) for x in r1["raw"]}
        again = [x for x in r2["raw"] if x["payload"] in first]
        # every unacknowledged one again, same id, DUP; maybe some acked ones
        assert {x["payload"] for x in again} >= {"k%d" % i for i in range(acked, n)}, raw
        assert all(int(up(x, "id")) == first[x["payload"]] and x["dup"] for x in again), again
        new = [int(up(x, "id")) for x in r2["raw"] if x["payload"] not in first]
        assert len(new) == more and min(new) > max(first.values()), (first, new)
        seen, app = set(), []
        for x in raw:
            if int(up(x, "id")) not in seen:
                seen.add(int(up(x, "id")))
                app.append(x["payload"])
        assert app == ["k%d" % i for i in range(n + more)]
        sb.stop()
    finally:
        sb.cleanup()


# ---------------------------------------------------------------- (c) history

@pytest.mark.parametrize("max_packet", [None, 8192])
def test_new_mqttjs_device_pulls_history_in_pages(broker, clients, max_packet):
    """2,000 messages both ways (Paho on TCP); a never-connected MQTT.js
    device of bob pulls the conversation in pages of 500 with Response
    Topic + Correlation Data: complete, in order, each answer matched to
    its request; the newest page and a `before` page. With a Maximum
    Packet Size of 8 KiB the pages end early (more: true) and the pull is
    still complete."""
    b, url = im_ws_broker(broker)
    a = im(clients, b, "alice", "phone")
    bob = im(clients, b, "bob", "pc")
    n = 2000
    infos = []
    for i in range(n):
        c, t = (a, "p2p/talk/bob") if i % 3 else (bob, "p2p/talk/alice")
        infos.append(c.publish(t, ("h%04d" % i).encode(), qos=1, wait=False))
    for x in infos:
        x.wait_for_publish(30 * SLOW)
    r = run_js(b, url, "history", ["bob"], peer="alice", limit=500, max_packet=max_packet)
    assert sorted(r["payloads"]) == ["h%04d" % i for i in range(n)]
    for who in ("alice@phone", "bob@pc"):
        mine = [p for p, f in zip(r["payloads"], r["from"]) if f == who]
        assert mine == sorted(mine), who
    ids = r["ids"]
    assert ids == sorted(set(ids)) and ids[-1] - ids[0] == n - 1
    counts = [p["count"] for p in r["pages"]]
    if max_packet is None:
        assert counts == [500] * 4
    else:
        assert len(counts) > 4 and max(counts) < 500 and min(counts) > 0, counts
        assert max(p["bytes"] for p in r["pages"]) <= max_packet, r["pages"]
    assert [p["more"] for p in r["pages"]] == [True] * (len(counts) - 1) + [False]
    assert all(p["peer"] == "alice" for p in r["pages"])
    assert r["newest"] == ids[-3:] and r["newest_more"] is True
    assert r["before"] == ids[90:100]
    print("MQTT.js: %d messages in %d pages in %d ms" % (n, len(r["pages"]), r["took_ms"]))


def test_mqttjs_history_pages_end_before_1mib(broker, clients):
    """300 messages of 20 kB: a page of `limit` 500 ends before 1 MiB
    (more: true) and the MQTT.js device still gets them all, in order,
    over WebSocket frames of about a megabyte."""
    b, url = im_ws_broker(broker)
    a = im(clients, b, "alice", "phone")
    n = 300
    infos = [a.publish("p2p/talk/bob", (("%04d" % i) + "x" * 20000).encode(), qos=1, wait=False)
             for i in range(n)]
    for x in infos:
        x.wait_for_publish(30 * SLOW)
    r = run_js(b, url, "history", ["bob"], peer="alice", limit=500)
    assert [p[:4] for p in r["payloads"]] == ["%04d" % i for i in range(n)]
    assert all(len(p) == 20004 for p in r["payloads"])
    pages = r["pages"]
    assert len(pages) > 5 and all(p["count"] < 500 for p in pages), pages
    assert max(p["bytes"] for p in pages) <= 1 << 20, pages
    assert max(p["bytes"] for p in pages) > 900000, pages  # full pages, not tiny ones
    assert [p["more"] for p in pages] == [True] * (len(pages) - 1) + [False]


# ---------------------------------------------------------------- (d) receipts

@pytest.mark.parametrize("qos", [1, 2])
def test_delivery_and_read_receipts_mqttjs(broker, qos):
    """im_receipts delivery on: bob@laptop's (MQTT.js) own PUBACK makes one
    `delivered` receipt on alice's inbox, for both of her devices (the
    sender's included); bob@tablet's PUBACK makes no second one. bob's read
    receipt on p2p/receipt/alice is acknowledged 0 and reaches alice's
    devices as `read`; bob@tablet gets the same receipt as the sync copy
    (on p2p/talk/alice). qos 2: inbox QoS 2, the receipt at MQTT.js's
    PUBREC."""
    b, url = im_ws_broker(broker, listener_extra={"im_receipts": {"delivery": True}},
                          im={"inbox_qos": qos})
    r = run_js(b, url, "receipts", ["alice", "bob"], qos=qos)
    msg = r["msg"]
    assert msg["qos"] == qos
    mid = up(msg, "id")
    assert msg["payload"] == "please read" and up(msg, "from") == "alice@phone"
    assert r["read_puback_rc"] == 0
    for who in ("alice_phone", "alice_laptop"):
        got = r[who]
        if who == "alice_laptop":  # the sync copy of what alice@phone wrote
            assert [x["payload"] for x in got if x["topic"] == "p2p/talk/bob"] == ["please read"]
            got = [x for x in got if x["topic"] != "p2p/talk/bob"]
        assert all(x["topic"] == "p2p/talk/alice" for x in got), got
        delivered = [x for x in got if up(x, "receipt") == "delivered"]
        assert len(delivered) == 1, (who, got)
        d = delivered[0]["up"]
        assert d["msg_id"] == mid and d["from"] in ("bob@laptop", "bob@tablet"), d
        assert "id" not in d, d  # receipts are not messages of the conversation
        body = json.loads(delivered[0]["payload"])
        assert body["receipt"] == "delivered" and str(body["id"]) == mid
        assert body["by"] == d["from"]
        read = [x for x in got if up(x, "receipt") == "read"]
        if who == "alice_phone":
            assert len(read) == 1, got
            assert read[0]["up"]["msg_id"] == mid and read[0]["up"]["from"] == "bob@laptop"
        assert len(got) == len(delivered) + len(read)
    # bob@laptop gets nothing back: only alice's message
    assert [x["payload"] for x in r["bob_laptop"]] == ["please read"]
    tab = r["bob_tablet"]
    assert tab[0]["payload"] == "please read"
    sync = [x for x in tab if x["topic"] == "p2p/talk/alice"]
    assert len(sync) == 1, tab
    u = sync[0]["up"]
    assert (u["receipt"], u["msg_id"], u["from"]) == ("read", mid, "bob@laptop"), u
    body = json.loads(sync[0]["payload"])
    assert (body["receipt"], str(body["id"]), body["by"]) == ("read", mid, "bob@laptop")


@pytest.mark.parametrize("code", [0x80, 0x99])
def test_refusing_puback_makes_no_delivery_receipt(broker, code):
    """bob@laptop's MQTT.js answers alice's message with a PUBACK reason
    code >= 0x80 (it refuses the message, as a PUBREC >= 0x80 does): no
    delivered receipt. The next message, acknowledged 0 by bob@tablet,
    makes one."""
    b, url = im_ws_broker(broker, listener_extra={"im_receipts": {"delivery": True}})
    r = run_js(b, url, "refuse", ["alice", "bob"], code=code)
    assert r["refused"] == 1
    assert [x for x in r["after_refusal"] if up(x, "receipt")] == [], r["after_refusal"]
    rec = [x for x in r["after_accept"] if up(x, "receipt") == "delivered"]
    assert len(rec) == 1 and up(rec[0], "from") == "bob@tablet", r["after_accept"]
    assert [x["payload"] for x in r["tablet"]] == ["accepted"]


def test_push_worker_on_mqttjs(broker):
    """A push worker on MQTT.js (pushsvc@worker1, $share/workers/$events/
    push/#) gets one event per message queued for bob while his only
    device is away, with the id bob's device then gets with the message;
    none once bob is back."""
    b, url = im_ws_broker(broker, im={"push": {"subscribers": ["pushsvc"]}})
    n = 3
    r = run_js(b, url, "push", ["alice", "bob", "pushsvc"], n=n)
    assert r["granted"] == [1]
    ev = r["events"]
    assert all(x["topic"] == "$events/push/bob" and x["qos"] == 1 for x in ev), ev
    ev = [json.loads(x["payload"]) for x in ev]
    assert [(e["user"], e["from"], e["peer"], e["topic"]) for e in ev] == \
        [("bob", "alice@phone", "alice", "p2p/talk/bob")] * n
    assert all("payload" not in e for e in ev)
    assert r["session_present"] is True
    bob = chat(r["bob"])
    assert [x["payload"] for x in bob] == ["push%d" % i for i in range(n)] + ["online"]
    assert [int(up(x, "id")) for x in bob[:n]] == [e["id"] for e in ev]
    assert [str(e["ts"]) for e in ev] == [up(x, "ts") for x in bob[:n]]
    assert r["worker_after"] == [], "an event while bob was online"


# ---------------------------------------------------------------- (e) envelope

def test_envelope_on_mqttjs_v311(broker):
    """A 3.1.1 MQTT.js device on an im_envelope listener: each message is
    one JSON line (from, id, ts), a newline, then the payload byte for byte
    (newlines and binary included); a delivery receipt for what it wrote
    has a head without id."""
    b, url = im_ws_broker(broker, listener_extra={"im_envelope": True,
                                                  "im_receipts": {"delivery": True}})
    r = run_js(b, url, "envelope", ["alice", "bob"], receipt=True)
    dec = r["decoded"]
    # bob@old answered: alice@phone's PUBACK sent bob@old a delivered
    # receipt, in the envelope with from and ts and no id
    rec = dec.pop()
    answer = [x for x in r["alice_phone"] if not up(x, "receipt")]
    got = [x for x in r["alice_phone"] if up(x, "receipt") == "delivered"]
    assert sorted(x["up"]["msg_id"] for x in got) == sorted(str(d["head"]["id"]) for d in dec)
    assert all(x["up"]["from"] == "bob@old" for x in got)
    assert [x["payload"] for x in answer] == ["answer from 3.1.1"]
    assert up(answer[0], "from") == "bob@old"
    assert rec["topic"] == "p2p/talk/bob" and set(rec["head"]) == {"from", "ts"}, rec
    assert rec["head"]["from"] == "alice@phone"
    body = json.loads(base64.b64decode(rec["body_b64"]))
    assert (body["receipt"], str(body["id"]), body["by"]) == \
        ("delivered", up(answer[0], "id"), "alice@phone"), body
    assert [d["body_b64"] for d in dec] == r["sent_b64"]
    ids = [d["head"]["id"] for d in dec]
    assert ids == list(range(ids[0], ids[0] + 3)) and all(isinstance(i, int) for i in ids)
    for d in dec:
        assert d["topic"] == "p2p/talk/bob"
        assert set(d["head"]) == {"from", "id", "ts"} and d["head"]["from"] == "alice@phone"
        assert abs(d["head"]["ts"] - time.time() * 1000) < 60000


# ---------------------------------------------------------------- browser

def test_headless_chromium_im_device(broker, clients):
    """headless Chromium (MQTT.js bundle, tests/browser/im.html) as
    bob@browser: it receives alice's direct message with from/id/ts, then
    asks for a history page over MQTT 5 request/response and gets the
    earlier messages too, matched by its correlation data."""
    from test_ws import chromium_or_skip
    browser = chromium_or_skip()
    b, url = im_ws_broker(broker)
    a = im(clients, b, "alice", "phone")
    for i in range(5):
        a.publish("p2p/talk/bob", b"old%d" % i, qos=1)
    watcher = im(clients, b, "carol", "watch")
    watcher.subscribe("p2p/presence/bob", 1)
    result = {}
    th = threading.Thread(target=lambda: result.update(text=browser.run(
        url, 5, timeout=40 * SLOW, page="im.html",
        query={"user": "bob", "device": "browser", "token": token("bob", ttl=600),
               "peer": "alice"})), daemon=True)
    th.start()
    deadline = time.monotonic() + 30 * SLOW
    online = False
    while not online and time.monotonic() < deadline and th.is_alive():
        for x in drain(watcher, 0.1):
            if "browser" in json.loads(x.payload).get("devices", []):
                online = True
    assert online, ("bob@browser never came online", result)
    a.publish("p2p/talk/bob", b"hello browser", qos=1)
    th.join(60 * SLOW)
    assert not th.is_alive(), "browser driver still running"
    text = result.get("text", "")
    assert text.startswith("ok "), (text, b.stderr_text()[-2000:])
    r = json.loads(text[3:])
    m = r["message"]
    assert m["topic"] == "p2p/talk/bob" and m["payload"] == "hello browser"
    assert list(m["up"])[:3] == ["from", "id", "ts"] and m["up"]["from"] == "alice@phone"
    h = r["history"]
    assert r["corr"] == r["sent_corr"]
    assert [x["payload"] for x in h["messages"]] == ["old%d" % i for i in range(5)] + \
        ["hello browser"]
    assert h["messages"][-1]["id"] == int(m["up"]["id"])
    assert h["more"] is False
