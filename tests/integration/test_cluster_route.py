"""Live routing across nodes on core NATS (docs/cluster.md, "Live
routing"; issue 11, T1): three imqtt nodes in cluster mode on a
three-server JetStream NATS cluster, clients connected straight to the
node a test puts them on (HAProxy would put a user's devices on one node).
Deliveries are counted exactly: every device gets every message once, in
order; nothing comes back to the sender."""
import time
import uuid

import pytest

from clusterhelp import (haproxy, http_get, imqtt_cluster, nats_cluster,  # noqa: F401
                         node_config)
import promparse
from conftest import PacketTypes, SLOW, props, wait_for
from imhelp import drain, from_props, im, im_config, tp

pytestmark = pytest.mark.imqtt_only


def start_nodes(broker, nats_cluster, n=3, im_mode=False):
    nats = nats_cluster()
    extra = {}
    if im_mode:
        cfg = im_config()
        extra = {"listeners": cfg["listeners"], "auth": cfg["auth"]}
    nodes = [broker(node_config(nats, "imqtt%d" % (i + 1), proxy=False, **extra))
             for i in range(n)]
    return nats, nodes


def settle(pub, subs):
    """Wait until pub's node routes to every subscriber's node: each
    subscriber takes a fresh topic, pub publishes on it until it arrives
    (NATS spreads interest across its routes asynchronously). The probe
    subscription is removed and its messages drained."""
    for s in subs:
        t = "settle/%s" % uuid.uuid4().hex
        assert s.subscribe(t, 0) == [0]
        deadline = time.monotonic() + 10 * SLOW
        got = False
        while not got and time.monotonic() < deadline:
            pub.publish(t, b"probe", qos=0)
            try:
                while True:
                    m = s.messages.get(timeout=0.1)
                    if m.topic == t:
                        got = True
            except Exception:
                pass
        assert got, "no route to a subscriber's node"
        s.unsubscribe(t)
        drain(s, 0.2)


def metric(b, name):
    status, body = http_get(b.config["http"]["port"], "/metrics")
    assert status == 200, body
    return promparse.parse(body)[name]["samples"][0][2]


def expect_exact(c, expected, who, timeout=5.0, quiet=0.5):
    got = []
    deadline = time.monotonic() + timeout * SLOW
    while len(got) < len(expected) and time.monotonic() < deadline:
        try:
            got.append(c.messages.get(timeout=max(0.01, deadline - time.monotonic())))
        except Exception:
            break
    got += drain(c, quiet)
    assert tp(got) == expected, "%s received %r, expected %r" % (who, tp(got), expected)
    return got


def expect_per_publisher(c, expected, publisher, who, timeout=5.0, quiet=0.5):
    """Like expect_exact, but the order is checked per publisher (what
    MQTT promises; publishers on different nodes race through NATS):
    every expected message once, and each publisher's in its order."""
    got = []
    deadline = time.monotonic() + timeout * SLOW
    while len(got) < len(expected) and time.monotonic() < deadline:
        try:
            got.append(c.messages.get(timeout=max(0.01, deadline - time.monotonic())))
        except Exception:
            break
    got += drain(c, quiet)
    g = tp(got)
    assert sorted(g) == sorted(expected), "%s received %r, expected %r" % (who, g, expected)
    for pub in set(publisher.values()):
        mine = [x for x in g if publisher[x] == pub]
        assert mine == [x for x in expected if publisher[x] == pub], (
            "%s: %s's messages out of order: %r" % (who, pub, g))
    return got


