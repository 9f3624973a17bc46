// IM devices on MQTT.js over WebSocket, driven by
// tests/integration/test_im_mqttjs.py: each scenario connects its devices
// (client id user@device, user name user, the JWT as password), does what
// the scenario says and prints one JSON line of what every device saw; the
// test asserts on it. Bounded: every scenario gives up after `timeout_ms`.
// usage: node im.js SCENARIO JSON_ARGS
//   JSON_ARGS: {"url": "ws://127.0.0.1:PORT/mqtt", "tokens": {"alice": JWT, ...},
//               "ca": CA_FILE (wss://), ...scenario options}
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const scenario = process.argv[2];
const args = JSON.parse(process.argv[3] || '{}');
const clients = [];
let finished = false;

function finish(result) {
  if (finished) return;
  finished = true;
  // exit only once the line is out: a pipe write past its buffer is
  // asynchronous, and process.exit() would cut the result short
  process.stdout.write(JSON.stringify(result) + '\n', () => {
    let left = clients.length;
    const exit = () => process.exit(0);
    if (!left) exit();
    for (const c of clients) c.end(true, () => { if (--left === 0) exit(); });
    setTimeout(exit, 1000).unref();
  });
}

const timer = setTimeout(() => finish({ error: 'timeout', scenario }), args.timeout_ms || 20000);
timer.unref();

// user properties as MQTT.js gives them: a value, or an array when the
// name is repeated; kept as they are so the test can see duplicates.
function seen(topic, payload, packet) {
  const p = packet.properties || {};
  return {
    topic,
    payload: payload.toString('utf8'),
    payload_b64: payload.toString('base64'),
    qos: packet.qos,
    dup: !!packet.dup,
    up: p.userProperties || null,
    corr: p.correlationData ? p.correlationData.toString('utf8') : null,
  };
}

