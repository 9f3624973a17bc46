#!/usr/bin/python3
"""A terminal chat client for imqtt's IM layer (MQTT 5, paho-mqtt 1.6).

    chat.py --host 127.0.0.1 --port 1883 --user alice --device phone --token TOKEN
    chat.py --user alice --device phone --secret SECRET --groups friends   # mints its own token
    chat.py --config examples/im.json --user alice --device phone --groups friends
                          # port and secret from the broker's config (local demo)

Type:
    @bob hello        send "hello" to bob        (publishes to p2p/talk/bob)
    #friends hi all   send to the group friends  (publishes to g/talk/friends)
    /who bob          show which devices of bob are online (p2p/presence/bob)
    /history bob      the last 20 messages with bob (/history #friends: a group)
    /read bob 42      tell bob you read his message 42 (p2p/receipt/bob)
    /help, /quit

Incoming lines:
    [bob@phone] hello                       bob wrote to you
    [alice@laptop -> @bob] (you, on laptop) hi   you wrote that on another device
    [#friends carol@pc] hi all              a group message
    * bob: online on laptop, phone          presence
    * delivered to bob@pc: 42               receipts (docs/im.md, Receipts;
    * read by bob@pc: 42                    delivered ones when the listener
    * (you, on laptop) read @bob: 42        has im_receipts.delivery on)

Everything else is the broker's work (docs/im.md): it subscribes this
device to its inbox p2p/talk/<user>, copies what you send from another
device to this one, never echoes your own message back, and stamps each
message with the user properties `from` = user@device of its sender,
`id` (per conversation) and `ts`; a message whose id was already shown is
not shown again. With --v311 the client speaks MQTT 3.1.1 and reads the
same from the envelope (examples/envelope.py; the listener or the token
must ask for it).
Each device keeps a persistent session, so what arrives while it is
offline is printed when it comes back.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from envelope import parse as parse_envelope, Dedup  # noqa: E402
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes

SESSION_EXPIRY = 7 * 24 * 3600  # keep this device's queue for a week offline


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(user, secret, ttl, groups):
    """HS256 JWT as `imqtt token --sub USER --secret S --ttl T --groups G`
    would make it.  For local use only: in production a server mints
    tokens and the secret never reaches the device."""
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + ttl}
    if groups:
        claims["groups"] = groups
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64url(sig))


def token_claims(token):
    """The claims of a token, unverified (only to learn our groups)."""
    try:
        seg = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    except (IndexError, ValueError):
        return {}


def from_config(path):
    """(host, port, secret) of a broker config's first IM listener, for a
    local demo: only who can read the broker's config can do this."""
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit("chat.py: --config %s: %s" % (path, e))
    lst = [l for l in cfg.get("listeners", []) if l.get("im")]
    if not lst:
        raise SystemExit("chat.py: --config %s: no listener with \"im\": true" % path)
    jwt = cfg.get("auth", {}).get("jwt", {})
    if not jwt.get("alg", "HS256").startswith("HS"):
        raise SystemExit("chat.py: --config %s: the broker checks %s tokens, which need a "
                         "private key: pass --token" % (path, jwt["alg"]))
    secret = jwt.get("secret")
    if secret is None and jwt.get("secret_file"):
        with open(jwt["secret_file"]) as f:
            secret = f.read()
        secret = secret[:-1] if secret.endswith("\n") else secret
    if not secret:
        raise SystemExit("chat.py: --config %s: no auth.jwt.secret to mint a token with" % path)
    host = lst[0].get("bind", "127.0.0.1")
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return host, lst[0].get("port", 1883), secret


class Client(mqtt.Client):
    """paho-mqtt 1.6 reads the reason code of a server's DISCONNECT only
    when properties follow it (remaining length > 2), so a plain DISCONNECT
    0x8E "session taken over" reaches on_disconnect as "connection lost"
    (7) and the client reconnects at once, taking the session back: two
    windows with the same user@device then kick each other once a second.
    Read the code ourselves when paho would drop it."""

    def _handle_disconnect(self):
        pkt = self._in_packet.get("packet", b"")
        if self._protocol == mqtt.MQTTv5 and 1 <= len(pkt) <= 2:
            rc = ReasonCodes(PacketTypes.DISCONNECT, identifier=pkt[0])
            self._loop_rc_handle(rc, None)
            return mqtt.MQTT_ERR_SUCCESS
        return super()._handle_disconnect()


