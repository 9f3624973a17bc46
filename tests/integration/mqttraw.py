"""Raw-socket MQTT 3.1.1 / 5.0 helper for integration tests.

Builds packets byte by byte (so tests can send malformed or forbidden
input), reads and parses one packet at a time with a timeout, and checks
that the peer closed the connection.
"""
import socket
import struct
import time

# Packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
DISCONNECT, AUTH = 14, 15

NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
         6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK",
         10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
         14: "DISCONNECT", 15: "AUTH"}

# v5 property identifiers -> (name, type)
BYTE, U16, U32, VARINT, STR, BIN, PAIR = "byte", "u16", "u32", "varint", "str", "bin", "pair"
PROPS = {
    0x01: ("payload_format_indicator", BYTE),
    0x02: ("message_expiry_interval", U32),
    0x03: ("content_type", STR),
    0x08: ("response_topic", STR),
    0x09: ("correlation_data", BIN),
    0x0B: ("subscription_identifier", VARINT),
    0x11: ("session_expiry_interval", U32),
    0x12: ("assigned_client_identifier", STR),
    0x13: ("server_keep_alive", U16),
    0x15: ("authentication_method", STR),
    0x16: ("authentication_data", BIN),
    0x17: ("request_problem_information", BYTE),
    0x18: ("will_delay_interval", U32),
    0x19: ("request_response_information", BYTE),
    0x1A: ("response_information", STR),
    0x1C: ("server_reference", STR),
    0x1F: ("reason_string", STR),
    0x21: ("receive_maximum", U16),
    0x22: ("topic_alias_maximum", U16),
    0x23: ("topic_alias", U16),
    0x24: ("maximum_qos", BYTE),
    0x25: ("retain_available", BYTE),
    0x26: ("user_property", PAIR),
    0x27: ("maximum_packet_size", U32),
    0x28: ("wildcard_subscription_available", BYTE),
    0x29: ("subscription_identifier_available", BYTE),
    0x2A: ("shared_subscription_available", BYTE),
}
PROP_IDS = {name: (pid, typ) for pid, (name, typ) in PROPS.items()}


# ---------------------------------------------------------------- encoding

def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def mstr(s):
    """MQTT UTF-8 string (2-byte length prefix). Accepts bytes for raw input."""
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return u16(len(b)) + b


def props(items=None):
    """Encode a v5 property block. items: list of (name_or_id, value).

    Order is kept and duplicates are allowed (for malformed-input tests).
    user_property values are (key, value) pairs.
    """
    body = bytearray()
    for key, value in (items or []):
        if isinstance(key, int):
            pid, typ = key, PROPS[key][1] if key in PROPS else BYTE
        else:
            pid, typ = PROP_IDS[key]
        body += varint(pid)
        if typ == BYTE:
            body.append(value)
        elif typ == U16:
            body += u16(value)
        elif typ == U32:
            body += u32(value)
        elif typ == VARINT:
            body += varint(value)
        elif typ in (STR, BIN):
            body += mstr(value)
        elif typ == PAIR:
            body += mstr(value[0]) + mstr(value[1])
    return varint(len(body)) + bytes(body)


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + bytes(body)


def connect(client_id="", version=4, clean=True, keepalive=60, username=None,
            password=None, will=None, properties=None, proto_name="MQTT",
            reserved=False, level=None):
    """CONNECT. will = dict(topic, payload, qos, retain, properties)."""
    flags = 0
    if clean:
        flags |= 0x02
    if reserved:
        flags |= 0x01
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = mstr(proto_name) + bytes([level if level is not None else version, flags]) + u16(keepalive)
    if version == 5:
        body += props(properties)
    body += mstr(client_id)
    if will is not None:
        if version == 5:
            body += props(will.get("properties"))
        body += mstr(will["topic"]) + mstr(will.get("payload", b""))
    if username is not None:
        body += mstr(username)
    if password is not None:
        body += mstr(password)
    return packet(CONNECT, 0, body)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
            version=4, properties=None):
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = mstr(topic)
    if qos:
        body += u16(pid if pid is not None else 1)
    if version == 5:
        body += props(properties)
    if isinstance(payload, str):
        payload = payload.encode()
    return packet(PUBLISH, flags, body + payload)