// Connect user@device; resolves with the client once CONNACK arrived.
// onMessage is attached before connecting: a resumed session's queue can
// come in the same read as the CONNACK, before the promise resolves.
function device(id, opts, onMessage) {
  const user = id.split('@')[0];
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(args.url, Object.assign({
      clientId: id, username: user, password: args.tokens[user],
      protocolVersion: 5, clean: true, reconnectPeriod: 0, connectTimeout: 5000,
      ca: args.ca ? fs.readFileSync(args.ca) : undefined,  // wss:// with the test CA
    }, opts || {}));
    clients.push(c);
    c.got = [];
    c.on('message', (t, m, p) => c.got.push(seen(t, m, p)));
    if (onMessage) c.on('message', onMessage);
    c.once('connect', (ack) => { c.connack = ack; resolve(c); });
    c.once('error', (e) => reject(new Error(id + ': ' + e)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function publish(c, topic, payload, opts) {
  return new Promise((resolve, reject) => {
    c.publish(topic, payload, Object.assign({ qos: 1 }, opts || {}), (err, pkt) => {
      if (err) reject(new Error(topic + ': ' + err)); else resolve(pkt);
    });
  });
}

// Wait until pred() or `ms` passed; then a little longer for strays.
async function until(pred, ms, settle) {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await sleep(10);
  await sleep(settle === undefined ? 300 : settle);
  return pred();
}

const isChat = (x) => x.topic.startsWith('p2p/talk/');

const scenarios = {
  // (a) alice@phone writes to bob: bob@laptop gets them with from/id/ts,
  // alice@laptop the sync copy, alice@phone nothing back.
  async direct() {
    const n = args.n || 20;
    // alias: alice's MQTT.js sends topic aliases after the first PUBLISH
    // (empty topic), bob's accepts aliases from the broker
    const alias = !!args.alias;
    const bobProps = {};
    if (alias) bobProps.topicAliasMaximum = 10;
    if (args.recv_max) bobProps.receiveMaximum = args.recv_max;  // broker's flow control
    const bob = await device('bob@laptop', { properties: bobProps });
    const lap = await device('alice@laptop');
    const phone = await device('alice@phone', alias ? { autoAssignTopicAlias: true } : {});
    // PUBLISH packets that carry an alias and no topic, each way
    let aliasSent = 0, aliasReceived = 0;
    phone.on('packetsend', (p) => {
      if (p.cmd === 'publish' && p.topic === '' && p.properties && p.properties.topicAlias) aliasSent++;
    });
    bob.on('packetreceive', (p) => {
      if (p.cmd === 'publish' && p.properties && p.properties.topicAlias && !p.topic) aliasReceived++;
    });
    for (let i = 0; i < n; i++) {
      await publish(phone, 'p2p/talk/bob', 'm' + i, {
        properties: { userProperties: { id: '1', ts: '2', from: 'mallory@x', app: 'yes' } },
      });
    }
    await until(() => bob.got.filter(isChat).length >= n && lap.got.filter(isChat).length >= n, 5000);
    return { bob: bob.got, alice_laptop: lap.got, alice_phone: phone.got,
             alias_sent: aliasSent, alias_received: aliasReceived };
  },

  // (b) a QoS 1 redelivery: bob@laptop (persistent session) gets n
  // messages but its PUBACKs for the last `unacked` are lost (as when the
  // app dies before acknowledging), the connection drops, bob reconnects
  // with clean=false and gets those again (DUP, same ids) plus m more;
  // the app drops ids it has seen.
  async dedup() {
    const n = args.n || 10, unacked = args.unacked || 5, more = args.more || 5;
    const persist = { clean: false, properties: { sessionExpiryInterval: 600 } };
    const phone = await device('alice@phone');
    let bob = await device('bob@laptop', persist);
    const raw = [];
    let dropAcks = false, dropped = 0;
    const send = bob._sendPacket.bind(bob);
    bob._sendPacket = (pkt, cb, ...rest) => {
      if (pkt.cmd === 'puback' && dropAcks) { dropped++; if (cb) cb(); return; }
      return send(pkt, cb, ...rest);
    };
    bob.on('message', (t, m, p) => {
      if (!isChat(seen(t, m, p))) return;
      raw.push(Object.assign(seen(t, m, p), { conn: 1 }));
      // its PUBACK is sent right after this event: those of the last
      // `unacked` are lost
      dropAcks = raw.length > n - unacked;
    });
    for (let i = 0; i < n; i++) await publish(phone, 'p2p/talk/bob', 'd' + i);
    await until(() => raw.length >= n, 5000, 100);
    // the network goes: no DISCONNECT, the socket just closes
    bob.stream.destroy();
    await until(() => !bob.connected, 2000, 200);
    bob = await device('bob@laptop', persist, (t, m, p) => {
      if (isChat(seen(t, m, p))) raw.push(Object.assign(seen(t, m, p), { conn: 2 }));
    });
    const present = bob.connack.sessionPresent;
    for (let i = n; i < n + more; i++) await publish(phone, 'p2p/talk/bob', 'd' + i);
    await until(() => raw.length >= n + more + unacked, 5000);
    // the app: one message per id
    const ids = new Set();
    const app = [];
    for (const x of raw) {
      const id = x.up && x.up.id;
      if (ids.has(id)) continue;
      ids.add(id);
      app.push(x);
    }
    return { raw, app, dropped_acks: dropped, session_present: present };
  },

  // (b') the same across a kill -9 of the broker, in two runs of this
  // script: `kill_before` gets n messages on bob@laptop's persistent
  // session, acknowledges the first `acked` and loses the rest of its
  // PUBACKs, then its connection drops; the test kills the broker (-9),
  // starts it again on the same store, and `kill_after` reconnects bob
  // (clean=false), takes what the broker sends again, and alice writes
  // `more` new messages.
  async kill_before() {
    const n = args.n || 10, acked = args.acked || 5;
    const persist = { clean: false, properties: { sessionExpiryInterval: 600 } };
    const raw = [];
    let dropAcks = false;
    const bob = await device('bob@laptop', persist, (t, m, p) => {
      if (!isChat(seen(t, m, p))) return;
      raw.push(Object.assign(seen(t, m, p), { conn: 1 }));
      dropAcks = raw.length > acked;  // its PUBACK follows this event
    });
    const send = bob._sendPacket.bind(bob);
    bob._sendPacket = (pkt, cb, ...rest) => {
      if (pkt.cmd === 'puback' && dropAcks) { if (cb) cb(); return; }
      return send(pkt, cb, ...rest);
    };
    const phone = await device('alice@phone');
    // each publish waits for its PUBACK: the message is in the store
    for (let i = 0; i < n; i++) await publish(phone, 'p2p/talk/bob', 'k' + i);
    await until(() => raw.length >= n, 5000, 200);
    bob.stream.destroy();
    return { raw };
  },

  async kill_after() {
    const n = args.n || 10, acked = args.acked || 5, more = args.more || 5;
    const persist = { clean: false, properties: { sessionExpiryInterval: 600 } };
    const raw = [];
    const bob = await device('bob@laptop', persist, (t, m, p) => {
      if (isChat(seen(t, m, p))) raw.push(Object.assign(seen(t, m, p), { conn: 2 }));
    });
    const present = bob.connack.sessionPresent;
    await until(() => raw.length >= n - acked, 5000, 300);
    const phone = await device('alice@phone');
    for (let i = n; i < n + more; i++) await publish(phone, 'p2p/talk/bob', 'k' + i);
    await until(() => raw.filter((x) => x.payload === 'k' + (n + more - 1)).length, 5000);
    return { raw, session_present: present };
  },

  // (c) a new device pulls the conversation with `peer` in pages over
  // MQTT 5 request/response (Response Topic + Correlation Data).
  async history() {
    const limit = args.limit || 500;
    // max_packet: the device's Maximum Packet Size (pages end early)
    const dev = await device(args.device || 'bob@tablet', args.max_packet
      ? { properties: { maximumPacketSize: args.max_packet } } : {});
    const replyTopic = '$im/history/reply/' + process.pid;
    const pending = new Map();
    dev.on('message', (t, m, p) => {
      const corr = p.properties && p.properties.correlationData;
      if (t !== replyTopic || !corr) return;
      const k = corr.toString();
      if (pending.has(k)) {
        const r = JSON.parse(m.toString());
        r.bytes = m.length + Buffer.byteLength(t) + corr.length;  // at least that on the wire
        pending.get(k)(r);
        pending.delete(k);
      }
    });
    const ask = (req, k) => new Promise((resolve, reject) => {
      pending.set(k, resolve);
      dev.publish('$im/history', JSON.stringify(req), {
        qos: 1, properties: { responseTopic: replyTopic, correlationData: Buffer.from(k) },
      }, (err) => { if (err) reject(err); });
    });
    const msgs = [];
    const pages = [];
    let after = 0, more = true, t0 = Date.now();
    while (more) {
      const k = 'page-' + pages.length;
      const r = await ask({ peer: args.peer, after, limit }, k);
      if (r.error) return { error: r.error, detail: r.detail };
      pages.push({ corr: k, count: r.messages.length, more: r.more, peer: r.peer,
                   bytes: r.bytes });
      msgs.push(...r.messages);
      more = r.more;
      if (r.messages.length) after = r.messages[r.messages.length - 1].id;
      if (pages.length > 1000) break;
    }
    const took = Date.now() - t0;
    // the newest page and the page before the 101st id
    const newest = await ask({ peer: args.peer, limit: 3 }, 'newest');
    const before = await ask({ peer: args.peer, before: msgs[100].id, limit: 10 }, 'before');
    return {
      pages, took_ms: took,
      ids: msgs.map((m) => m.id), payloads: msgs.map((m) => m.payload),
      from: msgs.map((m) => m.from),
      newest: newest.messages.map((m) => m.id), newest_more: newest.more,
      before: before.messages.map((m) => m.id),
    };
  },

  // (d) delivery receipt (MQTT.js acknowledges on its own) and a read
  // receipt published by bob, both back to alice's devices; bob@tablet
  // gets the sync copy of the read receipt.
  async receipts() {
    const phone = await device('alice@phone');
    const lap = await device('alice@laptop');
    const bob = await device('bob@laptop');
    const tab = await device('bob@tablet');
    await publish(phone, 'p2p/talk/bob', 'please read', { qos: args.qos || 1 });
    const got = () => bob.got.find((x) => x.topic === 'p2p/talk/bob');
    await until(() => got() && tab.got.length >= 1, 5000, 0);
    const msg = got();
    const isReceipt = (kind) => (x) => x.up && x.up.receipt === kind;
    await until(() => phone.got.some(isReceipt('delivered')) &&
                lap.got.some(isReceipt('delivered')), 5000);
    const ack = await publish(bob, 'p2p/receipt/alice', JSON.stringify({ id: Number(msg.up.id) }));
    await until(() => phone.got.some(isReceipt('read')) && tab.got.length >= 2, 5000);
    return {
      msg, read_puback_rc: (ack && ack.reasonCode) || 0,
      alice_phone: phone.got, alice_laptop: lap.got, bob_laptop: bob.got, bob_tablet: tab.got,
    };
  },

  // (d') a device that refuses a message (MQTT 5 PUBACK with a reason
  // code of 0x80 or more, by MQTT.js's customHandleAcks) has not got it:
  // no delivered receipt; a second device of bob that accepts makes one.
  async refuse() {
    const code = args.code || 0x80;
    const phone = await device('alice@phone');
    const bob = await device('bob@laptop', {
      customHandleAcks: (topic, message, packet, done) => done(code),
    });
    let refused = 0;
    bob.on('packetsend', (p) => { if (p.cmd === 'puback' && p.reasonCode === code) refused++; });
    await publish(phone, 'p2p/talk/bob', 'refused');
    await until(() => refused >= 1, 5000, 500);
    const before = phone.got.slice();
    const refusedFirst = refused;
    const tab = await device('bob@tablet');
    await publish(phone, 'p2p/talk/bob', 'accepted');
    await until(() => phone.got.length > before.length, 5000, 300);
    return { refused: refusedFirst, refused_total: refused, after_refusal: before, after_accept: phone.got.slice(before.length),
             tablet: tab.got };
  },

  // offline push: a push worker on MQTT.js (shared subscription) gets an
  // event for each message queued while bob@laptop (persistent) is away;
  // bob comes back and gets the messages with the events' ids.
  async push() {
    const n = args.n || 3;
    const persist = { clean: false, properties: { sessionExpiryInterval: 600 } };
    const worker = await device('pushsvc@worker1');
    const granted = await new Promise((resolve, reject) => worker.subscribe(
      '$share/workers/$events/push/#', { qos: 1 }, (e, g) => (e ? reject(e) : resolve(g))));
    let bob = await device('bob@laptop', persist);
    await new Promise((resolve) => bob.end(false, {}, resolve));  // DISCONNECT, session kept
    const phone = await device('alice@phone');
    for (let i = 0; i < n; i++) await publish(phone, 'p2p/talk/bob', 'push' + i);
    await until(() => worker.got.length >= n, 5000, 300);
    const events = worker.got.slice();
    bob = await device('bob@laptop', persist);
    await until(() => bob.got.filter(isChat).length >= n, 5000, 300);
    // bob is online now: no event for the next one
    await publish(phone, 'p2p/talk/bob', 'online');
    await until(() => bob.got.filter(isChat).length >= n + 1, 5000, 500);
    return { granted: granted.map((g) => g.qos), events, worker_after: worker.got.slice(n),
             bob: bob.got, session_present: bob.connack.sessionPresent };
  },

  // (e) a 3.1.1 MQTT.js device on an im_envelope listener: one JSON line,
  // a newline, then the payload as sent.
  async envelope() {
    const old = await device('bob@old', { protocolVersion: 4 });
    const phone = await device('alice@phone');
    const payloads = ['hello 3.1.1', 'line one\nline two', Buffer.from([0, 255, 10, 1, 2])];
    for (const p of payloads) await publish(phone, 'p2p/talk/bob', p);
    await until(() => old.got.length >= payloads.length, 5000, 0);
    // receipt: bob@old answers; alice@phone's PUBACK makes a delivered
    // receipt, which reaches bob@old in the envelope too
    if (args.receipt) {
      await publish(old, 'p2p/talk/alice', 'answer from 3.1.1');
      await until(() => old.got.length >= payloads.length + 1, 5000, 0);
    }
    await sleep(300);
    const decoded = old.got.map((x) => {
      const buf = Buffer.from(x.payload_b64, 'base64');
      const nl = buf.indexOf(10);
      return { topic: x.topic, head: JSON.parse(buf.subarray(0, nl).toString()),
               body_b64: buf.subarray(nl + 1).toString('base64') };
    });
    return { decoded, connack_version: 4, alice_phone: phone.got,
             sent_b64: payloads.map((p) => Buffer.from(p).toString('base64')) };
  },
};

if (!scenarios[scenario]) {
  finish({ error: 'unknown scenario ' + scenario });
} else {
  scenarios[scenario]().then((r) => finish(Object.assign({ ok: true }, r)),
                             (e) => finish({ error: String(e && e.stack || e) }));
}
