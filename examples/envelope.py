#!/usr/bin/python3
"""The imqtt IM envelope for MQTT 3.1.1 devices (docs/im.md, Envelope).

A 3.1.1 device that opted in (listener "im_envelope": true, or a token
with "envelope": true) receives every chat message as

    {"from":"alice@phone","id":4294967301,"ts":1764806400123}\\n<payload>

one line of JSON (no newline inside it), a newline byte, then the payload
exactly as the sender published it. The same few lines in any language:

    Java:  int nl = indexOf(bytes, (byte) '\\n');
           JSONObject h = new JSONObject(new String(bytes, 0, nl, UTF_8));
           byte[] payload = Arrays.copyOfRange(bytes, nl + 1, bytes.length);
    JS:    const nl = buf.indexOf(10);
           const h = JSON.parse(buf.subarray(0, nl).toString());
           const payload = buf.subarray(nl + 1);

`id` is absent on topics outside the conversations (p2p/talk/, g/talk/),
and the envelope is absent on messages the broker did not stamp (presence,
history answers). Drop a message whose id you already have: after a
reconnect or a broker restart QoS 1 may deliver it twice; the id does not
change.

    python3 examples/envelope.py        # runs the self-test below
"""
import json


def parse(payload):
    """(header dict, payload bytes) of an enveloped message, or
    (None, payload) when the message carries no envelope."""
    if not payload.startswith(b'{"from":'):
        return None, payload
    nl = payload.find(b"\n")
    if nl < 0:
        return None, payload
    try:
        head = json.loads(payload[:nl].decode("utf-8"))
    except ValueError:
        return None, payload
    return head, payload[nl + 1:]


class Dedup:
    """Remembers the last ids per conversation topic to drop duplicates
    (ids only grow within a conversation, so a window is enough)."""

    def __init__(self, window=1024):
        self.window = window
        self.seen = {}

    def fresh(self, topic, msg_id):
        s = self.seen.setdefault(topic, [])
        if msg_id in s:
            return False
        s.append(msg_id)
        del s[:-self.window]
        return True


if __name__ == "__main__":
    h, p = parse(b'{"from":"alice@phone","id":7,"ts":1}\nhi\nthere')
    assert h == {"from": "alice@phone", "id": 7, "ts": 1} and p == b"hi\nthere"
    assert parse(b"plain") == (None, b"plain")
    d = Dedup()
    assert d.fresh("p2p/talk/bob", 7) and not d.fresh("p2p/talk/bob", 7)
    print("ok")
