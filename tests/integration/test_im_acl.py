"""IM layer: what an identity may do (issue 5, docs/im.md).

ACL order: config rules (first match) -> the token's acl claim -> IM
defaults -> deny.  $SYS only for im.admins.  BAD_INPUTS rows 11 (identities
carrying wildcards or levels into %u/%c rules), 12 (bad ACL / password /
JWT config: the broker does not start), 13 (revoked rights: no retained or
queued message leaks), 14 (wills to denied topics: CONNACK 0x87).
"""
import os

import pytest

import mqttraw as m
from conftest import SLOW
from imhelp import (im, im_config, im_raw, mint, refused, suback_denied,
                    start_expect_fail, drain, tp, from_props)

pytestmark = pytest.mark.imqtt_only

VERSIONS = [4, 5]


def raw_im(b, cid, version=5, groups=None, acl=None, **kw):
    user = cid.split("@")[0]
    c, ack = im_raw(b, cid, mint(user, groups=groups, acl=acl), version=version, **kw)
    assert ack.reason == 0, "CONNACK 0x%02x for %s" % (ack.reason, cid)
    return c


def sub_codes(c, filters, pid=1):
    c.send(m.subscribe(pid, [(f, 1) for f in filters], version=c.version))
    while True:
        p = c.recv(3 * SLOW)
        if p.type == m.SUBACK:
            assert p.pid == pid
            return p.reasons
        # retained/inbox messages may arrive first: ack and skip
        if p.type == m.PUBLISH and p.qos == 1:
            c.send(m.ack(m.PUBACK, p.pid, version=c.version))


def pub_code(c, topic, payload=b"x", pid=7, retain=False):
    """v5 QoS 1 publish: the PUBACK reason code."""
    c.send(m.publish(topic, payload, qos=1, pid=pid, retain=retain, version=5))
    while True:
        p = c.recv(3 * SLOW)
        if p.type == m.PUBACK and p.pid == pid:
            return p.reason
        if p.type == m.PUBLISH and p.qos == 1:
            c.send(m.ack(m.PUBACK, p.pid, version=5))


# ---------------------------------------------------------------- IM defaults

@pytest.mark.parametrize("version", VERSIONS)
def test_inbox_subscribe_only_own(broker, version):
    """Only alice may subscribe p2p/talk/alice; p2p/talk/bob, p2p/talk/+,
    p2p/talk/#, p2p/#, # and g/talk/+ are refused (0x87 / 3.1.1 0x80)."""
    b = broker(im_config())
    with raw_im(b, "alice@phone", version=version) as c:
        d = suback_denied(version)
        assert sub_codes(c, ["p2p/talk/alice"]) == [1]
        assert sub_codes(c, ["p2p/talk/bob", "p2p/talk/+", "p2p/talk/#", "p2p/#", "#",
                             "g/talk/+", "+/talk/alice"], pid=2) == [d] * 7


def test_default_deny_publish_v5_qos1_puback_0x87(broker, clients):
    """An IM listener denies what no rule allows: v5 QoS 1 publish to
    other/topic gets PUBACK 0x87; QoS 0 and 3.1.1 are dropped silently (a
    config rule lets a watcher subscribe to check nothing arrives); the
    connection stays up."""
    b = broker(im_config(acl={"default": "deny", "rules": [
        {"permission": "allow", "action": "subscribe", "topic": "other/#"}]}))
    w = im(clients, b, "watcher", "pc")
    assert w.subscribe("other/#", 1) == [1]
    with raw_im(b, "alice@phone", version=5) as c:
        assert pub_code(c, "other/topic") == 0x87
        c.send(m.publish("other/topic", b"q0", qos=0, version=5))
        assert pub_code(c, "p2p/talk/bob", pid=8) == 0  # still connected, still allowed
    with raw_im(b, "alice@old", version=4) as c:
        c.send(m.publish("other/topic", b"v3", qos=1, pid=9))
        p = c.recv(3)
        assert p.type == m.PUBACK  # 3.1.1 has no code: acknowledged and dropped
        c.assert_quiet(0.2)
    assert drain(w, 0.5) == []