def ack(ptype, pid, version=4, reason=None, properties=None):
    """PUBACK / PUBREC / PUBREL / PUBCOMP."""
    flags = 2 if ptype == PUBREL else 0
    body = u16(pid)
    if version == 5 and (reason is not None or properties):
        body += bytes([reason or 0])
        if properties:
            body += props(properties)
    return packet(ptype, flags, body)


def subscribe(pid, filters, version=4, properties=None):
    """filters: list of (filter, options_byte) or (filter, qos)."""
    body = u16(pid)
    if version == 5:
        body += props(properties)
    for f, opts in filters:
        body += mstr(f) + bytes([opts])
    return packet(SUBSCRIBE, 2, body)


def unsubscribe(pid, filters, version=4, properties=None):
    body = u16(pid)
    if version == 5:
        body += props(properties)
    for f in filters:
        body += mstr(f)
    return packet(UNSUBSCRIBE, 2, body)


def pingreq():
    return packet(PINGREQ, 0, b"")


def disconnect(version=4, reason=None, properties=None):
    if version == 5 and (reason is not None or properties):
        body = bytes([reason or 0])
        if properties:
            body += props(properties)
        return packet(DISCONNECT, 0, body)
    return packet(DISCONNECT, 0, b"")


# ---------------------------------------------------------------- decoding

class Packet:
    def __init__(self, first, body):
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = body
        self.name = NAMES.get(self.type, "?%d" % self.type)
        self.properties = {}
        self.user_properties = []
        self.reason = None
        self.reasons = []
        self.pid = None

    def __repr__(self):
        return "<%s flags=%x reason=%s pid=%s props=%s len=%d>" % (
            self.name, self.flags, self.reason, self.pid, self.properties, len(self.body))


def read_varint(buf, pos):
    mult, value = 1, 0
    for _ in range(4):
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos
        mult *= 128
    raise ValueError("malformed varint")


def parse_props(buf, pos, pkt):
    length, pos = read_varint(buf, pos)
    end = pos + length
    while pos < end:
        pid, pos = read_varint(buf, pos)
        name, typ = PROPS.get(pid, ("unknown_%x" % pid, BYTE))
        if typ == BYTE:
            val = buf[pos]; pos += 1
        elif typ == U16:
            val = struct.unpack_from(">H", buf, pos)[0]; pos += 2
        elif typ == U32:
            val = struct.unpack_from(">I", buf, pos)[0]; pos += 4
        elif typ == VARINT:
            val, pos = read_varint(buf, pos)
        elif typ in (STR, BIN):
            n = struct.unpack_from(">H", buf, pos)[0]
            val = bytes(buf[pos + 2:pos + 2 + n]); pos += 2 + n
            if typ == STR:
                val = val.decode("utf-8")
        else:  # PAIR
            n = struct.unpack_from(">H", buf, pos)[0]
            k = bytes(buf[pos + 2:pos + 2 + n]).decode(); pos += 2 + n
            n = struct.unpack_from(">H", buf, pos)[0]
            v = bytes(buf[pos + 2:pos + 2 + n]).decode(); pos += 2 + n
            pkt.user_properties.append((k, v))
            continue
        if name == "subscription_identifier":
            pkt.properties.setdefault(name, []).append(val)
        else:
            pkt.properties[name] = val
    return end


