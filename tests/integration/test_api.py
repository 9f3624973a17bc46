"""The backend HTTP API (docs/api.md, issue 13 item 5): every endpoint
against the real broker with Paho clients connected at the same time;
tokens, bad JSON, oversize bodies, unknown users, paths and methods; a
ban and a revocation taking effect on a connected device at once; the
device uplink stamped, synced, logged and answered after the commit.
"""
import base64
import http.client
import json
import socket
import time

import pytest

import mqttraw as m
from conftest import free_port, SLOW
from imhelp import im, im_config, im_raw, mint, from_props, drain

pytestmark = pytest.mark.imqtt_only

API_TOKEN = "api-token-0123456789abcdef"
OTHER_TOKEN = "other-token-0123456789abcdef"
ADMIN_ACTION = 0x98
BANNED = 0x8A
BAD_AUTH = 0x86


def api_broker(broker, max_body=None, **kw):
    hp = free_port()
    api = {"tokens": [API_TOKEN, OTHER_TOKEN]}
    if max_body is not None:
        api["max_body"] = max_body
    b = broker(im_config(http={"port": hp, "api": api}, **kw))
    b.http_port = hp
    return b


def call(b, method, path, body=None, token=API_TOKEN, raw=None, headers=None):
    """(status, parsed JSON or None, response headers)."""
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10 * SLOW)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    text = r.read()
    c.close()
    js = json.loads(text) if text and r.getheader("Content-Type", "").startswith(
        "application/json") else None
    return r.status, js, dict(r.getheaders())


def err(js):
    assert set(js) == {"error"}, js
    assert set(js["error"]) == {"code", "message"}, js
    return js["error"]["code"]


def ups(msg):
    p = getattr(msg, "properties", None)
    return dict(getattr(p, "UserProperty", None) or []) if p is not None else {}


