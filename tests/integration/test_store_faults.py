"""Store faults (issue 4): map full at store.max_size (0x97, nothing
acknowledged lost, accepting again after consumption), corrupt and
truncated store files (clear error, non-zero exit, no crash), and
--check-store."""
import os
import subprocess

import pytest

import mqttraw
from mqttraw import PUBACK, PUBLISH, SUBACK
from conftest import IMQTT_BIN, free_port
from store_helpers import StoreBroker, connect, drain

pytestmark = pytest.mark.imqtt_only


@pytest.fixture
def sb_factory():
    made = []

    def make(**kw):
        sb = StoreBroker(**kw)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.cleanup()


def test_map_full_refuses_then_recovers(sb_factory):
    sb = sb_factory(extra={"store": {"map_size": 262144, "max_size": 1048576},
                           "max_queued_messages": 100000})
    b = sb.start()
    sub = connect(b, "full-sub", version=5)
    sub.send(mqttraw.subscribe(1, [("f/t", 1)], version=5))
    assert sub.expect(SUBACK).reasons == [1]
    sub.close()
    pub = connect(b, "full-pub", version=5, clean=True)
    payload = b"x" * 8000
    acked = []
    refused = 0
    for i in range(1, 400):
        pub.send(mqttraw.publish("f/t", payload + b"%d" % i, qos=1, pid=i, version=5))
        ack = pub.expect(PUBACK)
        assert ack.pid == i
        if ack.reason == 0:
            acked.append(i)
        else:
            assert ack.reason == 0x97, ack
            refused += 1
            if refused >= 3:
                break
    assert refused >= 3 and len(acked) > 10, (len(acked), refused)
    # QoS 0 keeps flowing while the store is full.
    look = connect(b, "full-look", clean=True)
    look.send(mqttraw.subscribe(1, [("f/zero", 0)]))
    look.expect(SUBACK)
    pub.send(mqttraw.publish("f/zero", b"q0", qos=0, version=5))
    assert look.expect(PUBLISH).payload == b"q0"
    # A 3.1.1 publisher cannot be told "no": its connection is closed.
    old = connect(b, "full-v3", clean=True)
    old.send(mqttraw.publish("f/t", b"v3", qos=1, pid=1))
    old.expect_closed()
    # Nothing acknowledged is lost: the subscriber gets every one of them.
    sub = connect(b, "full-sub", version=5)
    got = drain(sub, len(acked), version=5, timeout=10)
    nums = [int(p.payload[8000:]) for p in got]
    assert nums == acked
    sub.assert_quiet(0.5)
    # Consumed: the store takes publications again.
    ok = False
    for i in range(500, 520):
        pub.send(mqttraw.publish("f/t", b"again", qos=1, pid=i, version=5))
        if pub.expect(PUBACK).reason == 0:
            ok = True
            break
    assert ok, "still refusing after the queue was consumed"
    assert "refusing QoS 1/2" in sb.b.stderr_text()
    for c in (pub, sub, look):
        c.close()
    sb.stop()
    rc, out = sb.check_store()
    assert rc == 0, out


def start_fails(sb):
    os.makedirs(os.path.join(sb.tmp, "bad"), exist_ok=True)
    conf = os.path.join(sb.tmp, "bad", "imqtt.json")
    import json
    with open(conf, "w") as f:
        json.dump(dict(sb.config, listeners=[{"bind": "127.0.0.1", "port": free_port()}]), f)
    r = subprocess.run([IMQTT_BIN, "--config", conf], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stderr


def make_store_with_data(sb):
    b = sb.start()
    c = connect(b, "data-sub")
    c.send(mqttraw.subscribe(1, [("d/t", 1)]))
    c.expect(SUBACK)
    c.close()
    p = connect(b, "data-pub", clean=True)
    for i in range(1, 200):
        p.send(mqttraw.publish("d/t", os.urandom(2000), qos=1, pid=i))
        p.expect(PUBACK)
    p.close()
    sb.stop()


def test_corrupt_store_file(sb_factory):
    sb = sb_factory()
    os.makedirs(sb.data, mode=0o700)
    with open(os.path.join(sb.data, "data.mdb"), "wb") as f:
        f.write(os.urandom(65536))
    rc, err = start_fails(sb)
    assert rc not in (0, None) and rc > 0, (rc, err)
    assert "store" in err and ("corrupt" in err or "Invalid" in err or
                               "cannot open" in err), err
    assert "Sanitizer" not in err, err
    rc, out = sb.check_store()
    assert rc == 1, out


def test_truncated_store_file(sb_factory):
    sb = sb_factory()
    make_store_with_data(sb)
    path = os.path.join(sb.data, "data.mdb")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 3)
    rc, err = start_fails(sb)
    assert rc > 0, (rc, err)
    assert "truncated" in err, err
    assert "Sanitizer" not in err, err
    rc, out = sb.check_store()
    assert rc == 1, out


def test_corrupt_record(sb_factory):
    """A page whose bytes were overwritten (bit rot): the broker refuses to
    start or stops with an error, never serves from it silently."""
    sb = sb_factory()
    make_store_with_data(sb)
    path = os.path.join(sb.data, "data.mdb")
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        # Keep the two meta pages, garble every other page's header.
        for off in range(2 * 4096, len(data), 4096):
            data[off:off + 16] = os.urandom(16)
        f.seek(0)
        f.write(data)
    rc, err = start_fails(sb)
    assert rc > 0, (rc, err)
    assert "Sanitizer" not in err, err