def test_plain_routing_across_nodes(broker, clients, nats_cluster):
    nats, (n1, n2, n3) = start_nodes(broker, nats_cluster)
    sub2 = clients(n2, "sub2", version=5)
    sub3 = clients(n3, "sub3", version=4)
    assert sub2.subscribe("a/b", 1) == [1]
    assert sub3.subscribe("a/+", 1) == [1]
    pub = clients(n1, "pub1", version=5)
    settle(pub, [sub2, sub3])
    for i in range(20):
        pub.publish("a/b", b"m%d" % i, qos=i % 2)
    expected = [("a/b", b"m%d" % i) for i in range(20)]
    expect_exact(sub2, expected, "sub2")
    expect_exact(sub3, expected, "sub3")
    # node 3's a/+ and node 2's a/b: one NATS subscription each
    assert metric(n2, "imqtt_cluster_subjects") == 1
    assert metric(n3, "imqtt_cluster_subjects") == 1
    assert metric(n1, "imqtt_cluster_published_total") >= 20
    assert metric(n2, "imqtt_cluster_received_total") >= 20
    assert metric(n2, "imqtt_cluster_invalid_total") == 0
    # the last local subscriber goes: the node unsubscribes on NATS
    sub2.unsubscribe("a/b")
    assert metric(n2, "imqtt_cluster_subjects") == 0


def test_overlapping_filters_one_copy(broker, clients, nats_cluster):
    """a/# (two NATS subjects: a.> and a), a/+ and a/b on one node: NATS
    sends that node up to three copies of a message; it delivers one."""
    nats, (n1, n2) = start_nodes(broker, nats_cluster, n=2)
    s = clients(n2, "s", version=5)
    for f in ("a/#", "a/+", "a/b"):
        assert s.subscribe(f, 1) == [1]
    t = clients(n2, "t", version=4)
    assert t.subscribe("a/b", 0) == [0]
    pub = clients(n1, "pub", version=5)
    settle(pub, [s, t])
    drain(s, 0.3)
    for i in range(30):
        pub.publish("a/b" if i % 3 else "a", b"%d" % i, qos=1)
    expect_exact(s, [("a/b" if i % 3 else "a", b"%d" % i) for i in range(30)], "s")
    expect_exact(t, [("a/b", b"%d" % i) for i in range(30) if i % 3], "t")
    assert metric(n2, "imqtt_cluster_subjects") == 4
    assert metric(n2, "imqtt_cluster_duplicates_total") >= 20


def settle_probe(pub, topic, receivers, quiet=0.5):
    """Like settle() for clients that may not subscribe to anything new
    (IM devices): pub publishes on `topic` until every receiver got a
    copy; then every receiver is drained."""
    deadline = time.monotonic() + 10 * SLOW
    pending = set(range(len(receivers)))
    while pending and time.monotonic() < deadline:
        pub.publish(topic, b"probe", qos=0)
        time.sleep(0.1)
        for i in list(pending):
            try:
                while True:
                    receivers[i].messages.get_nowait()
                    pending.discard(i)
            except Exception:
                pass
    assert not pending, "no route to some receivers' nodes"
    for r in receivers:
        drain(r, quiet)


TEAM = ["team"]


def stamp(msg):
    f = from_props(msg)
    assert len(f) <= 1, "several from properties: %r" % f
    return f[0] if f else None


