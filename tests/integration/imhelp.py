"""Helpers for the IM-layer integration tests (test_im_*.py).

- Tokens: `mint()` builds a JWT in Python (any header, any claims, any
  signing key: what the bad-input tests need); `token()` gives a valid
  token for a user, from `imqtt token` when the subcommand works, else from
  `mint()`; `cli_token()` always uses the subcommand.
- Configs: `im_config()` builds the JSON config of one IM listener.
- Password files: `pw_line()` writes the docs/auth.md line format with
  hashlib (PBKDF2-HMAC-SHA512).
- Clients: `im()` connects a Paho client (3.1.1 or 5) as `user@device` with a
  token; `im_raw()` opens a raw-socket connection and returns the CONNACK.
- `start_expect_fail()` runs the broker on a config that must be refused.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time

import mqttraw as m
from conftest import IMQTT_BIN, SLOW, free_port, props, PacketTypes

# 46 bytes: enough for HS256 (32) -- HS384 needs 48, HS512 64.
SECRET = "imqtt-integration-secret-0123456789abcdefghij"
SECRET64 = SECRET + "-" + "x" * (64 - len(SECRET) - 1)

# v5 reason codes / 3.1.1 return codes used by the IM layer
RC_OK = 0x00
RC5_BAD_CLIENTID = 0x85
RC5_BAD_AUTH = 0x86
RC5_NOT_AUTHORIZED = 0x87
RC5_TOKEN_EXPIRED = 0xA0  # DISCONNECT: Maximum connect time
RC3_BAD_CLIENTID = 2
RC3_BAD_AUTH = 4
RC3_NOT_AUTHORIZED = 5


def refused(version, kind):
    """Expected CONNACK code: kind is 'clientid', 'auth' or 'notauth'."""
    if version == 5:
        return {"clientid": RC5_BAD_CLIENTID, "auth": RC5_BAD_AUTH,
                "notauth": RC5_NOT_AUTHORIZED}[kind]
    return {"clientid": RC3_BAD_CLIENTID, "auth": RC3_BAD_AUTH,
            "notauth": RC3_NOT_AUTHORIZED}[kind]


def suback_denied(version):
    return 0x87 if version == 5 else 0x80


# ---------------------------------------------------------------- tokens

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_HASH = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def mint(sub="alice", secret=SECRET, ttl=60, groups=None, alg="HS256", acl=None,
         exp="auto", nbf=None, iat="auto", extra=None, header=None, sign_with=None,
         rsa_private_key=None, signature=None):
    """A JWT built by hand.

    `alg` goes into the header and selects how it is signed: HS* with
    `sign_with` (default `secret`; bytes or str), RS256 with
    `rsa_private_key` (a cryptography key object), `none` unsigned.
    `header` replaces the whole header, `extra` adds claims, `exp=None` and
    `sub=None` leave those claims out, `signature` replaces the signature
    segment.
    """
    now = int(time.time())
    claims = {}
    if sub is not None:
        claims["sub"] = sub
    if iat == "auto":
        claims["iat"] = now
    elif iat is not None:
        claims["iat"] = iat
    if exp == "auto":
        claims["exp"] = now + ttl
    elif exp is not None:
        claims["exp"] = exp
    if nbf is not None:
        claims["nbf"] = nbf
    if groups is not None:
        claims["groups"] = list(groups)
    if acl is not None:
        claims["acl"] = acl
    if extra:
        claims.update(extra)
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = (b64url(json.dumps(hdr, separators=(",", ":")))
                     + "." + b64url(json.dumps(claims, separators=(",", ":"))))
    if signature is not None:
        return signing_input + "." + signature
    if alg.lower() == "none":
        return signing_input + "."
    if alg in _HASH:
        key = sign_with if sign_with is not None else secret
        if isinstance(key, str):
            key = key.encode()
        sig = hmac.new(key, signing_input.encode(), _HASH[alg]).digest()
        return signing_input + "." + b64url(sig)
    if alg == "RS256":
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        sig = rsa_private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)
    raise ValueError("mint: cannot sign with %s" % alg)


def decode_claims(token):
    seg = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def cli_token(sub, secret=SECRET, ttl=60, groups=None, alg="HS256", acl_pub=None,
              acl_sub=None, key_file=None):
    """A token from `imqtt token` (raises RuntimeError if the command fails)."""
    argv = [IMQTT_BIN, "token", "--sub", sub, "--ttl", str(ttl), "--alg", alg]
    if key_file:
        argv += ["--key-file", key_file]
    else:
        argv += ["--secret", secret]
    if groups:
        argv += ["--groups", ",".join(groups)]
    if acl_pub:
        argv += ["--acl-pub", ",".join(acl_pub)]
    if acl_sub:
        argv += ["--acl-sub", ",".join(acl_sub)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10 * SLOW,
                       stdin=subprocess.DEVNULL)
    out = r.stdout.strip()
    if r.returncode != 0 or out.count(".") != 2:
        raise RuntimeError("imqtt token failed (%s): %s %s" % (r.returncode, out, r.stderr.strip()))
    return out


_cli_works = None


def token_cli_available():
    global _cli_works
    if _cli_works is None:
        if os.environ.get("IMQTT_IM_PY_TOKENS"):
            _cli_works = False
        else:
            try:
                cli_token("probe")
                _cli_works = True
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                _cli_works = False
    return _cli_works


def token(sub, secret=SECRET, ttl=60, groups=None, acl=None):
    """A valid HS256 token: from `imqtt token` when it works, else minted
    here.  (IMQTT_IM_PY_TOKENS=1 forces the Python path.)"""
    if token_cli_available():
        acl = acl or {}
        return cli_token(sub, secret=secret, ttl=ttl, groups=groups,
                         acl_pub=acl.get("pub"), acl_sub=acl.get("sub"))
    return mint(sub, secret=secret, ttl=ttl, groups=groups, acl=acl)


# ---------------------------------------------------------------- configs

def im_config(auth="jwt", clientid=None, jwt=None, im=None, acl=None, secret=SECRET,
              leeway=0, password_file=None, listener_extra=None, **top):
    """Config with one IM listener (port/bind are set by the fixture).

    jwt: dict merged over {"alg": "HS256", "secret": secret, "leeway": leeway}.
    """
    listener = {"bind": "127.0.0.1", "port": 1883, "im": True}
    if auth is not None:
        listener["auth"] = auth
    if clientid is not None:
        listener["clientid"] = clientid
    if listener_extra:
        listener.update(listener_extra)
    cfg = {"listeners": [listener]}
    a = {}
    if auth == "jwt" or jwt is not None:
        j = {"alg": "HS256", "secret": secret, "leeway": leeway}
        if jwt:
            j.update(jwt)
        j = {k: v for k, v in j.items() if v is not None}
        a["jwt"] = j
    if password_file is not None:
        a["password_file"] = password_file
    if a:
        cfg["auth"] = a
    if im is not None:
        cfg["im"] = im
    if acl is not None:
        cfg["acl"] = acl
    cfg.update(top)
    return cfg


# ---------------------------------------------------------------- passwords

def pw_line(user, password, iterations=1000, salt=None):
    """One password-file line, docs/auth.md format."""
    salt = salt or os.urandom(16)
    h = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return "%s:$pbkdf2-sha512$%d$%s$%s" % (user, iterations, base64.b64encode(salt).decode(),
                                           base64.b64encode(h).decode())


def write_pwfile(path, entries, iterations=1000):
    with open(path, "w") as f:
        f.write("# imqtt test passwords\n")
        for user, pw in entries.items():
            f.write(pw_line(user, pw, iterations) + "\n")
    os.chmod(path, 0o600)
    return path


# ---------------------------------------------------------------- clients

SESSION = 3600  # v5 Session Expiry Interval of persistent IM devices


def im(clients, b, user, device, version=5, groups=None, persistent=False, tok=None,
       username="same", expect_rc=0, **kw):
    """Paho client connected as user@device with a token (CONNACK asserted).

    persistent: 3.1.1 CleanSession 0 / v5 Clean Start 0 + Session Expiry.
    username "same" sends the user name, None sends "" (empty).
    """
    if tok is None:
        tok = token(user, groups=groups)
    if username == "same":
        username = user
    elif username is None:
        username = ""
    if persistent:
        kw["clean"] = False
        if version == 5:
            kw["properties"] = props(PacketTypes.CONNECT, SessionExpiryInterval=SESSION)
    c = clients(b, "%s@%s" % (user, device), version=version, username=username,
                password=tok, auto_connect=False, **kw)
    c.connect(expect_rc=expect_rc)
    return c


def im_raw(b, client_id, tok, version=5, username="same", **kw):
    """Raw connection; returns (RawClient, CONNACK packet) without asserting."""
    user = client_id.split("@")[0]
    if username == "same":
        username = user
    c = m.RawClient(b.host, b.port, version=version)
    ack = c.connect(client_id, username=username, password=tok, **kw)
    return c, ack


def from_props(msg):
    """All `from` user properties of a Paho message (v5), as a list."""
    p = getattr(msg, "properties", None)
    ups = getattr(p, "UserProperty", None) if p is not None else None
    return [v for k, v in (ups or []) if k == "from"]


def drain(c, timeout=0.3):
    """All messages that arrive within timeout after the last one."""
    out = []
    while True:
        try:
            out.append(c.messages.get(timeout=timeout))
        except Exception:
            return out


def tp(msgs):
    """[(topic, payload)] of Paho messages."""
    return [(x.topic, x.payload) for x in msgs]


# ---------------------------------------------------------------- start-up

def start_expect_fail(config, timeout=5.0):
    """Run the broker on `config` (dict or raw text); it must exit non-zero
    on its own.  Returns (exit code, output)."""
    d = tempfile.mkdtemp(prefix="imqtt-im-bad-")
    path = os.path.join(d, "imqtt.json")
    if isinstance(config, dict):
        config = dict(config)
        config.setdefault("store", {"dir": os.path.join(d, "data")})
        text = json.dumps(config)
    else:
        text = config
    with open(path, "w") as f:
        f.write(text)
    argv = [IMQTT_BIN, "--config", path, "--port", str(free_port()), "--bind", "127.0.0.1"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    try:
        out, _ = p.communicate(timeout=timeout * SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError("broker started on a config it must refuse:\n%s\n%s"
                             % (text[:2000], out.decode("utf-8", "replace")[-2000:]))
    return p.returncode, out.decode("utf-8", "replace")