def test_im_listener_default_is_deny_and_qos2_pubrec_0x87(broker):
    """On an IM listener what no rule, claim or IM default allows is denied
    (acl.default "allow" does not open it); a denied v5 QoS 2 publish gets
    PUBREC 0x87."""
    b = broker(im_config(acl={"default": "allow"}))
    with raw_im(b, "alice@phone") as c:
        assert pub_code(c, "other/topic") == 0x87
        c.send(m.publish("other/topic", b"x", qos=2, pid=4, version=5))
        p = c.recv(3)
        assert p.type == m.PUBREC and p.reason == 0x87, p


def test_config_rule_before_im_defaults(broker, clients):
    """Config rules come first: a deny on p2p/talk/bob beats the IM default
    that lets anyone write to an inbox; an allow rule with %u/%d/%c opens a
    private subtree for each device."""
    b = broker(im_config(acl={"default": "deny", "rules": [
        {"permission": "deny", "action": "publish", "topic": "p2p/talk/bob"},
        {"permission": "allow", "action": "all", "topic": "dev/%u/%d/#"},
        {"permission": "allow", "action": "all", "topic": "cid/%c"},
    ]}))
    bob = im(clients, b, "bob", "pc")
    with raw_im(b, "alice@phone") as c:
        assert pub_code(c, "p2p/talk/bob") == 0x87
        assert pub_code(c, "p2p/talk/carol", pid=2) == 0
        assert pub_code(c, "dev/alice/phone/x", pid=3) == 0
        assert pub_code(c, "dev/alice/tablet/x", pid=4) == 0x87
        assert pub_code(c, "dev/bob/pc/x", pid=5) == 0x87
        assert pub_code(c, "cid/alice@phone", pid=6) == 0
        assert pub_code(c, "cid/bob@pc", pid=7) == 0x87
        assert sub_codes(c, ["dev/alice/phone/#", "dev/alice/+/#", "cid/alice@phone"]) == [1, 0x87, 1]
    assert drain(bob, 0.3) == []


def test_token_acl_claim(broker, clients):
    """The token's acl claim adds rights (with placeholders): pub news/%u,
    sub news/#.  Without the claim: denied."""
    b = broker(im_config())
    acl = {"pub": ["news/%u"], "sub": ["news/#"]}
    w = im(clients, b, "bob", "pc", tok=mint("bob", acl=acl))
    assert w.subscribe("news/#", 1) == [1]
    with raw_im(b, "alice@phone", acl=acl) as c:
        assert pub_code(c, "news/alice", b"scoop") == 0
        assert pub_code(c, "news/bob", pid=2) == 0x87
    msg = w.get(3)
    assert (msg.topic, msg.payload) == ("news/alice", b"scoop")
    assert from_props(msg) == ["alice@phone"]
    with raw_im(b, "carol@pc") as c:
        assert pub_code(c, "news/carol") == 0x87
        assert sub_codes(c, ["news/#"]) == [0x87]


def test_config_deny_beats_token_claim(broker):
    """Config rules are checked before the token's claim: a config deny
    wins over a claim that allows."""
    b = broker(im_config(acl={"default": "deny", "rules": [
        {"permission": "deny", "action": "all", "topic": "news/#"}]}))
    with raw_im(b, "alice@phone", acl={"pub": ["news/%u"], "sub": ["news/#"]}) as c:
        assert pub_code(c, "news/alice") == 0x87
        assert sub_codes(c, ["news/#"]) == [0x87]


