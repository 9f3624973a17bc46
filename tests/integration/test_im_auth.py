"""IM layer: who may connect (issue 5, docs/im.md, docs/auth.md).

JWT in the password field (BAD_INPUTS row 18: every case refused with the
right code and no reason given), expiry while connected (DISCONNECT 0xA0),
user@device client ids (0x85), password files.
"""
import os
import time

import pytest

import mqttraw as m
from conftest import assert_alive, IMQTT_BIN, SLOW
from imhelp import (SECRET, SECRET64, im, im_config, im_raw, mint, cli_token, refused,
                    write_pwfile, pw_line)

pytestmark = pytest.mark.imqtt_only

VERSIONS = [4, 5]


def check_refused(b, client_id, tok, version, kind, username="same"):
    c, ack = im_raw(b, client_id, tok, version=version, username=username)
    with c:
        assert ack.reason == refused(version, kind), \
            "CONNACK 0x%02x, expected 0x%02x (%s)" % (ack.reason, refused(version, kind), kind)
        assert ack.session_present == 0
        # the reply never says why
        assert "reason_string" not in ack.properties, ack.properties
        assert not ack.user_properties, ack.user_properties
        c.expect_closed()


def check_accepted(b, client_id, tok, version=5, username="same"):
    c, ack = im_raw(b, client_id, tok, version=version, username=username)
    with c:
        assert ack.reason == 0, "valid token refused: CONNACK 0x%02x" % ack.reason
        c.send(m.disconnect(version))


# ---------------------------------------------------------------- accepted

@pytest.mark.parametrize("version", VERSIONS)
def test_valid_token_accepted(broker, version):
    """A valid HS256 token (sub = user, exp in the future) in the password,
    user name = user: CONNACK 0."""
    b = broker(im_config())
    check_accepted(b, "alice@phone", mint("alice"), version)


def test_valid_token_empty_username_accepted(broker):
    """The user name may be empty (it is then the user of the client id)."""
    b = broker(im_config())
    check_accepted(b, "alice@phone", mint("alice"), 5, username="")
    check_accepted(b, "alice@phone", mint("alice"), 4, username="")


def test_token_command_mints_accepted_token(broker):
    """`imqtt token --sub alice --secret S --ttl 60 --groups g1` prints a
    token the broker accepts, with the claims asked for."""
    b = broker(im_config())
    tok = cli_token("alice", groups=["g1", "g2"], ttl=60)
    from imhelp import decode_claims
    claims = decode_claims(tok)
    assert claims["sub"] == "alice" and claims["groups"] == ["g1", "g2"], claims
    assert abs(claims["exp"] - (int(time.time()) + 60)) <= 5, claims
    check_accepted(b, "alice@cli", tok)


def test_valid_token_with_nbf_in_past_and_iss_aud(broker):
    """nbf in the past is fine; configured iss and aud are checked (aud may
    be an array containing the audience)."""
    b = broker(im_config(jwt={"iss": "imqtt-tests", "aud": "chat"}))
    now = int(time.time())
    good = mint("alice", nbf=now - 10, extra={"iss": "imqtt-tests", "aud": ["x", "chat"]})
    check_accepted(b, "alice@phone", good)
    check_refused(b, "alice@phone", mint("alice", extra={"iss": "other", "aud": "chat"}), 5, "auth")
    check_refused(b, "alice@phone", mint("alice", extra={"iss": "imqtt-tests", "aud": "x"}), 5, "auth")
    check_refused(b, "alice@phone", mint("alice"), 5, "auth")  # iss/aud missing


# ---------------------------------------------------------------- row 18

def _bad_tokens():
    now = int(time.time())
    return {
        "alg_none": mint("alice", alg="none"),
        "alg_none_upper": mint("alice", alg="NONE"),
        "alg_none_with_sig": mint("alice", header={"alg": "none", "typ": "JWT"},
                                  signature="AAAA"),
        "alg_hs512_when_hs256_pinned": mint("alice", alg="HS512"),
        "alg_hs384_when_hs256_pinned": mint("alice", alg="HS384"),
        "alg_missing": mint("alice", header={"typ": "JWT"}, signature="AAAA"),
        "bad_signature": mint("alice", sign_with=SECRET + "-not"),
        "signature_stripped": mint("alice").rsplit(".", 1)[0] + ".",
        "expired": mint("alice", exp=now - 600),
        "expired_just": mint("alice", exp=now - 2),
        "exp_missing": mint("alice", exp=None),
        "exp_not_integer": mint("alice", exp="auto", extra={"exp": str(now + 60)}),
        "nbf_future": mint("alice", nbf=now + 600),
        "garbage": "not-a-jwt",
        "two_segments": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9",
        "four_segments": mint("alice") + ".AAAA",
        "padding": mint("alice") + "==",
        "empty": "",
        "oversized": mint("alice", extra={"pad": "x" * 5000}),
        "groups_wrong_type": mint("alice", groups=None, extra={"groups": "g1"}),
        "groups_bad_name": mint("alice", groups=["g/1"]),
        "crit_header": mint("alice", header={"alg": "HS256", "typ": "JWT", "crit": ["exp"]}),
    }