@pytest.mark.parametrize("qos", [0, 1])
def test_im_devices_on_three_nodes(broker, clients, nats_cluster, qos):
    """T1: alice@phone on node 1; alice@laptop, bob@pc on node 2; alice@old
    (3.1.1) and bob@tab (3.1.1) on node 3; carol@pc on node 3. Direct
    messages, a note to self and a group message: each device gets every
    message once, in order, stamped with its sender, the sender's other
    devices the sync copy, the sending device nothing."""
    nats, (n1, n2, n3) = start_nodes(broker, nats_cluster, im_mode=True)
    phone = im(clients, n1, "alice", "phone", version=5, groups=TEAM)
    laptop = im(clients, n2, "alice", "laptop", version=5, groups=TEAM)
    old = im(clients, n3, "alice", "old", version=4, groups=TEAM)
    bpc = im(clients, n2, "bob", "pc", version=5, groups=TEAM)
    btab = im(clients, n3, "bob", "tab", version=4, groups=TEAM)
    cpc = im(clients, n3, "carol", "pc", version=5, groups=TEAM)
    everyone = [phone, laptop, old, bpc, btab, cpc]
    for c in everyone:
        assert c.subscribe("g/talk/team", 1) == [1]
    settle_probe(phone, "p2p/talk/bob", [laptop, old, bpc, btab])
    settle_probe(bpc, "p2p/talk/alice", [phone, laptop, old, btab])
    settle_probe(cpc, "g/talk/team", [phone, laptop, old, bpc, btab])
    for c in everyone:
        drain(c, 0.3)

    sent = []
    for i in range(10):
        sent.append((phone, "p2p/talk/bob", b"to bob %d" % i))
    sent.append((phone, "p2p/talk/alice", b"note"))
    sent.append((bpc, "p2p/talk/alice", b"bob to alice"))
    sent.append((btab, "g/talk/team", b"bob to team"))
    sent.append((phone, "p2p/talk/bob", b"last"))
    for c, t, p in sent:
        c.publish(t, p, qos=qos)
        time.sleep(0.01)  # one order across publishers on three nodes
    by = {phone: "alice@phone", bpc: "bob@pc", btab: "bob@tab"}
    stamps = {(t, p): by[c] for c, t, p in sent}
    M = [(t, p) for _, t, p in sent]
    to_bob = [x for x in M if x[0] == "p2p/talk/bob"]
    note, b2a, team, last = M[10], M[11], M[12], M[13]
    expected = {
        "alice@phone": (phone, [b2a, team]),                    # no echo
        "alice@laptop": (laptop, to_bob[:-1] + [note, b2a, team, last]),
        "alice@old": (old, to_bob[:-1] + [note, b2a, team, last]),
        "bob@pc": (bpc, to_bob[:-1] + [team, last]),           # sync of team? no: own user
        "bob@tab": (btab, to_bob[:-1] + [b2a, last]),          # sync of b2a
        "carol@pc": (cpc, [team]),
    }
    for who, (c, exp) in expected.items():
        got = expect_per_publisher(c, exp, stamps, who)
        for msg in got:
            key = (msg.topic, msg.payload)
            if c.version == 5:
                assert stamp(msg) == stamps[key], "%s: from of %r is %r" % (
                    who, key, stamp(msg))
            assert msg.qos == qos


def sub_ids(msg):
    p = getattr(msg, "properties", None)
    v = getattr(p, "SubscriptionIdentifier", None) if p is not None else None
    return sorted(v) if isinstance(v, list) else ([v] if v else [])