def wait_disconnect(c, reason, timeout=3.0):
    """A raw v5 client gets DISCONNECT `reason`, then the close."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        p = c.recv_or_closed(max(0.01, deadline - time.monotonic()))
        assert p is not None, "closed without DISCONNECT"
        if p.type == m.DISCONNECT:
            assert p.reason == reason, "DISCONNECT 0x%02x" % p.reason
            c.expect_closed()
            return
    raise AssertionError("no DISCONNECT within %.0fs" % timeout)


def still_open(c):
    """Nothing arrives and the connection stays (raw client)."""
    with pytest.raises(TimeoutError):
        c.recv_or_closed(0.3)


# ---------------------------------------------------------------- tokens, errors

def test_tokens_paths_methods(broker):
    b = api_broker(broker)
    st, js, h = call(b, "GET", "/api/v1/bans", token=None)
    assert st == 401 and err(js) == "unauthorized"
    assert h.get("WWW-Authenticate") == "Bearer"
    st, js, _ = call(b, "GET", "/api/v1/bans", token="wrong-token-0123456789")
    assert st == 403 and err(js) == "forbidden"
    st, js, _ = call(b, "GET", "/api/v1/bans", headers={"Authorization": "Basic eDp5"},
                     token=None)
    assert st == 401
    for t in (API_TOKEN, OTHER_TOKEN):
        st, js, _ = call(b, "GET", "/api/v1/bans", token=t)
        assert st == 200 and js == {"users": [], "devices": []}, js
    st, js, _ = call(b, "GET", "/api/v1/nothing")
    assert st == 404 and err(js) == "not_found"
    st, js, _ = call(b, "GET", "/api/v2/bans")
    assert st == 404 and err(js) == "not_found"
    st, js, h = call(b, "DELETE", "/api/v1/publish")
    assert st == 405 and err(js) == "method_not_allowed" and h["Allow"] == "POST"
    st, js, _ = call(b, "GET", "/api/v1/users/bad%20name/devices")
    assert st == 400 and err(js) == "bad_request"
    # /metrics and /healthz are unchanged beside the API
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=5)
    c.request("GET", "/healthz")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"ok\n"


def test_bad_json_and_oversize(broker):
    b = api_broker(broker, max_body=1024)
    st, js, _ = call(b, "POST", "/api/v1/publish", raw=b"{not json",
                     headers={"Content-Type": "application/json"})
    assert st == 400 and err(js) == "bad_request"
    assert "JSON" in js["error"]["message"]
    st, js, _ = call(b, "POST", "/api/v1/publish", raw=b"[1,2]")
    assert st == 400
    st, js, _ = call(b, "POST", "/api/v1/publish", body={"user": "bob", "payload": "x",
                                                         "colour": "red"})
    assert st == 400 and js["error"]["message"] == "unknown key"
    st, js, _ = call(b, "POST", "/api/v1/publish", body={"user": "bob"})
    assert st == 400 and "payload" in js["error"]["message"]
    st, js, _ = call(b, "POST", "/api/v1/publish", body={"user": "bob", "group": "g",
                                                         "payload": "x"})
    assert st == 400
    st, js, _ = call(b, "POST", "/api/v1/publish", body={"topic": "a/+/b", "payload": "x"})
    assert st == 400
    st, js, _ = call(b, "POST", "/api/v1/publish", body={"topic": "$SYS/x", "payload": "x"})
    assert st == 400
    st, js, _ = call(b, "POST", "/api/v1/publish", body={"user": "bob", "payload": "x",
                                                         "qos": 3})
    assert st == 400
    st, js, _ = call(b, "POST", "/api/v1/publish",
                     body={"user": "bob", "payload_b64": "!!!"})
    assert st == 400
    st, js, _ = call(b, "POST", "/api/v1/publish", raw=b"x=1",
                     headers={"Content-Type": "text/plain"})
    assert st == 415
    # past max_body: 413, announced by Content-Length or streamed chunked
    st, js, _ = call(b, "POST", "/api/v1/publish",
                     body={"user": "bob", "payload": "x" * 2000})
    assert st == 413 and err(js) == "too_large"
    s = socket.create_connection(("127.0.0.1", b.http_port))
    s.sendall(b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
              + API_TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(3):
        s.sendall(b"200\r\n" + b"a" * 0x200 + b"\r\n")
    got = s.recv(4096)
    assert got.startswith(b"HTTP/1.1 413"), got
    s.close()


# ---------------------------------------------------------------- publish

def test_publish_as_system_user_group_topic(broker, clients):
    b = api_broker(broker)
    bob = im(clients, b, "bob", "pc", groups=["team"])
    assert bob.subscribe("g/talk/team", 1) == [1]
    plain = im(clients, b, "carol", "pc", tok=mint("carol", acl={"sub": ["news/#"]}))
    assert plain.subscribe("news/#", 1) == [1]

    st, js, _ = call(b, "POST", "/api/v1/publish", body={"user": "bob", "payload": "hi"})
    assert st == 200, js
    assert js["topic"] == "p2p/talk/bob" and js["from"] == "system" and js["id"] > 0
    assert js["delivered"] == 1
    x = bob.get()
    assert x.topic == "p2p/talk/bob" and x.payload == b"hi" and x.qos == 1
    u = ups(x)
    assert u["from"] == "system" and int(u["id"]) == js["id"] and int(u["ts"]) == js["ts"]

    st, js, _ = call(b, "POST", "/api/v1/publish",
                     body={"group": "team", "service": "billing", "qos": 0,
                           "payload_b64": base64.b64encode(b"\x00\xff").decode()})
    assert st == 200 and js["from"] == "billing" and js["qos"] == 0
    x = bob.get()
    assert x.topic == "g/talk/team" and x.payload == b"\x00\xff"
    assert from_props(x) == ["billing"]

    st, js, _ = call(b, "POST", "/api/v1/publish",
                     body={"topic": "news/today", "payload": "up", "retain": True})
    assert st == 200 and "id" not in js
    x = plain.get()
    assert x.topic == "news/today" and x.payload == b"up"
    late = im(clients, b, "carol", "tab", tok=mint("carol", acl={"sub": ["news/#"]}))
    late.subscribe("news/#", 1)
    x = late.get()
    assert x.payload == b"up" and x.retain

    # an unknown user: nobody to deliver to, still accepted (and logged)
    st, js, _ = call(b, "POST", "/api/v1/publish", body={"user": "nobody", "payload": "x"})
    assert st == 200 and js["delivered"] == 0

    # history of bob with "system": the service's messages are a conversation
    st, js, _ = call(b, "GET", "/api/v1/users/bob/history?peer=system")
    assert st == 200, js
    assert [e["payload"] for e in js["messages"]] == ["hi"]
    assert js["messages"][0]["from"] == "system"


# ---------------------------------------------------------------- devices, presence

def test_devices_presence_and_kick(broker, clients):
    b = api_broker(broker)
    im(clients, b, "alice", "phone", persistent=True).disconnect()
    time.sleep(0.2)
    # queue two messages for the offline phone
    for i in range(2):
        assert call(b, "POST", "/api/v1/publish", body={"user": "alice",
                                                        "payload": str(i)})[0] == 200
    lap, ack = im_raw(b, "alice@laptop", mint("alice"), version=5)
    with lap:
        assert ack.reason == 0
        st, js, _ = call(b, "GET", "/api/v1/users/alice/devices")
        assert st == 200 and js["user"] == "alice", js
        d = {x["device"]: x for x in js["devices"]}
        assert set(d) == {"phone", "laptop"}
        assert d["laptop"]["online"] and not d["phone"]["online"]
        assert d["phone"]["queued"] == 2 and d["phone"]["persistent"]
        assert d["phone"]["last_seen"] > 0 and d["laptop"]["client_id"] == "alice@laptop"

        st, js, _ = call(b, "GET", "/api/v1/users/alice/presence")
        assert st == 200 and js["online"] and js["devices"] == ["laptop"]

        st, js, _ = call(b, "GET", "/api/v1/users/nobody/devices")
        assert st == 404 and err(js) == "not_found"
        st, js, _ = call(b, "GET", "/api/v1/users/nobody/presence")
        assert st == 200 and not js["online"] and js["last_seen"] is None

        st, js, _ = call(b, "POST", "/api/v1/users/alice/devices/tablet/kick")
        assert st == 404
        st, js, _ = call(b, "POST", "/api/v1/users/alice/devices/laptop/kick")
        assert st == 200 and js == {"kicked": 1}
        wait_disconnect(lap, ADMIN_ACTION)
    st, js, _ = call(b, "GET", "/api/v1/users/alice/presence")
    assert not js["online"] and js["last_seen"] > 0
    # a kick is not a ban: the device comes back
    c, ack = im_raw(b, "alice@laptop", mint("alice"), version=5)
    with c:
        assert ack.reason == 0
        st, js, _ = call(b, "POST", "/api/v1/users/alice/kick")
        assert st == 200 and js == {"kicked": 1}
        wait_disconnect(c, ADMIN_ACTION)


# ---------------------------------------------------------------- bans, revocations

def test_ban_user_and_device(broker, clients):
    b = api_broker(broker)
    other = im(clients, b, "bob", "pc")
    phone, ack = im_raw(b, "alice@phone", mint("alice"), version=5)
    with phone:
        assert ack.reason == 0
        st, js, _ = call(b, "PUT", "/api/v1/users/alice/ban", body={"reason": "spam"})
        assert st == 200 and js == {"kicked": 1, "banned": True, "new": True}, js
        wait_disconnect(phone, ADMIN_ACTION)
    c, ack = im_raw(b, "alice@phone", mint("alice"), version=5)
    assert ack.reason == BANNED
    c, ack = im_raw(b, "alice@old", mint("alice"), version=4)
    assert ack.reason == 5  # 3.1.1: not authorized
    st, js, _ = call(b, "GET", "/api/v1/bans")
    assert js["users"][0]["user"] == "alice" and js["users"][0]["reason"] == "spam"
    assert call(b, "DELETE", "/api/v1/users/alice/ban")[0] == 200
    assert call(b, "DELETE", "/api/v1/users/alice/ban")[0] == 404
    c, ack = im_raw(b, "alice@phone", mint("alice"), version=5)
    with c:
        assert ack.reason == 0
        # a device ban takes that device only
        lap, ack = im_raw(b, "alice@laptop", mint("alice"), version=5)
        with lap:
            st, js, _ = call(b, "PUT", "/api/v1/users/alice/devices/phone/ban")
            assert st == 200 and js["kicked"] == 1
            wait_disconnect(c, ADMIN_ACTION)
            still_open(lap)
            st, js, _ = call(b, "GET", "/api/v1/users/alice/presence")
            assert js["devices"] == ["laptop"]
    c, ack = im_raw(b, "alice@phone", mint("alice"), version=5)
    assert ack.reason == BANNED
    assert not other.disconnected.is_set()


def test_revoke_by_iat_and_jti(broker, clients):
    b = api_broker(broker)
    now = int(time.time())
    old, ack = im_raw(b, "alice@phone", mint("alice", iat=now - 100), version=5)
    keep, ack2 = im_raw(b, "bob@pc", mint("bob", iat=now - 100), version=5)
    with old, keep:
        assert ack.reason == 0 and ack2.reason == 0
        st, js, _ = call(b, "POST", "/api/v1/revocations",
                         body={"user": "alice", "issued_before": now - 10})
        assert st == 200 and js == {"kicked": 1}, js
        wait_disconnect(old, ADMIN_ACTION)
        still_open(keep)  # bob's token is not concerned
    c, ack = im_raw(b, "alice@phone", mint("alice", iat=now - 100), version=5)
    assert ack.reason == BAD_AUTH
    c, ack = im_raw(b, "alice@phone", mint("alice", iat=None), version=5)
    assert ack.reason == BAD_AUTH  # no iat: revoked by any time revocation
    c, ack = im_raw(b, "alice@phone", mint("alice"), version=5)
    with c:
        assert ack.reason == 0  # a fresh token works
    # by jti, for any user
    j, ack = im_raw(b, "bob@pc2", mint("bob", extra={"jti": "t-42"}), version=5)
    with j:
        assert ack.reason == 0
        st, js, _ = call(b, "POST", "/api/v1/revocations", body={"jti": "t-42"})
        assert st == 200 and js == {"kicked": 1}
        wait_disconnect(j, ADMIN_ACTION)
    c, ack = im_raw(b, "bob@pc2", mint("bob", extra={"jti": "t-42"}), version=5)
    assert ack.reason == BAD_AUTH
    st, js, _ = call(b, "GET", "/api/v1/revocations")
    assert st == 200
    assert js["issued_before"] is None
    assert js["users"] == [{"user": "alice", "issued_before": now - 10}]
    assert js["jti"] == [{"jti": "t-42", "user": None}]
    st, js, _ = call(b, "POST", "/api/v1/revocations", body={"user": "alice"})
    assert st == 400


# ---------------------------------------------------------------- history

def test_history(broker, clients):
    b = api_broker(broker)
    alice = im(clients, b, "alice", "phone")
    bob = im(clients, b, "bob", "pc")
    for i in range(5):
        alice.publish("p2p/talk/bob", ("m%d" % i).encode(), qos=1)
    assert len(drain(bob)) == 5
    st, js, _ = call(b, "GET", "/api/v1/users/bob/history?peer=alice&limit=2")
    assert st == 200, js
    assert [e["payload"] for e in js["messages"]] == ["m3", "m4"] and js["more"]
    first = js["messages"][0]["id"]
    st, js, _ = call(b, "GET", "/api/v1/users/alice/history?peer=bob&before=%d" % first)
    assert [e["payload"] for e in js["messages"]] == ["m0", "m1", "m2"]
    assert not js["more"] and js["peer"] == "bob"
    st, js, _ = call(b, "GET", "/api/v1/users/alice/history?peer=bob&after=0&limit=1")
    assert [e["payload"] for e in js["messages"]] == ["m0"]
    for q in ("", "?peer=bob&group=g", "?peer=bob&after=1&before=3", "?peer=bob&x=1",
              "?peer=bob&limit=abc", "?peer=b%2"):
        st, js, _ = call(b, "GET", "/api/v1/users/alice/history" + q)
        assert st == 400 and err(js) == "bad_request", (q, js)


def test_history_unavailable(broker):
    b = api_broker(broker, im={"history": {"enabled": False}})
    st, js, _ = call(b, "GET", "/api/v1/users/alice/history?peer=bob")
    assert st == 503 and err(js) == "unavailable"


# ---------------------------------------------------------------- uplink

def test_device_uplink(broker, clients):
    """alice@phone posts over HTTP with its own JWT: bob gets it stamped
    from alice@phone with id and ts, alice's other device gets the sync
    copy, the phone's own MQTT session gets no echo, the history has it,
    and the answer came after the store commit."""
    b = api_broker(broker)
    bob = im(clients, b, "bob", "pc")
    lap = im(clients, b, "alice", "laptop")
    phone = im(clients, b, "alice", "phone")
    tok = mint("alice")
    st, js, _ = call(b, "POST", "/api/v1/users/alice/devices/phone/messages",
                     body={"user": "bob", "payload": "over http"}, token=tok)
    assert st == 200, js
    assert js["from"] == "alice@phone" and js["topic"] == "p2p/talk/bob" and js["id"] > 0
    assert js["delivered"] == 2  # bob's pc and the sync copy to the laptop
    x = bob.get()
    assert x.payload == b"over http" and from_props(x) == ["alice@phone"]
    assert int(ups(x)["id"]) == js["id"] and int(ups(x)["ts"]) == js["ts"]
    y = lap.get()
    assert y.topic == "p2p/talk/bob" and int(ups(y)["id"]) == js["id"]
    assert drain(phone) == []
    # logged: the answer was sent after the commit that holds it
    st, h, _ = call(b, "GET", "/api/v1/users/bob/history?peer=alice")
    assert [e["id"] for e in h["messages"]] == [js["id"]]
    assert h["messages"][0]["from"] == "alice@phone"
    # a group the token does not list: refused; one it lists: delivered
    st, js, _ = call(b, "POST", "/api/v1/users/alice/devices/phone/messages",
                     body={"group": "team", "payload": "x"}, token=tok)
    assert st == 403 and err(js) == "not_authorized"
    # bad tokens: missing, another user's, an API token, expired
    for t, want in ((None, 401), (mint("bob"), 403), (API_TOKEN, 403),
                    (mint("alice", exp=int(time.time()) - 100), 403)):
        st, js, _ = call(b, "POST", "/api/v1/users/alice/devices/phone/messages",
                         body={"user": "bob", "payload": "x"}, token=t)
        assert st == want, (t, st, js)
    # a banned device may not post either
    assert call(b, "PUT", "/api/v1/users/alice/devices/phone/ban")[0] == 200
    st, js, _ = call(b, "POST", "/api/v1/users/alice/devices/phone/messages",
                     body={"user": "bob", "payload": "x"}, token=tok)
    assert st == 403 and err(js) == "banned"
    assert drain(bob) == []


def test_uplink_answered_after_commit_survives_kill9(tmp_path):
    """Every uplink answered 200 is in the history after a kill -9 right
    after the last answer: the answer waited for the store commit."""
    import signal
    from store_helpers import StoreBroker
    hp = free_port()
    sb = StoreBroker(extra=im_config(http={"port": hp, "api": {"tokens": [API_TOKEN]}}))
    try:
        b = sb.start()
        b.http_port = hp
        tok = mint("alice", ttl=600)
        ids = []
        for i in range(20):
            st, js, _ = call(b, "POST", "/api/v1/users/alice/devices/phone/messages",
                             body={"user": "bob", "payload": "m%d" % i}, token=tok)
            assert st == 200, js
            ids.append(js["id"])
        sb.stop(signal.SIGKILL, check=False)
        b = sb.start()
        b.http_port = hp
        st, js, _ = call(b, "GET", "/api/v1/users/bob/history?peer=alice&after=0")
        assert st == 200, js
        assert [e["id"] for e in js["messages"]] == ids
        assert [e["payload"] for e in js["messages"]] == ["m%d" % i for i in range(20)]
        assert all(e["from"] == "alice@phone" for e in js["messages"])
    finally:
        sb.cleanup()


def test_tokens_reload_on_sighup(broker):
    """SIGHUP replaces http.api.tokens: the dropped ones are refused at
    once, the new one accepted."""
    import os
    import signal
    b = api_broker(broker)
    assert call(b, "GET", "/api/v1/bans", token=OTHER_TOKEN)[0] == 200
    new = "fresh-token-0123456789abcdef"
    cfg = dict(b.config)
    cfg["http"] = {"port": b.http_port, "api": {"tokens": [new]}}
    cfg.setdefault("store", {"dir": os.path.join(b.tmpdir, "data")})
    path = os.path.join(b.tmpdir, "imqtt.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    n = b.stderr_text().count("configuration reloaded")
    os.kill(b.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5 * SLOW
    while b.stderr_text().count("configuration reloaded") == n:
        assert time.monotonic() < deadline, b.stderr_text()[-2000:]
        time.sleep(0.02)
    assert call(b, "GET", "/api/v1/bans", token=OTHER_TOKEN)[0] == 403
    assert call(b, "GET", "/api/v1/bans", token=API_TOKEN)[0] == 403
    assert call(b, "GET", "/api/v1/bans", token=new)[0] == 200


def test_uplink_failure_limit(broker):
    """With auth.failure_limit_jwt, bad uplink tokens count against the
    HTTP client's address like bad CONNECT tokens: past the burst, 429."""
    hp = free_port()
    cfg = im_config(http={"port": hp, "api": {"tokens": [API_TOKEN]}})
    cfg["auth"].update({"failure_limit_jwt": True, "failure_burst": 2, "failure_rate": 1})
    b = broker(cfg)
    b.http_port = hp
    path = "/api/v1/users/alice/devices/phone/messages"
    body = {"user": "bob", "payload": "x"}
    assert call(b, "POST", path, body=body, token=mint("alice"))[0] == 200
    bad = mint("alice", secret="another-secret-0123456789abcdefghijklmn")
    assert [call(b, "POST", path, body=body, token=bad)[0] for _ in range(2)] == [403, 403]
    st, js, _ = call(b, "POST", path, body=body, token=bad)
    assert st == 429 and err(js) == "too_many_failures"
    st, js, _ = call(b, "POST", path, body=body, token=mint("alice"))
    assert st == 429  # the address has no attempts left, good token or not