BAD = sorted(_bad_tokens())


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", BAD)
def test_row18_bad_token_refused_0x86(broker, case, version):
    """BAD_INPUTS row 18: alg none, an alg other than the pinned HS256, a
    bad signature, expired, nbf in the future, oversized (> 4096 bytes by
    default), malformed: v5 CONNACK 0x86 / 3.1.1 return code 4, no reason
    string, connection closed; the broker keeps serving."""
    b = broker(im_config())
    tok = _bad_tokens()[case]
    check_refused(b, "alice@phone", tok, version, "auth")
    check_accepted(b, "alice@phone", mint("alice"), version)


@pytest.mark.parametrize("version", VERSIONS)
def test_row18_sub_mismatch_refused_0x87(broker, version):
    """A valid token for bob used as alice@phone: 0x87 / 5."""
    b = broker(im_config())
    check_refused(b, "alice@phone", mint("bob"), version, "notauth")
    # no sub at all: refused; 0x86 (bad token) or 0x87 (no matching user)
    c, ack = im_raw(b, "alice@phone", mint(sub=None), version=version)
    with c:
        assert ack.reason in (refused(version, "auth"), refused(version, "notauth")), ack


@pytest.mark.parametrize("version", VERSIONS)
def test_username_not_user_refused_0x87(broker, version):
    """Valid token for alice, client id alice@phone, user name bob: 0x87 / 5."""
    b = broker(im_config())
    check_refused(b, "alice@phone", mint("alice"), version, "notauth", username="bob")


def test_no_password_refused(broker):
    """No password at all on a JWT listener: refused (0x86 / 4)."""
    b = broker(im_config())
    for version in VERSIONS:
        c = m.RawClient(b.host, b.port, version=version)
        with c:
            ack = c.connect("alice@phone")
            assert ack.reason == refused(version, "auth"), ack
    assert_alive_im(b)


def assert_alive_im(b):
    check_accepted(b, "alive@check", mint("alive"))


def test_row18_token_size_limit_configurable(broker):
    """auth.jwt.max_token_size 1024: a valid 1.5 KiB token is refused, a
    small one accepted."""
    b = broker(im_config(jwt={"max_token_size": 1024}))
    big = mint("alice", extra={"pad": "y" * 1500})
    assert len(big) > 1024
    check_refused(b, "alice@phone", big, 5, "auth")
    check_accepted(b, "alice@phone", mint("alice"))


def test_row18_hs512_pinned_refuses_hs256(broker):
    """HS512 pinned (64-byte secret): an HS512 token is accepted, an HS256
    token signed with the same secret is refused."""
    b = broker(im_config(secret=SECRET64, jwt={"alg": "HS512"}))
    check_accepted(b, "alice@phone", mint("alice", alg="HS512", secret=SECRET64))
    check_refused(b, "alice@phone", mint("alice", alg="HS256", secret=SECRET64), 5, "auth")


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory):
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        pytest.skip("python3 module cryptography not available: cannot make an RSA key")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    d = tmp_path_factory.mktemp("rsa")
    path = d / "rs256.pub"
    path.write_bytes(pub_pem)
    return key, pub_pem, str(path)


@pytest.mark.parametrize("version", VERSIONS)
def test_row18_hs256_signed_with_rsa_public_key_refused(broker, rsa_keys, version):
    """RS256 pinned with a public key file: a properly RS256-signed token
    is accepted; an HS256 token whose HMAC key is the PEM public key (the
    classic algorithm confusion) is refused with 0x86 / 4."""
    key, pub_pem, path = rsa_keys
    b = broker(im_config(auth="jwt", jwt={"alg": "RS256", "secret": None,
                                          "public_key_file": path}))
    check_accepted(b, "alice@phone", mint("alice", alg="RS256", rsa_private_key=key), version)
    for k in (pub_pem, pub_pem.strip()):
        confused = mint("alice", alg="HS256", sign_with=k)
        check_refused(b, "alice@phone", confused, version, "auth")
    check_refused(b, "alice@phone", mint("alice", alg="none"), version, "auth")