def test_mqtt_rules_across_nodes(broker, clients, nats_cluster):
    """Overlapping wildcards on a remote node give one copy with every
    subscription identifier; No Local, retain as published and message
    expiry hold across nodes; an UNSUBSCRIBE stops remote delivery."""
    import paho.mqtt.client as mqtt
    nats, (n1, n2, n3) = start_nodes(broker, nats_cluster)
    s2 = clients(n2, "s2", version=5)
    s2.subscribe("w/#", properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7),
                 options=mqtt.SubscribeOptions(qos=1))
    s2.subscribe("w/+/c", properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=9),
                 options=mqtt.SubscribeOptions(qos=1, retainAsPublished=True))
    s3 = clients(n3, "s3", version=5)
    s3.subscribe("w/+/c", options=mqtt.SubscribeOptions(qos=1))
    # the publisher subscribes itself with No Local, on its own node
    pub = clients(n1, "pub", version=5)
    pub.subscribe("w/#", options=mqtt.SubscribeOptions(qos=1, noLocal=True))
    other = clients(n1, "other", version=5)  # a local peer that sees it
    other.subscribe("w/#", options=mqtt.SubscribeOptions(qos=1))
    settle(pub, [s2, s3])
    drain(other, 0.2)

    pub.publish("w/b/c", b"one", qos=1, retain=True,
                properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=120))
    pub.publish("w", b"parent", qos=1)    # w/# matches its parent too
    pub.publish("w/x", b"two", qos=0)
    g2 = expect_exact(s2, [("w/b/c", b"one"), ("w", b"parent"), ("w/x", b"two")], "s2")
    assert sub_ids(g2[0]) == [7, 9]       # one copy, both identifiers
    assert g2[0].retain                    # retain as published (id 9)
    left = g2[0].properties.MessageExpiryInterval
    assert 0 < left <= 120
    assert sub_ids(g2[1]) == [7] and sub_ids(g2[2]) == [7]
    g3 = expect_exact(s3, [("w/b/c", b"one")], "s3")
    assert not g3[0].retain                # not retain-as-published
    assert sub_ids(g3[0]) == []
    expect_exact(other, [("w/b/c", b"one"), ("w", b"parent"), ("w/x", b"two")], "other")
    expect_exact(pub, [], "the publisher (No Local)")

    # UNSUBSCRIBE on node 3: nothing more reaches s3; s2 keeps w/#
    s3.unsubscribe("w/+/c")
    s2.unsubscribe("w/+/c")
    time.sleep(0.5 * SLOW)
    pub.publish("w/b/c", b"after", qos=1)
    g2 = expect_exact(s2, [("w/b/c", b"after")], "s2 after unsubscribe")
    assert sub_ids(g2[0]) == [7]
    expect_exact(s3, [], "s3 after unsubscribe")
    # the retained message stays on node 1 (retained across nodes is the
    # KV slice): a new subscriber on node 1 gets it
    late = clients(n1, "late", version=5)
    late.subscribe("w/b/c", 1)
    expect_exact(late, [("w/b/c", b"one")], "late on node 1")


def test_shared_subscription_across_nodes(broker, clients, nats_cluster):
    """$share/g/s/# with members on nodes 1, 2 and 3 (two on node 2):
    every message published on node 1 reaches exactly one member; a
    second group of the same name on another filter gets its own copy;
    a plain subscriber gets every one."""
    nats, (n1, n2, n3) = start_nodes(broker, nats_cluster)
    members = [clients(n1, "m1", version=5), clients(n2, "m2a", version=5),
               clients(n2, "m2b", version=4), clients(n3, "m3", version=5)]
    for m in members:
        assert m.subscribe("$share/g/s/#", 1) == [1]
    other = clients(n3, "o3", version=5)
    assert other.subscribe("$share/g/s/+", 1) == [1]
    plain = clients(n2, "p2", version=5)
    assert plain.subscribe("s/#", 1) == [1]
    pub = clients(n1, "pub", version=5)
    settle(pub, [other, plain] + members)
    time.sleep(0.3)
    N = 60
    for i in range(N):
        pub.publish("s/t", b"%d" % i, qos=i % 2)
    expected = [("s/t", b"%d" % i) for i in range(N)]
    expect_exact(plain, expected, "plain")
    expect_exact(other, expected, "the other group's only member")
    got, per = [], []
    for m in members:
        mine = tp(drain(m, 1.0 * SLOW))
        per.append(len(mine))
        got += mine
    assert sorted(got) == sorted(expected), "group got %r" % sorted(got)
    # NATS spreads the group over the nodes (a queue group per filter):
    # with 60 messages, more than one node's members get some
    on_node = [per[0], per[1] + per[2], per[3]]
    assert sum(1 for k in on_node if k) >= 2, per


class Front:
    """Where clients connect when they go through HAProxy."""
    def __init__(self, port):
        self.host = "127.0.0.1"
        self.port = port