def test_sys_only_for_admins(broker):
    """$SYS/# only for identities in im.admins: ops may subscribe (the
    admin list is what grants it, no extra rule needed); alice may not
    subscribe $SYS/#, a $SYS topic, nor publish there."""
    b = broker(im_config(im={"admins": ["ops"]}))
    with raw_im(b, "ops@console") as c:
        codes = sub_codes(c, ["$SYS/#"])
        assert codes[0] in (0, 1), codes
    for version in VERSIONS:
        with raw_im(b, "alice@phone", version=version) as c:
            assert sub_codes(c, ["$SYS/#", "$SYS/broker/clients/connected", "#"]) == \
                [suback_denied(version)] * 3
    with raw_im(b, "alice@phone") as c:
        assert pub_code(c, "$SYS/broker/uptime") == 0x87


def test_sys_denied_to_non_admins_whatever_rules_or_claims_say(broker):
    """A config rule allowing $SYS/# to everyone, and a token claim naming
    $SYS/#, still give a non-admin nothing on $SYS; the admin gets it."""
    b = broker(im_config(im={"admins": ["ops"]}, acl={"default": "deny", "rules": [
        {"permission": "allow", "action": "all", "topic": "$SYS/#"}]}))
    with raw_im(b, "ops@console") as c:
        assert sub_codes(c, ["$SYS/#"])[0] in (0, 1)
    with raw_im(b, "alice@phone") as c:
        assert sub_codes(c, ["$SYS/#", "$SYS/broker/load"]) == [0x87, 0x87]
        assert pub_code(c, "$SYS/broker/uptime") == 0x87
    claim = {"sub": ["$SYS/#"], "pub": ["$SYS/#"]}
    c, ack = im_raw(b, "eve@phone", mint("eve", acl=claim))
    with c:
        if ack.reason == 0:  # a claim naming $SYS may also make the token invalid
            assert sub_codes(c, ["$SYS/#"]) == [0x87]
            assert pub_code(c, "$SYS/x") == 0x87
        else:
            assert ack.reason in (0x86, 0x87), ack


# ---------------------------------------------------------------- row 11

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("cid", ["#@phone", "+@phone", "alice@#", "alice@+", "a/b@phone",
                                 "alice@x/y", "#", "+", "a/b"])
def test_row11_wildcard_identities_refused_on_im_listener(broker, version, cid):
    """BAD_INPUTS row 11 on an IM listener: a client id with #, + or / in
    either side cannot even connect (0x85 / 2), so it can never reach a %u,
    %d or %c rule."""
    b = broker(im_config(acl={"default": "deny", "rules": [
        {"permission": "allow", "action": "all", "topic": "users/%u/#"},
        {"permission": "allow", "action": "all", "topic": "devs/%c/#"}]}))
    user = cid.split("@")[0]
    c, ack = im_raw(b, cid, mint(user), version=version, username="")
    with c:
        assert ack.reason == refused(version, "clientid"), "CONNACK 0x%02x" % ack.reason


@pytest.mark.parametrize("username", ["#", "+", "a/b", "alice/#"])
def test_row11_wildcard_username_refused_on_im_listener(broker, username):
    """A user name that is not the client id's user (here carrying a
    wildcard or a level) is refused: 0x87 (or 0x86)."""
    b = broker(im_config())
    c, ack = im_raw(b, "alice@phone", mint("alice"), username=username)
    with c:
        assert ack.reason in (0x86, 0x87), "CONNACK 0x%02x" % ack.reason


