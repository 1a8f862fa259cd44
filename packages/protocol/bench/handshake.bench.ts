// Micro-benchmark: what a tunnel handshake costs each end on one core (the relay answers every device's
// initiation, at connect and every 2 minutes; a relay restarted under thousands of devices answers them
// all at once), and the raw X25519 key imports it is made of, through JWK (what crypto.ts uses) and through
// the DER decoders (what it used before), side by side in one run. Bounded: ~1 s per case.
// Usage: npm run bench:handshake [-- seconds]
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { loadavg } from 'node:os';
import { createInitiator, createResponder, generateKeyPair, generatePsk } from '@pocketproxy/protocol';
import { x25519PrivateKeyObject, x25519PublicKeyObject } from '../src/crypto.js';

const seconds = Math.min(Number(process.argv[2] ?? 1) || 1, 10);

/** Mean µs per call of `body` over ~`seconds`, after a warm-up. */
function perCall(body: () => unknown): number {
  for (let i = 0; i < 200; i++) body();
  let n = 0;
  const t0 = process.hrtime.bigint();
  const until = t0 + BigInt(Math.round(seconds * 1e9));
  let t = t0;
  while (t < until && n < 1_000_000) {
    for (let i = 0; i < 50; i++) body();
    n += 50;
    t = process.hrtime.bigint();
  }
  return Number(t - t0) / n / 1000;
}

const raw = randomBytes(32);
const PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const derPrivate = (): KeyObject =>
  createPrivateKey({ key: Buffer.concat([PKCS8, raw]), format: 'der', type: 'pkcs8' });
const derPublic = (): KeyObject => createPublicKey({ key: Buffer.concat([SPKI, raw]), format: 'der', type: 'spki' });

const relay = generateKeyPair();
const dev = generateKeyPair();
const psk = generatePsk();
const responder = createResponder<string>({
  privateKey: relay.privateKey,
  lookupPeer: (pub) => (pub.equals(dev.publicKey) ? { deviceId: 'd', psk } : undefined),
  sameEndpoint: (a, b) => a === b,
});
let clock = 1_000;
let responderUs = 0;
let initiatorUs = 0;
let rounds = 0;
const until = Date.now() + seconds * 1000;
while (Date.now() < until && rounds < 20_000) {
  const ini = createInitiator({ privateKey: dev.privateKey, responderPublicKey: relay.publicKey, psk });
  clock += 10;
  const [init] = ini.tick(clock);
  const t0 = process.hrtime.bigint();
  const r = responder.receive(init!, 'lab', clock);
  const t1 = process.hrtime.bigint();
  if (r.kind !== 'reply') throw new Error(`handshake: ${r.kind}`);
  const e = ini.receive(r.frame, clock + 1);
  const t2 = process.hrtime.bigint();
  if (e.kind !== 'established') throw new Error(`handshake: ${e.kind}`);
  if (rounds >= 20) {
    responderUs += Number(t1 - t0) / 1000;
    initiatorUs += Number(t2 - t1) / 1000;
  }
  rounds++;
}
const measured = Math.max(1, rounds - 20);

const jwkPriv = perCall(() => x25519PrivateKeyObject(raw));
const derPriv = perCall(derPrivate);
const jwkPub = perCall(() => x25519PublicKeyObject(raw));
const derPub = perCall(derPublic);
console.log(`machine: load ${loadavg()[0]!.toFixed(2)}, node ${process.version}, OpenSSL ${process.versions.openssl}`);
console.log(
  `handshake (${measured} rounds): the relay answers an initiation in ${(responderUs / measured).toFixed(0)} µs (${Math.round((1e6 * measured) / responderUs)}/s on one core), the device takes the answer in ${(initiatorUs / measured).toFixed(0)} µs`,
);
console.log(
  `X25519 import, JWK · DER: private ${jwkPriv.toFixed(1)} · ${derPriv.toFixed(1)} µs (${(derPriv / jwkPriv).toFixed(1)}×), public ${jwkPub.toFixed(1)} · ${derPub.toFixed(1)} µs (${(derPub / jwkPub).toFixed(1)}×)`,
);