def test_expect_100_continue(broker, clients):
    """A client that waits for "100 Continue" before its body (curl does
    past 1 KiB) gets it at once, then the answer."""
    b = api_broker(broker)
    bob = im(clients, b, "bob", "pc")
    body = json.dumps({"user": "bob", "payload": "y" * 2000}).encode()
    s = socket.create_connection(("127.0.0.1", b.http_port), timeout=5 * SLOW)
    s.sendall(b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
              + API_TOKEN.encode() + b"\r\nContent-Type: application/json\r\n"
              b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert s.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(body)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(4096)
    assert got.startswith(b"HTTP/1.1 200 OK"), got
    s.close()
    assert bob.get().payload == b"y" * 2000


def test_clients_that_leave_before_the_answer(broker, clients):
    """Requests whose client closes before the answer (one waiting for its
    commit among them) leave nothing behind: the messages are delivered,
    later requests are answered, the broker stops cleanly (the fixture
    checks the exit code and the sanitizer reports)."""
    b = api_broker(broker)
    bob = im(clients, b, "bob", "pc")
    tok = mint("alice", ttl=600)
    for i in range(30):
        body = json.dumps({"user": "bob", "payload": "gone%d" % i}).encode()
        path = ("/api/v1/users/alice/devices/phone/messages" if i % 2
                else "/api/v1/publish")
        t = tok if i % 2 else API_TOKEN
        s = socket.create_connection(("127.0.0.1", b.http_port))
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (path.encode(), t.encode(),
                                                      len(body), body))
        s.close()
    got = sorted(x.payload for x in drain(bob, 1.0))
    assert got == sorted(b"gone%d" % i for i in range(30))
    assert call(b, "GET", "/api/v1/users/bob/presence")[0] == 200


