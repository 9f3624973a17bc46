"""IM message identity and history (issue 13 items 1 and 2, docs/im.md
"Message identity", "Envelope", "History"): broker ids and timestamps next
to `from`, the 3.1.1 envelope, history pages over MQTT, access checks, ids
and history across kill -9.
"""
import json
import signal
import time

import pytest

from conftest import props, PacketTypes, SLOW
from imhelp import im, im_config, mint, from_props, drain

pytestmark = pytest.mark.imqtt_only


def ups(msg):
    p = getattr(msg, "properties", None)
    return dict(getattr(p, "UserProperty", None) or []) if p is not None else {}


def get_on(c, prefix, timeout=5.0):
    """The next message whose topic starts with prefix (others are kept)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "nothing on %s within %.0fs" % (prefix, timeout)
        x = c.messages.get(timeout=left)
        if x.topic.startswith(prefix):
            return x


def history(c, corr=None, **req):
    """One history request from Paho client c; returns (reply dict, msg)."""
    kw = {}
    if c.version == 5:
        p = props(PacketTypes.PUBLISH, ResponseTopic="$im/history/reply/me")
        if corr is not None:
            p.CorrelationData = corr
        kw["properties"] = p
    c.publish("$im/history", json.dumps(req).encode(), qos=1, **kw)
    x = get_on(c, "$im/history/reply")
    return json.loads(x.payload), x


def pull_all(c, page=500, **who):
    """Every message of a conversation, page by page after id 0."""
    out, after, pages = [], 0, 0
    while True:
        r, _ = history(c, after=after, limit=page, **who)
        assert "error" not in r, r
        out += r["messages"]
        pages += 1
        if not r["more"]:
            return out, pages
        after = r["messages"][-1]["id"]


@pytest.fixture
def store_broker():
    from store_helpers import StoreBroker
    made = []

    def make(config):
        sb = StoreBroker(extra=config)
        made.append(sb)
        return sb
    yield make
    for sb in made:
        sb.cleanup()


# ---------------------------------------------------------------- identity

def test_ids_and_ts_next_to_from(broker, clients):
    """v5 receivers get from, id, ts: ids increase by one per conversation
    (both directions share it), the sync copy carries the same id, a
    client-supplied id/ts is replaced, groups have their own sequence."""
    b = broker(im_config())
    bob = im(clients, b, "bob", "pc", groups=["team"])
    bob.subscribe("g/talk/team", qos=1)
    lap = im(clients, b, "alice", "laptop")
    a = im(clients, b, "alice", "phone", groups=["team"])
    t0 = int(time.time() * 1000)
    a.publish("p2p/talk/bob", b"1", qos=1, properties=props(
        PacketTypes.PUBLISH, UserProperty=[("id", "7"), ("ts", "1")]))
    bob.publish("p2p/talk/alice", b"2", qos=1)
    a.publish("p2p/talk/bob", b"3", qos=0)
    a.publish("g/talk/team", b"g1", qos=1)
    got = drain(bob, 0.5)
    dm = [x for x in got if x.topic == "p2p/talk/bob"]
    g = [x for x in got if x.topic == "g/talk/team"]
    assert [x.payload for x in dm] == [b"1", b"3"]
    ids = [int(ups(x)["id"]) for x in dm]
    back = [x for x in drain(a, 0.3) if x.topic == "p2p/talk/alice"]
    assert len(back) == 1
    assert ids[0] + 1 == int(ups(back[0])["id"]) and ids[1] == ids[0] + 2, (ids, ups(back[0]))
    for x in dm:
        u = x.properties.UserProperty
        assert [k for k, v in u][:3] == ["from", "id", "ts"], u
        assert [v for k, v in u if k == "id"] == [ups(x)["id"]]  # one id only
        assert t0 - 1000 <= int(ups(x)["ts"]) <= int(time.time() * 1000) + 1000
    sync = [x for x in drain(lap, 0.3) if x.topic == "p2p/talk/bob"]
    assert [int(ups(x)["id"]) for x in sync] == ids
    assert len(g) == 1 and "id" in ups(g[0]) and from_props(g[0]) == ["alice@phone"]


@pytest.mark.parametrize("how", ["listener", "claim"])
def test_envelope_for_v311(broker, clients, how):
    """A 3.1.1 device that opted in (listener im_envelope, or the token's
    envelope claim) gets one JSON header line then the payload unchanged;
    one that did not gets the bare payload."""
    extra = {"im_envelope": True} if how == "listener" else None
    b = broker(im_config(listener_extra=extra))
    tok = mint("bob", extra={"envelope": True}) if how == "claim" else None
    env = im(clients, b, "bob", "old", version=4, tok=tok)
    a = im(clients, b, "alice", "phone")
    payload = bytes(range(256))
    a.publish("p2p/talk/bob", payload, qos=1)
    x = env.get()
    head, _, body = x.payload.partition(b"\n")
    h = json.loads(head)
    assert body == payload
    assert h["from"] == "alice@phone" and isinstance(h["id"], int) and isinstance(h["ts"], int)
    if how == "claim":
        plain = im(clients, b, "bob", "plain", version=4)
        a.publish("p2p/talk/bob", b"bare", qos=1)
        assert plain.get().payload == b"bare"


# ---------------------------------------------------------------- history

def test_new_device_pulls_10000_messages_in_pages(broker, clients):
    """A device that was never connected pulls a 10,000-message
    conversation (both directions) in pages, complete and in order; a
    3.1.1 device does the same on its fixed reply topic with a req id."""
    b = broker(im_config())
    a = im(clients, b, "alice", "phone")
    bob = im(clients, b, "bob", "pc")
    n = 10000
    infos = []
    for i in range(n):
        c, t = (a, "p2p/talk/bob") if i % 3 else (bob, "p2p/talk/alice")
        infos.append(c.publish(t, ("m%05d" % i).encode(), qos=1, wait=False))
    for x in infos:
        x.wait_for_publish(30 * SLOW)
    new = im(clients, b, "bob", "tablet")
    t0 = time.monotonic()
    msgs, pages = pull_all(new, peer="alice")
    took = time.monotonic() - t0
    # two senders at once: complete, and each sender's order kept
    assert sorted(m["payload"] for m in msgs) == ["m%05d" % i for i in range(n)]
    for who in ("alice@phone", "bob@pc"):
        mine = [m["payload"] for m in msgs if m["from"] == who]
        assert mine == sorted(mine), who
    ids = [m["id"] for m in msgs]
    assert ids == sorted(set(ids)) and ids[-1] - ids[0] == n - 1
    assert pages == n // 500
    assert {m["from"] for m in msgs} == {"alice@phone", "bob@pc"}
    print("10,000 messages in %d pages in %.2fs" % (pages, took))
    # before: the page just before an id, in ascending order
    r, _ = history(new, peer="alice", before=ids[100], limit=10)
    assert [m["id"] for m in r["messages"]] == ids[90:100] and r["more"]
    r, _ = history(new, peer="alice", limit=3)  # the newest page
    assert [m["id"] for m in r["messages"]] == ids[-3:] and r["more"]
    old = im(clients, b, "alice", "old", version=4)
    r, x = history(old, peer="bob", after=ids[-5], req={"n": 1})
    assert x.topic == "$im/history/reply"
    assert r["req"] == {"n": 1} and [m["id"] for m in r["messages"]] == ids[-4:]
    assert r["more"] is False


def test_history_v5_correlation_and_binary(broker, clients):
    """v5: the answer comes on the Response Topic with the Correlation
    Data; a payload that is not UTF-8 comes back as payload_b64."""
    b = broker(im_config())
    a = im(clients, b, "alice", "phone")
    a.publish("p2p/talk/bob", b"\xff\x00bin", qos=1)
    r, x = history(a, corr=b"c-42", peer="bob")
    assert x.topic == "$im/history/reply/me"
    assert x.properties.CorrelationData == b"c-42"
    import base64
    assert base64.b64decode(r["messages"][0]["payload_b64"]) == b"\xff\x00bin"


def test_history_access_refused(broker, clients):
    """Only the user's own conversations and the groups of the token:
    another pair's messages are not reachable, a group not in the token is
    refused, bad requests get an error reply, nothing is routed."""
    b = broker(im_config())
    a = im(clients, b, "alice", "phone", groups=["team"])
    a.publish("p2p/talk/bob", b"secret", qos=1)
    a.publish("g/talk/team", b"team msg", qos=1)
    carol = im(clients, b, "carol", "pc")
    spy = im(clients, b, "carol", "spy")
    r, _ = history(carol, peer="bob")
    assert r["messages"] == [], r  # carol-bob, not alice-bob
    r, _ = history(carol, peer="alice")
    assert r["messages"] == []
    r, _ = history(carol, group="team")
    assert r["error"] == "not_authorized" and "messages" not in r
    for bad in ({"peer": "a/b"}, {"peer": "bob", "group": "team"}, {"peer": "bob", "x": 1},
                {"peer": "bob", "after": -1}, {"peer": "bob", "limit": 0}, {}):
        r, _ = history(carol, **bad)
        assert r["error"] == "bad_request", (bad, r)
    carol.publish("$im/history", b"not json", qos=1)
    assert json.loads(get_on(carol, "$im/history/reply").payload)["error"] == "bad_request"
    r, _ = history(a, group="team")
    assert [m["payload"] for m in r["messages"]] == ["team msg"]
    assert [x for x in drain(spy, 0.3) if x.topic.startswith("$im")] == []


def test_ids_and_history_survive_kill9(store_broker, clients):
    """ids come from the durable log: after kill -9 the broker continues
    above every id it handed out, and the acknowledged messages are all in
    history."""
    sb = store_broker(im_config())
    b = sb.start()
    a = im(clients, b, "alice", "phone")
    bob = im(clients, b, "bob", "pc")
    for i in range(50):
        a.publish("p2p/talk/bob", b"before%d" % i, qos=1)
    before = [int(ups(x)["id"]) for x in drain(bob, 0.5)]
    assert len(before) == 50
    a.stop()
    bob.stop()
    sb.stop(signal.SIGKILL, check=False)
    b = sb.start()
    a = im(clients, b, "alice", "phone")
    bob = im(clients, b, "bob", "pc")
    for i in range(50):
        a.publish("p2p/talk/bob", b"after%d" % i, qos=1)
    after = [int(ups(x)["id"]) for x in drain(bob, 0.5)]
    assert len(after) == 50 and min(after) > max(before), (before[-1], after[0])
    assert after == sorted(after)
    msgs, _ = pull_all(bob, peer="alice")
    assert [m["id"] for m in msgs] == before + after
    assert [m["payload"] for m in msgs] == ["before%d" % i for i in range(50)] + \
        ["after%d" % i for i in range(50)]
    a.stop()
    bob.stop()
    sb.stop()
    rc, out = sb.check_store()
    assert rc == 0 and "conversations 1\nlogged messages 100\n" in out, out


def test_overflow_marker_then_catch_up(broker, clients):
    """An offline device whose queue overflowed gets what fitted, then a
    $im/missed marker saying how much it missed, and catches up from
    history."""
    b = broker(im_config(max_stored_messages=5))
    dev = im(clients, b, "bob", "phone", persistent=True)
    dev.disconnect()
    a = im(clients, b, "alice", "phone")
    for i in range(8):
        a.publish("p2p/talk/bob", b"m%d" % i, qos=1)
    dev = im(clients, b, "bob", "phone", persistent=True)
    got = [dev.get() for _ in range(6)]
    assert [x.payload for x in got[:5]] == [b"m%d" % i for i in range(5)]
    assert got[5].topic == "$im/missed"
    marker = json.loads(got[5].payload)
    assert marker["missed"] == 3 and marker["since"] > 0
    last = int(ups(got[4])["id"])
    r, _ = history(dev, peer="alice", after=last)
    assert [m["payload"] for m in r["messages"]] == ["m5", "m6", "m7"]