def test_secret_file(broker, tmp_path):
    """auth.jwt.secret_file: the secret is read from a file (one trailing
    newline dropped)."""
    p = tmp_path / "secret"
    p.write_text(SECRET + "\n")
    os.chmod(p, 0o600)
    b = broker(im_config(jwt={"secret": None, "secret_file": str(p)}))
    check_accepted(b, "alice@phone", mint("alice"))
    check_refused(b, "alice@phone", mint("alice", secret=SECRET + "\n"), 5, "auth")


# ---------------------------------------------------------------- expiry

def test_v5_token_expiry_disconnects_with_0xa0(broker):
    """A v5 client whose token expires while connected gets DISCONNECT 0xA0
    (Maximum connect time) at exp and is closed; a fresh token reconnects."""
    b = broker(im_config())
    exp = int(time.time()) + 2
    c, ack = im_raw(b, "alice@phone", mint("alice", exp=exp), version=5)
    with c:
        assert ack.reason == 0
        t0 = time.time()
        seen = []
        deadline = time.monotonic() + 5 * SLOW
        disc = None
        while time.monotonic() < deadline:
            p = c.recv_or_closed(max(0.01, deadline - time.monotonic()))
            if p is None:
                break
            seen.append(p)
            if p.type == m.PINGRESP:
                continue
            if p.type == m.DISCONNECT:
                disc = p
                break
        assert disc is not None, "no DISCONNECT before close (seen %r)" % seen
        assert disc.reason == 0xA0, "DISCONNECT reason 0x%02x" % disc.reason
        assert time.time() >= exp - 1.0, "disconnected %.1fs before exp" % (exp - time.time())
        assert time.time() - t0 < 4.5 * SLOW
        c.expect_closed()
    check_accepted(b, "alice@phone", mint("alice"))


def test_v311_token_expiry_closes(broker):
    """A 3.1.1 client is simply closed at exp."""
    b = broker(im_config())
    exp = int(time.time()) + 2
    c, ack = im_raw(b, "alice@old", mint("alice", exp=exp), version=4)
    with c:
        assert ack.reason == 0
        c.expect_closed(timeout=5 * SLOW)
        assert time.time() >= exp - 1.0


def test_token_expiry_keeps_other_clients(broker, clients):
    """Expiry of one device does not touch another device of the user with
    a longer token."""
    b = broker(im_config())
    long_lived = im(clients, b, "alice", "laptop", tok=mint("alice", ttl=600))
    c, ack = im_raw(b, "alice@phone", mint("alice", exp=int(time.time()) + 1), version=5)
    with c:
        assert ack.reason == 0
        c.expect_closed(timeout=4 * SLOW, allow_disconnect={0xA0})
    assert not long_lived.disconnected.is_set()
    assert long_lived.subscribe("p2p/talk/alice", 1) == [1]


# ---------------------------------------------------------------- client ids

BAD_IDS = ["alice", "@phone", "alice@", "alice@ph@one", "al ice@phone", "alice@ph one",
           "a" * 65 + "@phone", "alice@" + "d" * 65, "al+ice@phone", "alice@#",
           "a/b@phone", "alice@ph/one", "al%u@phone", "alicé@phone", ""]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("cid", BAD_IDS, ids=lambda s: repr(s)[:20])
def test_bad_client_id_refused_0x85(broker, version, cid):
    """clientid "required" (the IM default): anything but user@device with
    [A-Za-z0-9._-]{1,64} each side is refused: v5 0x85, 3.1.1 rc 2.  The
    token is valid for the user part where there is one."""
    b = broker(im_config())
    user = cid.split("@")[0] if "@" in cid else cid
    tok = mint(user or "alice")
    c, ack = im_raw(b, cid, tok, version=version, username="")
    with c:
        assert ack.reason == refused(version, "clientid"), "CONNACK 0x%02x for %r" % (ack.reason, cid)
        assert "reason_string" not in ack.properties