def test_api_requests_counted_in_metrics(broker):
    import promparse
    b = api_broker(broker)
    assert call(b, "GET", "/api/v1/bans")[0] == 200
    assert call(b, "GET", "/api/v1/bans", token=None)[0] == 401
    assert call(b, "GET", "/api/v1/nothing")[0] == 404
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=5)
    c.request("GET", "/metrics")
    fams = promparse.parse(c.getresponse().read().decode())
    got = {lab["cause"]: val for n, lab, val in fams["imqtt_api_requests_total"]["samples"]}
    assert got == {"ok": 1, "refused": 2, "failed": 0}, got


def test_uplink_message_rate(broker):
    """limits.message_rate binds a device's uplinks as it binds its MQTT
    publishes: per user@device, 429 past the burst."""
    hp = free_port()
    b = broker(im_config(http={"port": hp, "api": {"tokens": [API_TOKEN]}},
                         limits={"message_rate": 1, "message_burst": 2}))
    b.http_port = hp
    tok = mint("alice")
    body = {"user": "bob", "payload": "x"}
    path = "/api/v1/users/alice/devices/%s/messages"
    got = [call(b, "POST", path % "phone", body=body, token=tok)[0] for _ in range(3)]
    assert got == [200, 200, 429], got
    st, js, _ = call(b, "POST", path % "phone", body=body, token=tok)
    assert st == 429 and err(js) == "rate_limited"
    assert call(b, "POST", path % "laptop", body=body, token=tok)[0] == 200
    # the service API is the backend's: not limited
    assert [call(b, "POST", "/api/v1/publish", body=body)[0] for _ in range(4)] == [200] * 4