class Chat:
    def __init__(self, args):
        self.args = args
        self.user, self.device = args.user, args.device
        self.me = "%s@%s" % (self.user, self.device)
        self.token = args.token or mint_token(self.user, args.secret, args.ttl, args.groups)
        self.failed = None          # why we stopped for good (exit status 1)
        claims = token_claims(self.token)
        self.groups = args.groups or claims.get("groups", [])
        self.presence = {}          # user -> sorted device list
        self.watching = set()       # users whose presence we subscribed
        self.lock = threading.Lock()
        self.v311 = args.v311
        self.dedup = Dedup()
        if self.v311:
            self.c = Client(client_id=self.me, clean_session=args.clean,
                                 protocol=mqtt.MQTTv311)
        else:
            self.c = Client(client_id=self.me, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(self.user, self.token)
        self.c.on_connect = self.on_connect
        self.c.on_disconnect = self.on_disconnect
        self.c.on_message = self.on_message
        self.c.reconnect_delay_set(1, 30)

    # ------------------------------------------------------------ output
    def say(self, line):
        with self.lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    # ------------------------------------------------------------ MQTT side
    def connect(self):
        if self.v311:
            self.c.connect(self.args.host, self.args.port, keepalive=60)
        else:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if self.args.clean else SESSION_EXPIRY
            self.c.connect(self.args.host, self.args.port, keepalive=60,
                           clean_start=self.args.clean, properties=props)
        self.c.loop_start()

    def on_connect(self, c, userdata, flags, rc, properties=None):
        if rc != 0:
            self.say("! refused: %s (0x%02x)" % (rc, rc.value if hasattr(rc, "value") else rc))
            if getattr(rc, "value", rc) in (0x85, 0x86, 0x87):
                self.say("! check --user/--device and the token (sub, exp, secret)")
                self.stop(c, "refused by the broker")
            return
        resumed = flags.get("session present")
        self.say("* connected as %s%s; the inbox p2p/talk/%s is subscribed by the broker"
                 % (self.me, " (session resumed)" if resumed else "", self.user))
        # Groups and presence are ours to subscribe (the inbox is not).
        subs = [("g/talk/%s" % g, 1) for g in self.groups]
        subs += [("p2p/presence/%s" % u, 1) for u in sorted(self.watching)]
        if subs:
            c.subscribe(subs)

    def on_disconnect(self, c, userdata, rc, properties=None):
        code = rc.value if hasattr(rc, "value") else rc
        if code == 0xA0:
            if self.args.secret:
                self.token = mint_token(self.user, self.args.secret, self.args.ttl, self.args.groups)
                c.username_pw_set(self.user, self.token)
                self.say("* token expired: minted a new one, reconnecting")
            else:
                self.say("! token expired (DISCONNECT 0xA0): restart with a new --token")
                self.stop(c, "token expired")
        elif code == 0x8E:
            # Reconnecting would take the session back from the newer
            # client, which would then do the same: never retry this.
            self.say("! session taken over (DISCONNECT 0x8E): another client connected as %s; "
                     "this one stops without reconnecting. Each window needs its own "
                     "--device (e.g. --device laptop)." % self.me)
            self.stop(c, "session taken over")
        elif code != 0:
            self.say("* disconnected (%s), reconnecting" % rc)

    def stop(self, c, why):
        """Give up for good: no reconnect (disconnect() ends paho's retry
        loop) and end the input loop, which may be blocked reading stdin,
        so the process exits with status 1."""
        self.failed = why
        c.disconnect()
        os.kill(os.getpid(), signal.SIGINT)

    def on_message(self, c, userdata, msg):
        if msg.topic.startswith("$im/history/reply"):
            self.show_history(msg.payload)
            return
        payload, sender, msg_id = msg.payload, None, None
        ups = getattr(msg.properties, "UserProperty", None) or [] if not self.v311 else []
        for k, v in ups:
            if k == "from":
                sender = v
            elif k == "id":
                msg_id = int(v)
        if self.v311:
            head, payload = parse_envelope(msg.payload)
            if head:
                sender, msg_id = head["from"], head.get("id")
        if self.receipt(msg, ups, payload, sender):
            return
        if msg_id is not None and not self.dedup.fresh(msg.topic, msg_id):
            return  # a duplicate (QoS 1 after a reconnect): shown already
        text = payload.decode("utf-8", "replace")
        sender = sender or "?"
        s_user, _, s_dev = sender.partition("@")
        mine = s_user == self.user
        t = msg.topic.split("/")
        if t[:2] == ["p2p", "talk"] and len(t) == 3:
            peer = t[2]
            if peer == self.user and not mine:
                self.say("[%s] %s" % (sender, text))
            elif peer == self.user:
                self.say("[%s -> @%s] (you, on %s) note to self: %s" % (sender, peer, s_dev, text))
            else:  # a copy of what we wrote to peer on another device
                self.say("[%s -> @%s] (you, on %s) %s" % (sender, peer, s_dev, text))
        elif t[:2] == ["g", "talk"] and len(t) == 3:
            tail = " (you, on %s)" % s_dev if mine else ""
            self.say("[#%s %s]%s %s" % (t[2], sender, tail, text))
        elif t[:2] == ["p2p", "presence"] and len(t) == 3:
            try:
                p = json.loads(msg.payload)
                devices = sorted(p.get("devices", []))
            except ValueError:
                return
            self.presence[t[2]] = devices
            self.show_presence(t[2])
        else:
            self.say("[%s on %s] %s" % (sender, msg.topic, text))

    def receipt(self, msg, ups, payload, sender):
        """Show a receipt (MQTT 5: the broker's `receipt` property; 3.1.1:
        an envelope without an id around the receipt's JSON). True if it
        was one."""
        kind = dict(ups).get("receipt")
        if self.v311 and sender and payload.startswith(b'{"receipt"'):
            head, _ = parse_envelope(msg.payload)
            if head is not None and "id" not in head:
                kind = "receipt"
        if not kind:
            return False
        try:
            r = json.loads(payload)
        except ValueError:
            return True
        who, ident = r.get("by", sender), r.get("id")
        if r.get("receipt") == "delivered":
            self.say("* delivered to %s: %s" % (who, ident))
        elif who.partition("@")[0] == self.user:
            self.say("* (you, on %s) read @%s: %s" % (
                who.partition("@")[2], msg.topic.split("/")[-1], ident))
        else:
            self.say("* read by %s: %s" % (who, ident))
        return True

    def show_history(self, raw):
        try:
            r = json.loads(raw)
        except ValueError:
            return
        if "error" in r:
            self.say("! history: %s %s" % (r["error"], r.get("detail", "")))
            return
        where = "@" + r["peer"] if "peer" in r else "#" + r.get("group", "?")
        self.say("* history with %s (%d messages%s):" % (
            where, len(r["messages"]), ", older ones exist" if r.get("more") else ""))
        for m in r["messages"]:
            when = time.strftime("%H:%M:%S", time.localtime(m["ts"] / 1000))
            text = m.get("payload")
            if text is None:
                text = "<%d bytes>" % len(base64.b64decode(m.get("payload_b64", "")))
            self.say("  %s [%s] %s" % (when, m["from"], text))

    def show_presence(self, user):
        devices = self.presence.get(user)
        if devices is None:
            self.say("* %s: unknown (never connected?)" % user)
        elif devices:
            self.say("* %s: online on %s" % (user, ", ".join(devices)))
        else:
            self.say("* %s: offline" % user)

    # ------------------------------------------------------------ input side
    def send(self, topic, text):
        info = self.c.publish(topic, text.encode(), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.say("! not sent (%s): not connected?" % mqtt.error_string(info.rc))

    def handle(self, line):
        line = line.strip()
        if not line:
            return True
        if line in ("/quit", "/exit"):
            return False
        if line.startswith("/who"):
            parts = line.split()
            if len(parts) != 2:
                self.say("usage: /who USER")
            elif parts[1] in self.watching:
                self.show_presence(parts[1])
            else:
                # the broker keeps the last presence retained: it arrives at once
                self.watching.add(parts[1])
                self.c.subscribe("p2p/presence/%s" % parts[1], 1)
            return True
        if line.startswith("/history"):
            parts = line.split()
            if len(parts) != 2 or len(parts[1]) < 2:
                self.say("usage: /history USER | /history #GROUP")
                return True
            who = parts[1]
            req = {"group": who[1:]} if who.startswith("#") else {"peer": who.lstrip("@")}
            req["limit"] = 20
            self.c.publish("$im/history", json.dumps(req).encode(), qos=1)
            return True
        if line.startswith("/read"):
            parts = line.split()
            if len(parts) != 3 or not parts[2].isdigit():
                self.say("usage: /read USER ID")
                return True
            self.c.publish("p2p/receipt/%s" % parts[1].lstrip("@"),
                           json.dumps({"id": int(parts[2])}).encode(), qos=1)
            return True
        if line.startswith("/help"):
            self.say(__doc__.split("Incoming")[0].split("Type:")[1].rstrip())
            return True
        head, _, text = line.partition(" ")
        if head.startswith("@") and len(head) > 1 and text:
            self.send("p2p/talk/%s" % head[1:], text)
        elif head.startswith("#") and len(head) > 1 and text:
            self.send("g/talk/%s" % head[1:], text)
        else:
            self.say("? @user text | #group text | /who user | /quit")
        return True

    def run(self):
        self.connect()
        try:
            for line in sys.stdin:
                if not self.handle(line):
                    break
        except KeyboardInterrupt:
            pass
        self.c.disconnect()
        self.c.loop_stop()
        if self.failed:
            sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description="imqtt example chat client (MQTT 5)")
    ap.add_argument("--host", default=None, help="default 127.0.0.1, or --config's listener")
    ap.add_argument("--port", type=int, default=None, help="default 1883, or --config's listener")
    ap.add_argument("--user", required=True)
    ap.add_argument("--device", required=True)
    key = ap.add_mutually_exclusive_group(required=True)
    key.add_argument("--token", help="a JWT for --user (e.g. from `imqtt token`)")
    key.add_argument("--secret", help="the broker's HS256 secret: mint a token here (local use)")
    key.add_argument("--config", help="a broker config (e.g. examples/im.json): connect to its "
                     "first IM listener with a token minted from its secret (local use)")
    ap.add_argument("--groups", type=lambda s: [g for g in s.split(",") if g], default=None,
                    help="groups to join, comma-separated (default: the token's groups claim)")
    ap.add_argument("--ttl", type=int, default=3600, help="lifetime of a minted token, seconds")
    ap.add_argument("--clean", action="store_true", help="no persistent session for this device")
    ap.add_argument("--v311", action="store_true",
                    help="speak MQTT 3.1.1 (sender and id from the envelope)")
    args = ap.parse_args()
    if args.token is not None and not args.token.strip():
        # The usual cause: `--token "$ALICE"` in a terminal where ALICE was
        # never set (each terminal has its own shell variables).
        ap.error("--token is empty: is the variable you passed (e.g. $ALICE) set in this "
                 "terminal? Mint one with `build/imqtt token --sub %s --secret SECRET`, or "
                 "pass --secret SECRET to let chat.py mint it" % args.user)
    if args.secret is not None and not args.secret:
        ap.error("--secret is empty: is the variable you passed (e.g. $SECRET) set in this "
                 "terminal?")
    host, port = "127.0.0.1", 1883
    if args.config:
        host, port, args.secret = from_config(args.config)
    args.host = args.host or host
    args.port = args.port or port
    Chat(args).run()


if __name__ == "__main__":
    main()