def test_longest_valid_client_id_accepted(broker):
    """64 bytes each side, the whole alphabet."""
    b = broker(im_config())
    user = ("Az09._-" * 10)[:64]
    dev = ("-_.9zA" * 11)[:64]
    check_accepted(b, "%s@%s" % (user, dev), mint(user))


def test_clientid_off_on_plain_listener(broker):
    """A listener without "im" keeps plain MQTT: any client id, anonymous."""
    b = broker({"listeners": [{"bind": "127.0.0.1", "port": 1883}]})
    with m.open_connected(b.host, b.port, "no-at-sign", version=5) as c:
        c.send(m.disconnect(5))
    assert_alive(b)


# ---------------------------------------------------------------- password files

@pytest.fixture
def pwfile(tmp_path):
    return write_pwfile(str(tmp_path / "passwords"),
                        {"sensor-1": "s3cret-one", "alice": "alice-pw"})


@pytest.mark.parametrize("version", VERSIONS)
def test_password_file_plain_listener(broker, pwfile, version):
    """auth password_file on a plain listener: right user/password accepted,
    wrong password and unknown user refused with 0x86 / 4."""
    b = broker({"listeners": [{"bind": "127.0.0.1", "port": 1883, "auth": "password_file"}],
                "auth": {"password_file": pwfile}})
    def conn(user, pw):
        c = m.RawClient(b.host, b.port, version=version)
        ack = c.connect("dev-%s" % user, username=user, password=pw)
        c.close()
        return ack.reason
    assert conn("sensor-1", "s3cret-one") == 0
    assert conn("sensor-1", "wrong") == refused(version, "auth")
    assert conn("nobody", "s3cret-one") == refused(version, "auth")
    assert conn("sensor-1", "") == refused(version, "auth")
    assert conn("alice", "alice-pw") == 0


def test_password_file_im_listener(broker, pwfile, clients):
    """auth password_file on an IM listener: alice@box with user name alice
    and her password gets in (and her inbox works); a JWT is not a
    password; user name other than the client id's user is refused."""
    b = broker(im_config(auth="password_file", password_file=pwfile))
    c, ack = im_raw(b, "alice@box", "alice-pw")
    with c:
        assert ack.reason == 0, ack
        c.send(m.disconnect(5))
    c, ack = im_raw(b, "alice@box", mint("alice"))
    with c:
        assert ack.reason == 0x86, ack
    c, ack = im_raw(b, "alice@box", "s3cret-one", username="sensor-1")
    with c:
        assert ack.reason in (0x86, 0x87), ack


def test_passwd_command_creates_usable_entry(broker, tmp_path):
    """`imqtt passwd FILE USER --password P` writes an entry the broker
    accepts."""
    import subprocess
    path = str(tmp_path / "pw")
    r = subprocess.run([IMQTT_BIN, "passwd", "--password", "hunter2-hunter2",
                        "--iterations", "1000", path, "dev-7"],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    b = broker({"listeners": [{"bind": "127.0.0.1", "port": 1883, "auth": "password_file"}],
                "auth": {"password_file": path}})
    with m.RawClient(b.host, b.port, version=5) as c:
        assert c.connect("dev-7", username="dev-7", password="hunter2-hunter2").reason == 0
    with m.RawClient(b.host, b.port, version=5) as c:
        assert c.connect("dev-7", username="dev-7", password="hunter3").reason == 0x86


def test_python_pw_line_matches_docs_format():
    """Self-check of the helper: the line format of docs/auth.md."""
    line = pw_line("u", "p", iterations=1000, salt=b"12345678")
    user, rest = line.split(":", 1)
    parts = rest.split("$")
    assert user == "u" and parts[1] == "pbkdf2-sha512" and parts[2] == "1000"


@pytest.mark.parametrize("version", VERSIONS)
def test_password_file_im_listener_empty_user_name(broker, pwfile, clients, version):
    """docs/im.md: on an IM listener the user name may be empty; with a
    password file the password is then checked for the client id's user
    (a wrong one is still refused)."""
    b = broker(im_config(auth="password_file", password_file=pwfile))
    c = clients(b, "alice@box", version=version, username="", password="alice-pw",
                auto_connect=False)
    c.connect()
    c.subscribe("p2p/talk/alice", qos=1)
    c2 = clients(b, "alice@pad", version=version, username="", password="wrong",
                 auto_connect=False)
    c2.connect(expect_rc=refused(version, "auth"))
