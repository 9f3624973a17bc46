"""BAD_INPUTS row 21: keys crafted to collide in the broker's hash tables.

The keys here collide in the hash imqtt used before its tables were keyed
(broker/hmap.c until issue 14: an unkeyed multiply-xorshift over 8-byte
words, reimplemented below). They are built as a Joux multicollision: from
the hash state after a fixed 8-byte prefix, each stage finds two different
16-byte printable blocks that lead to the same state, so k stages give 2^k
keys of one length with the same 64-bit state and therefore the same hash.
In an unkeyed table all of them share one probe run and inserting the n-th
walks the n-1 before it: n^2/2 key comparisons.

The broker keys its tables with SipHash under a random per-process key, so
the crafted keys are as spread as random ones. The test subscribes a
client to half the crafted keys as filters (exact filters live in one hash
map keyed by the filter text) and publishes to the other half, so every
PUBLISH is an unsuccessful lookup that walks the probe run; the same with
random keys of the same shape is the control. The two times are compared
as a ratio with a wide margin, not an absolute time, so a slow or loaded
machine does not make it flaky (before the fix the crafted run took over
30 times the random one, see docs/reliability.md).
"""
import random
import time

import pytest

from conftest import raw, assert_alive
import mqttraw

M64 = (1 << 64) - 1
PREFIX = b"hflood/x"  # 8 bytes: the stages start on a word boundary
STAGES = 13           # 8192 keys: 4096 subscribed, 4096 published to
REPEAT = 16           # PUBLISHes per unsubscribed key
PER_PACKET = 256      # filters per SUBSCRIBE, well below max_packet_size
# Printable bytes that are legal inside a topic level ('+', '#', '/' are
# below 0x30 and skipped; NUL never appears).
ALLOWED = bytes(b for b in range(0x30, 0x7f))
ALLOWED_SET = frozenset(ALLOWED)


def old_words_state(h, data):
    """The old hmap_hash's loop over full 8-byte words from state h."""
    for off in range(0, len(data), 8):
        v = int.from_bytes(data[off:off + 8], "little")
        h = ((h ^ v) * 0xbf58476d1ce4e5b9) & M64
        h ^= h >> 31
    return h


def old_mix(x):
    x ^= x >> 32
    x = (x * 0xd6e8feb86659fd93) & M64
    x ^= x >> 32
    x = (x * 0xd6e8feb86659fd93) & M64
    x ^= x >> 32
    return x


def old_hmap_hash(key):
    """broker/hmap.c's hmap_hash before it was keyed (lengths that are a
    multiple of 8: no tail word)."""
    assert len(key) % 8 == 0
    h = 0x9e3779b97f4a7c15 ^ len(key)
    return old_mix(old_words_state(h, key)) & 0xffffffff


def colliding_block_pair(rng, h):
    """Two different printable 16-byte blocks b, b2 with the same state
    after them from state h: pick b; the state after b's second word is a
    bijection of (state after first word) ^ (second word), so b2 collides
    when its second word is that xor made printable by choosing b2's first
    word (about 2^-10 of the tries)."""
    def word(rng):
        return bytes(rng.choice(ALLOWED) for _ in range(8))

    w1 = word(rng)
    w2 = word(rng)
    target = old_words_state(h, w1) ^ int.from_bytes(w2, "little")
    while True:
        u1 = word(rng)
        if u1 == w1:
            continue
        u2 = (old_words_state(h, u1) ^ target).to_bytes(8, "little")
        if ALLOWED_SET.issuperset(u2):
            return w1 + w2, u1 + u2


def crafted_keys(stages, seed=14):
    rng = random.Random(seed)
    length = len(PREFIX) + 16 * stages
    h = old_words_state(0x9e3779b97f4a7c15 ^ length, PREFIX)
    pairs = []
    for _ in range(stages):
        a, b = colliding_block_pair(rng, h)
        pairs.append((a, b))
        h = old_words_state(h, a)
    keys = []
    for i in range(1 << stages):
        keys.append(PREFIX + b"".join(p[(i >> s) & 1] for s, p in enumerate(pairs)))
    return keys


def random_keys(n, stages, seed=15):
    rng = random.Random(seed)
    return [PREFIX + bytes(rng.choice(ALLOWED) for _ in range(16 * stages))
            for _ in range(n)]


def test_crafted_keys_collide_in_the_old_hash():
    """The test's own premise: every crafted key has one old hash."""
    keys = crafted_keys(6)
    assert len(set(keys)) == 64
    assert len({old_hmap_hash(k) for k in keys}) == 1
    assert len({old_hmap_hash(k) for k in random_keys(64, 6)}) == 64


def subscribe_all(c, keys):
    packets = []
    for i in range(0, len(keys), PER_PACKET):
        chunk = [(k.decode(), 0) for k in keys[i:i + PER_PACKET]]
        packets.append(mqttraw.subscribe(1 + i // PER_PACKET, chunk))
    for pkt in packets:
        c.send(pkt)
    for _ in packets:
        suback = c.expect(mqttraw.SUBACK, timeout=120)
        assert suback.reasons == [0] * len(suback.reasons), suback


def publish_time(b, subscribed, published):
    """Subscribe one client to `subscribed`, then time PUBLISHes (QoS 0) to
    each of `published` (topics nobody subscribed to, so every one is an
    unsuccessful lookup in the exact-filter map, which walks the whole
    probe run) up to the PINGRESP that follows them."""
    c = raw(b, version=4, keepalive=0)
    try:
        subscribe_all(c, subscribed)
        data = b"".join(mqttraw.publish(k.decode(), b"x") for k in published)
        t0 = time.monotonic()
        c.send(data + mqttraw.pingreq())
        c.expect(mqttraw.PINGRESP, timeout=120)
        elapsed = time.monotonic() - t0
        c.send(mqttraw.disconnect())
        return elapsed
    finally:
        c.close()


@pytest.mark.imqtt_only
def test_colliding_topics_cost_what_random_ones_cost(broker):
    keys = crafted_keys(STAGES)
    # Stage 0's choice splits the keys: one half is subscribed, the other
    # half (same old hash, no subscriber) is published to, REPEAT times.
    subscribed = keys[0::2]
    published = keys[1::2] * REPEAT
    rnd = random_keys(len(keys), STAGES)
    b = broker({"max_packet_size": 1 << 20})
    publish_time(b, random_keys(256, STAGES, seed=16), random_keys(256, STAGES, seed=17))
    t_random = publish_time(b, rnd[0::2], rnd[1::2] * REPEAT)
    t_crafted = publish_time(b, subscribed, published)
    # Keyed: both about the same. Unkeyed (before the fix): each of the
    # 65,536 PUBLISHes walked all 4096 subscribed filters, 268M
    # comparisons, over 30 times the random case (docs/reliability.md).
    assert t_crafted < 3 * t_random + 0.15, (t_crafted, t_random)
    assert_alive(b)