def parse(first, body, version):
    p = Packet(first, body)
    t = p.type
    try:
        if t == CONNACK:
            p.session_present = body[0] & 1
            p.reason = body[1]
            if version == 5 and len(body) > 2:
                parse_props(body, 2, p)
        elif t == PUBLISH:
            qos = (p.flags >> 1) & 3
            p.qos, p.retain, p.dup = qos, p.flags & 1, bool(p.flags & 8)
            n = struct.unpack_from(">H", body, 0)[0]
            p.topic = bytes(body[2:2 + n]).decode("utf-8")
            pos = 2 + n
            if qos:
                p.pid = struct.unpack_from(">H", body, pos)[0]
                pos += 2
            if version == 5:
                pos = parse_props(body, pos, p)
            p.payload = bytes(body[pos:])
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            p.pid = struct.unpack_from(">H", body, 0)[0]
            p.reason = body[2] if len(body) > 2 else 0
            if version == 5 and len(body) > 3:
                parse_props(body, 3, p)
        elif t in (SUBACK, UNSUBACK):
            p.pid = struct.unpack_from(">H", body, 0)[0]
            pos = 2
            if version == 5:
                pos = parse_props(body, pos, p)
            p.reasons = list(body[pos:])
        elif t in (DISCONNECT, AUTH):
            p.reason = body[0] if body else 0
            if version == 5 and len(body) > 1:
                parse_props(body, 1, p)
    except (IndexError, struct.error, ValueError) as e:
        raise AssertionError("cannot parse %s from broker: %r (%s)" % (p.name, bytes(body), e))
    return p


class Closed(Exception):
    pass


class RawClient:
    """One TCP connection speaking raw MQTT."""

    sent_disconnect = False  # (subclasses that make their own socket too)

    def __init__(self, host, port, version=4, timeout=5.0):
        self.version = version
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.sent_disconnect = False

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        # Close our side and wait (bounded) for the broker's FIN: it closes
        # only once it has handled our end (the DISCONNECT, or the lost
        # connection), so what the test does next (publish to the now
        # offline session, reconnect) comes after it even when the broker
        # runs several loop threads and the next connection lands on
        # another one.
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(5.0 if self.sent_disconnect else 2.0)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if data[:1] == b"\xe0":
            self.sent_disconnect = True
        self.sock.sendall(data)

    def try_send(self, data):
        """Send, ignoring errors caused by the peer having closed."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet from broker within timeout")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no packet from broker within timeout")
        except ConnectionResetError:
            raise Closed("connection reset")
        if not data:
            raise Closed("connection closed by broker")
        self.buf += data

    def recv(self, timeout=5.0):
        """Read one packet. Raises TimeoutError or Closed."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                try:
                    length, pos = read_varint(self.buf, 1)
                except IndexError:
                    length = None
                if length is not None and len(self.buf) >= pos + length:
                    first = self.buf[0]
                    body = bytes(self.buf[pos:pos + length])
                    del self.buf[:pos + length]
                    return parse(first, body, self.version)
            self._fill(deadline)

    def expect(self, ptype, timeout=5.0):
        p = self.recv(timeout)
        assert p.type == ptype, "expected %s, got %r" % (NAMES[ptype], p)
        return p

    def recv_or_closed(self, timeout=5.0):
        """Next packet, or None if the broker closed the connection."""
        try:
            return self.recv(timeout)
        except Closed:
            return None

    def expect_closed(self, timeout=5.0, allow_disconnect=None):
        """Assert the broker closes the connection within timeout.

        Packets received before the close are returned.  If allow_disconnect
        is a set of reason codes, a v5 DISCONNECT with one of them may come
        first; any other packet fails the assertion.  Returns the list of
        packets seen.
        """
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                p = self.recv(max(0.01, deadline - time.monotonic()))
            except Closed:
                return seen
            except TimeoutError:
                raise AssertionError("broker did not close the connection within %.1fs (seen %r)"
                                     % (timeout, seen))
            seen.append(p)
            if p.type == DISCONNECT and allow_disconnect is not None:
                assert p.reason in allow_disconnect, "DISCONNECT reason 0x%02x not in %s" % (
                    p.reason, [hex(r) for r in allow_disconnect])
                continue
            raise AssertionError("expected close, got %r" % p)

    def connect(self, client_id="", **kw):
        """Send CONNECT and return the CONNACK (asserts it is a CONNACK)."""
        kw.setdefault("version", self.version)
        self.send(connect(client_id, **kw))
        return self.expect(CONNACK)

    def assert_quiet(self, timeout=0.5):
        """Assert no packet arrives within timeout (connection stays open)."""
        try:
            p = self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError("unexpected packet %r" % p)


def open_connected(host, port, client_id="", version=4, **kw):
    c = RawClient(host, port, version=version)
    ack_ = c.connect(client_id, **kw)
    assert ack_.reason == 0, "CONNACK refused: %r" % ack_
    c.connack = ack_
    return c