@pytest.mark.parametrize("version", VERSIONS)
def test_row11_placeholders_on_plain_listener(broker, version):
    """BAD_INPUTS row 11 on a plain (anonymous, client id free-form)
    listener with an ACL: identities `#`, `+`, `a/b` (as client id or user
    name) gain nothing through users/%u/# or devs/%c/#.  A broker that
    refuses such identities outright is fine too."""
    b = broker({"listeners": [{"bind": "127.0.0.1", "port": 1883}],
                "acl": {"default": "deny", "rules": [
                    {"permission": "allow", "action": "all", "topic": "users/%u/#"},
                    {"permission": "allow", "action": "all", "topic": "devs/%c/#"}]}})
    d = suback_denied(version)
    for bad in ("#", "+", "a/b", "a/+"):
        for cid, user in ((bad, "u-%d" % len(bad)), ("c-%d" % len(bad), bad)):
            c = m.RawClient(b.host, b.port, version=version)
            with c:
                ack = c.connect(cid, username=user)
                if ack.reason != 0:
                    continue
                codes = sub_codes(c, ["devs/#", "devs/+/x", "devs/a/b/#", "devs/a/#",
                                      "users/#", "users/+/x", "users/a/b/#", "users/a/#"])
                assert codes == [d] * 8, (cid, user, codes)
                c.send(m.publish("devs/a/x", b"x", qos=1, pid=3, version=version))
                p = c.expect(m.PUBACK)
                if version == 5:
                    assert p.reason == 0x87, (cid, user)
    # control: the honest client gets its own subtrees
    with m.open_connected(b.host, b.port, "a", version=version, username="a") as c:
        assert sub_codes(c, ["devs/a/#", "users/a/#"]) == [1, 1]


# ---------------------------------------------------------------- row 12

def _bad_configs(tmp):
    empty = os.path.join(tmp, "empty-pw")
    open(empty, "w").close()
    comments = os.path.join(tmp, "comments-pw")
    with open(comments, "w") as f:
        f.write("# nothing here\n\n")
    broken = os.path.join(tmp, "broken-pw")
    with open(broken, "w") as f:
        f.write("# ok\nalice:$pbkdf2-sha512$100000$AAAA\n")
    empty_secret = os.path.join(tmp, "empty-secret")
    open(empty_secret, "w").close()
    notpem = os.path.join(tmp, "not.pem")
    with open(notpem, "w") as f:
        f.write("hello\n")
    pwl = {"bind": "127.0.0.1", "port": 1883, "auth": "password_file"}
    return {
        # (config, words one of which the message must contain)
        "acl_rule_missing_topic": (im_config(acl={"rules": [{"permission": "allow", "action": "all"}]}),
                                   ["acl", "topic"]),
        "acl_rule_bad_permission": (im_config(acl={"rules": [
            {"permission": "maybe", "action": "all", "topic": "#"}]}), ["acl", "permission"]),
        "acl_rule_bad_filter": (im_config(acl={"rules": [
            {"permission": "allow", "action": "all", "topic": "a/#/b"}]}), ["acl", "topic"]),
        "acl_rules_not_array": (im_config(acl={"rules": "allow all"}), ["acl", "rules"]),
        "acl_default_bad": (im_config(acl={"default": "yes"}), ["acl", "default"]),
        "jwt_no_key": (im_config(jwt={"secret": None}), ["jwt", "secret", "key"]),
        "jwt_no_auth_section": ({"listeners": [{"bind": "127.0.0.1", "port": 1883, "im": True}]},
                                ["jwt", "secret", "key", "auth"]),
        "jwt_short_secret": (im_config(secret="x" * 31), ["secret", "32"]),
        "jwt_alg_none": (im_config(jwt={"alg": "none"}), ["alg"]),
        "jwt_alg_unknown": (im_config(jwt={"alg": "HS999"}), ["alg"]),
        "jwt_empty_secret_file": (im_config(jwt={"secret": None, "secret_file": empty_secret}),
                                  ["secret", empty_secret]),
        "jwt_missing_secret_file": (im_config(jwt={"secret": None,
                                                   "secret_file": os.path.join(tmp, "nope")}),
                                    ["secret", "nope"]),
        "jwt_rs256_key_not_pem": (im_config(jwt={"alg": "RS256", "secret": None,
                                                 "public_key_file": notpem}), ["key", "pem", "not.pem"]),
        "jwt_rs256_with_secret_only": (im_config(jwt={"alg": "RS256"}), ["key", "rs256"]),
        "jwt_hs384_short_secret": (im_config(jwt={"alg": "HS384"}), ["secret", "48"]),
        "jwt_bad_leeway": (im_config(jwt={"leeway": -5}), ["leeway"]),
        "jwt_unknown_key": (im_config(jwt={"algo": "HS256"}), ["algo"]),
        "pw_empty_file": ({"listeners": [pwl], "auth": {"password_file": empty}},
                          ["password", "empty", "entr", empty]),
        "pw_only_comments": ({"listeners": [pwl], "auth": {"password_file": comments}},
                             ["password", "empty", "entr", comments]),
        "pw_malformed_line": ({"listeners": [pwl], "auth": {"password_file": broken}},
                              [":2", "line 2"]),
        "pw_missing_file": ({"listeners": [pwl], "auth": {"password_file": os.path.join(tmp, "nope")}},
                            ["nope"]),
        "pw_listener_without_file": ({"listeners": [pwl]}, ["password_file", "password"]),
        "listener_auth_unknown": (im_config(auth="ldap"), ["auth", "ldap"]),
        "listener_clientid_unknown": (im_config(clientid="sometimes"), ["clientid"]),
        "im_inbox_qos_3": (im_config(im={"inbox_qos": 3}), ["inbox_qos"]),
        "im_admins_bad_name": (im_config(im={"admins": ["a/b"]}), ["admins"]),
        "im_unknown_key": (im_config(im={"presense": True}), ["presense"]),
    }