def test_im_through_haproxy(imqtt_cluster, clients):
    """The fixture's cluster: three nodes behind HAProxy (PROXY v2, users
    hashed to nodes). Five users with two devices each, wherever HAProxy
    puts them: every direct message reaches the peer's devices and the
    sender's other device once, stamped, never the sender."""
    cfg = im_config()
    lst = dict(cfg["listeners"][0])
    lst.pop("bind", None)
    lst.pop("port", None)
    lst.update({"proxy_protocol": True, "proxy_from": ["127.0.0.1"]})
    cl = imqtt_cluster(n=3, listeners=[lst], auth=cfg["auth"])
    front = Front(cl.port)
    users = ["u%d" % i for i in range(5)]
    dev = {(u, d): im(clients, front, u, d, version=5 if d == "a" else 4)
           for u in users for d in ("a", "b")}
    # where HAProxy put them, from each node's client count
    placed = [metric(b, "imqtt_connections") for b in cl.nodes]
    assert sum(placed) == 10
    # routes settle: u0@a writes to everyone until all got one
    for u in users[1:]:
        settle_probe(dev[("u0", "a")], "p2p/talk/%s" % u,
                     [dev[(u, "a")], dev[(u, "b")]])
    settle_probe(dev[("u1", "a")], "p2p/talk/u0", [dev[("u0", "a")], dev[("u0", "b")]])
    for c in dev.values():
        drain(c, 0.3)
    sent = []
    for i, u in enumerate(users):
        peer = users[(i + 1) % len(users)]
        for k in range(5):
            sent.append(((u, "a"), peer, b"%s->%s %d" % (u.encode(), peer.encode(), k)))
    for (u, d), peer, p in sent:
        dev[(u, d)].publish("p2p/talk/%s" % peer, p, qos=1)
    stamps = {("p2p/talk/%s" % peer, p): "%s@%s" % (u, d) for (u, d), peer, p in sent}
    for (u, d), c in dev.items():
        exp = [("p2p/talk/%s" % peer, p) for (su, sd), peer, p in sent
               if peer == u or (su == u and sd != d)]
        got = expect_per_publisher(c, exp, stamps, "%s@%s" % (u, d))
        for msg in got:
            if c.version == 5:
                assert stamp(msg) == stamps[(msg.topic, msg.payload)]
    print("devices per node:", placed)


def test_stored_sessions_subscribed_at_start(broker, clients, nats_cluster, tmp_path):
    """A persistent session's subscription on node 2 survives node 2's
    restart (its store): the node subscribes on NATS again at start-up,
    and what node 1 publishes while the device is offline is queued for
    it on node 2."""
    nats, (n1,) = start_nodes(broker, nats_cluster, n=1)
    cfg2 = node_config(nats, "imqtt2", proxy=False, store={"dir": str(tmp_path / "s2")})
    n2 = broker(cfg2)
    dev = clients(n2, "dev", version=5, clean=False,
                  properties=props(PacketTypes.CONNECT, SessionExpiryInterval=600))
    assert dev.subscribe("st/#", 1) == [1]
    pub = clients(n1, "pub", version=5)
    settle(pub, [dev])
    dev.disconnect()
    n2.stop()
    n2b = broker(cfg2)
    wait_for(lambda: metric(n2b, "imqtt_cluster_subjects") == 2,
             timeout=10 * SLOW, what="st/# subscribed again (st.> and st)")
    # interest crosses the NATS routes: probe until node 1 sees it
    deadline = time.monotonic() + 10 * SLOW
    while metric(n2b, "imqtt_cluster_received_total") == 0:
        assert time.monotonic() < deadline, "node 2 never reached"
        pub.publish("st/probe", b"p", qos=0)
        time.sleep(0.1)
    for i in range(5):
        pub.publish("st/m", b"%d" % i, qos=1)
    time.sleep(0.5 * SLOW)
    back = clients(n2b, "dev", version=5, clean=False,
                   properties=props(PacketTypes.CONNECT, SessionExpiryInterval=600))
    assert back.session_present
    got = [x for x in tp(drain(back, 1.0)) if x[0] == "st/m"]
    assert got == [("st/m", b"%d" % i) for i in range(5)]
