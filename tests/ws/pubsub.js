// MQTT.js over ws:// or wss://: subscribe, publish QoS 0/1/2 (one message
// large enough to span several reads and frames), check every message
// comes back (order is only kept per QoS level, so compare as sets), print
// one JSON line with the result.
// usage: node pubsub.js URL [CA_FILE] [PROTOCOL_VERSION]
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const url = process.argv[2];
const ca = process.argv[3] ? fs.readFileSync(process.argv[3]) : undefined;
const version = Number(process.argv[4] || 4);
const topic = 'ws/test/' + process.pid;
const big = Buffer.alloc(200000, 'x');
const sent = ['zero', 'one', 'two', big.toString()];
const got = [];

const client = mqtt.connect(url, { ca, protocolVersion: version, clean: true,
                                   reconnectPeriod: 0, connectTimeout: 5000 });
const timer = setTimeout(() => finish('timeout'), 10000);

function finish(err) {
  clearTimeout(timer);
  const same = [...got].sort().join('|') === [...sent].sort().join('|');
  console.log(JSON.stringify({ ok: !err && same,
                               err: err || null, count: got.length }));
  client.end(true, () => process.exit(0));
  setTimeout(() => process.exit(0), 1000);
}

client.on('error', (e) => finish(String(e)));
client.on('message', (t, payload) => {
  got.push(payload.toString());
  if (got.length === sent.length) finish(null);
});
client.on('connect', () => {
  client.subscribe(topic, { qos: 2 }, (err) => {
    if (err) return finish(String(err));
    sent.forEach((m, i) => client.publish(topic, m, { qos: i % 3 }));
  });
});