BAD_CONFIGS = [
    "acl_rule_missing_topic", "acl_rule_bad_permission", "acl_rule_bad_filter",
    "acl_rules_not_array", "acl_default_bad", "jwt_no_key", "jwt_no_auth_section",
    "jwt_short_secret", "jwt_alg_none", "jwt_alg_unknown", "jwt_empty_secret_file",
    "jwt_missing_secret_file", "jwt_rs256_key_not_pem", "jwt_rs256_with_secret_only",
    "jwt_hs384_short_secret", "jwt_bad_leeway", "jwt_unknown_key", "pw_empty_file",
    "pw_only_comments", "pw_malformed_line", "pw_missing_file", "pw_listener_without_file",
    "listener_auth_unknown", "listener_clientid_unknown", "im_inbox_qos_3",
    "im_admins_bad_name", "im_unknown_key"]


def test_row12_case_list_complete(tmp_path):
    assert sorted(BAD_CONFIGS) == sorted(_bad_configs(str(tmp_path)))


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_row12_bad_auth_config_refuses_to_start(case, tmp_path):
    """BAD_INPUTS row 12: an empty or malformed ACL, password file or JWT
    setting stops the broker at start-up (exit code != 0) with a message
    naming the problem -- never a broker that allows everything."""
    cfg, words = _bad_configs(str(tmp_path))[case]
    rc, out = start_expect_fail(cfg)
    assert rc != 0, out
    assert out.strip(), "no message on refusal"
    low = out.lower()
    assert any(w.lower() in low for w in words), \
        "message does not name the problem (%s): %s" % (words, out[-1000:])


# ---------------------------------------------------------------- row 13

def test_row13_revoked_group_queued_and_retained_not_delivered(broker, clients):
    """BAD_INPUTS row 13: alice@tab subscribes g/talk/team (persistent
    session) while her token lists the group, goes offline; carol posts a
    retained and normal messages; alice comes back with a token without
    the group: nothing of g/talk/team is delivered (queued, retained, or
    new), her re-subscribe is refused, while her inbox still works."""
    b = broker(im_config())
    tab = im(clients, b, "alice", "tab", groups=["team"], persistent=True)
    assert tab.subscribe("g/talk/team", 1) == [1]
    tab.disconnect()
    carol = im(clients, b, "carol", "pc", groups=["team"])
    carol.publish("g/talk/team", b"retained secret", qos=1, retain=True)
    carol.publish("g/talk/team", b"queued secret", qos=1)
    carol.publish("p2p/talk/alice", b"inbox ok", qos=1)

    back = im(clients, b, "alice", "tab", groups=[], persistent=True)
    assert back.session_present
    carol.publish("g/talk/team", b"new secret", qos=1)
    got = tp(drain(back, 0.8))
    assert got == [("p2p/talk/alice", b"inbox ok")], got
    assert back.subscribe("g/talk/team", 1) == [0x87]
    assert tp(drain(back, 0.5)) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_row13_retained_checked_at_delivery_through_wildcard(broker, clients, version):
    """A token claim allows sub g/#, a config rule denies g/talk/secret: the
    wildcard subscription is granted but the retained message on
    g/talk/secret is not delivered (rights are checked per delivered
    topic), while g/talk/open is."""
    b = broker(im_config(acl={"default": "deny", "rules": [
        {"permission": "deny", "action": "subscribe", "topic": "g/talk/secret"}]}))
    poster = im(clients, b, "carol", "pc", groups=["secret", "open"])
    poster.publish("g/talk/secret", b"s", qos=1, retain=True)
    poster.publish("g/talk/open", b"o", qos=1, retain=True)
    a = im(clients, b, "alice", "pc", version=version,
           tok=mint("alice", acl={"sub": ["g/#"]}))
    assert a.subscribe("g/talk/+", 1) == [1]
    got = tp(drain(a, 0.8))
    assert got == [("g/talk/open", b"o")], got


def test_row13_revoked_user_acl_claim_queued_not_delivered(broker, clients):
    """Queued messages from a subscription granted by a token claim are not
    delivered once the device reconnects with a token without the claim."""
    b = broker(im_config(acl={"default": "deny", "rules": [
        {"permission": "allow", "action": "publish", "topic": "alerts/#"}]}))
    a = im(clients, b, "alice", "tab", tok=mint("alice", acl={"sub": ["alerts/#"]}),
           persistent=True)
    assert a.subscribe("alerts/#", 1) == [1]
    a.disconnect()
    im(clients, b, "bob", "pc").publish("alerts/x", b"leak?", qos=1)
    back = im(clients, b, "alice", "tab", tok=mint("alice"), persistent=True)
    assert back.session_present
    assert tp(drain(back, 0.8)) == []


# ---------------------------------------------------------------- row 14

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("topic", ["$SYS/broker/uptime", "$SYS/x", "g/talk/other",
                                   "p2p/presence/bob", "anything/else"])
def test_row14_will_to_denied_topic_refused(broker, version, topic):
    """BAD_INPUTS row 14: a will on $SYS/..., a group not in the token, a
    presence topic or any topic no rule allows: CONNACK 0x87 (3.1.1: 5) at
    CONNECT, nothing published; the broker keeps serving."""
    b = broker(im_config())
    c, ack = im_raw(b, "alice@phone", mint("alice", groups=["team"]), version=version,
                    will={"topic": topic, "payload": b"boom", "qos": 1})
    with c:
        assert ack.reason == refused(version, "notauth"), "CONNACK 0x%02x" % ack.reason
    ok, ack = im_raw(b, "alice@phone", mint("alice"), version=version)
    with ok:
        assert ack.reason == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_will_to_allowed_topic_works(broker, clients, version):
    """Control for row 14: a will to the group (token lists it) is accepted
    and published at an abnormal close, stamped with the sender."""
    b = broker(im_config())
    w = im(clients, b, "bob", "pc", groups=["team"])
    assert w.subscribe("g/talk/team", 1) == [1]
    c, ack = im_raw(b, "alice@phone", mint("alice", groups=["team"]), version=version,
                    will={"topic": "g/talk/team", "payload": b"alice left", "qos": 1})
    assert ack.reason == 0
    c.close()
    msg = w.get(5)
    assert (msg.topic, msg.payload) == ("g/talk/team", b"alice left")
    assert from_props(msg) in ([], ["alice@phone"])
