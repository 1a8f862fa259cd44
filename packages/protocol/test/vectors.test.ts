// Published test vectors (docs/protocol.md §Test vectors): fixed keys, ephemerals, indices and
// timestamp give these exact bytes. A phone-app implementation should reproduce them bit for bit.
// The second test re-derives the handshake from the formulas in the doc with bare node:crypto, so
// the doc and the code cannot drift apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
} from 'node:crypto';
import {
  createIdentity,
  createInitiation,
  consumeInitiation,
  createResponse,
  consumeResponse,
  tai64n,
  TransportSession,
  encodeCommand,
  decodeInner,
  publicKeyFromPrivate,
} from '../src/index.js';
import { VECTOR_INPUTS as V } from './vector-inputs.js';

export const EXPECTED = {
  relayStaticPrivate: '3e7cb008d508eff488ced6acc8f8d691ab309e5f29459d9ed2abdc1f3745d553',
  relayStaticPublic: '80aa8de1139549ba119f87e7ee0c17232a4dbba794e8dac3f19f81a5a8814344',
  deviceStaticPrivate: 'aa85ffcad194b17a711eb75d008e2164377b9fa6286ed5aae012c78e831c9f62',
  deviceStaticPublic: '596015e14b9ff6d8ae9f20d848dff2c27e4d386c27e787f5909da44df7ed680d',
  psk: '92ebe1fc49b1a1ba00fd415e7b1c1a6fcd1ecd38d367ccc93daf0413f7130af8',
  initiatorEphemeralPrivate: '4142ff42378a4eb8b68dffce9ce1444985e6257eff4f54751523dd069426c174',
  initiatorEphemeralPublic: '5543f73d096c90842bcb14fd49ca8b8284ab11512c39babc9934c89bd104482e',
  responderEphemeralPrivate: '4bbaca024bae3b3c5c7cbafa4f119941f57bd224256ae03cff140ee066fb3083',
  responderEphemeralPublic: '68f202ac912887b2b8a3adc3e3180bfb1b8d22cb8f628bdf1b7e869bd66ba56a',
  timestamp: '400000006553f1000754d4c0',
  initiation:
    '01010000040302015543f73d096c90842bcb14fd49ca8b8284ab11512c39babc9934c89bd104482ef44974ca5940aa58736532e978f1f184e245e298e4bb81ed5f48c3e45a68c3ef31c1de01ca496c5ebff9395760d1142c7511dda7605c3a7a4b7459abd74f4baee63429274006db2c66b69c992c9e76588da2a8e2255461540e34c8e200000000000000000000000000000000',
  response:
    '020100000d0c0b0a0403020168f202ac912887b2b8a3adc3e3180bfb1b8d22cb8f628bdf1b7e869bd66ba56a4749ff718a4f5593b6d153bc334bba69c400e2f31b4aca568228ec651e08a28a00000000000000000000000000000000',
  initiatorSendKey: '82e088ef445ababd02b473fb2f4348cc1490635bcbf2e98a2579cf84e52b022f',
  initiatorRecvKey: '98b68d5fcc622b0b88d4e78e0ed0758ad09814d49126ea4a6e5dc9e3395392f1',
  keepaliveInitiatorCounter0: '040100000d0c0b0a00000000000000003130a8882bd54e2004430bdbd9678d1a',
  ipPacketInitiatorCounter1:
    '040100000d0c0b0a01000000000000006af297450ecb2e0e30e6e54725923b8923983f99d52e85141d0b0bed3b5b381d33dbde6eafad10ec168a9833',
  commandResponderCounter0:
    '04010000040302010000000000000000f18d6a5c33c8089882e11504837f84a1512cd867d59b9dec27af02f7e32e1ba336a37269c5426710752664a4b844cbffe93657277cb1c3b2df4929ea5f46d6d6e62a043f8b54536d5c9fc32bcc060a',
};

const hex = (b: Buffer) => b.toString('hex');

test('handshake and transport frames match the published vectors', () => {
  const relay = createIdentity(V.relayStaticPrivate);
  const dev = createIdentity(V.deviceStaticPrivate);
  assert.equal(hex(relay.publicKey), EXPECTED.relayStaticPublic);
  assert.equal(hex(dev.publicKey), EXPECTED.deviceStaticPublic);
  assert.equal(hex(publicKeyFromPrivate(V.initiatorEphemeralPrivate)), EXPECTED.initiatorEphemeralPublic);
  assert.equal(hex(publicKeyFromPrivate(V.responderEphemeralPrivate)), EXPECTED.responderEphemeralPublic);
  const ts = tai64n(V.unixMs);
  assert.equal(hex(ts), EXPECTED.timestamp);
  const { message: init, state } = createInitiation({
    initiator: dev,
    responderPublicKey: relay.publicKey,
    senderIndex: V.initiatorIndex,
    timestamp: ts,
    ephemeralPrivateKey: V.initiatorEphemeralPrivate,
  });
  assert.equal(hex(init), EXPECTED.initiation);
  const c = consumeInitiation(relay, init, () => ({ deviceId: 'dev_vec', psk: V.psk }));
  assert.ok(typeof c !== 'string');
  assert.equal(hex(c.timestamp), EXPECTED.timestamp);
  const { message: resp, keys: rk } = createResponse({
    consumed: c,
    psk: V.psk,
    senderIndex: V.responderIndex,
    ephemeralPrivateKey: V.responderEphemeralPrivate,
  });
  assert.equal(hex(resp), EXPECTED.response);
  const done = consumeResponse(state, dev.mac1Key, V.psk, resp);
  assert.ok(typeof done !== 'string');
  assert.equal(hex(done.keys.sendKey), EXPECTED.initiatorSendKey);
  assert.equal(hex(done.keys.recvKey), EXPECTED.initiatorRecvKey);
  const i = new TransportSession({
    localIndex: V.initiatorIndex,
    remoteIndex: V.responderIndex,
    keys: done.keys,
    createdAt: 0,
    isInitiator: true,
  });
  const r = new TransportSession({
    localIndex: V.responderIndex,
    remoteIndex: V.initiatorIndex,
    keys: rk,
    createdAt: 0,
    isInitiator: false,
  });
  const ka = i.seal(Buffer.alloc(0));
  assert.equal(hex(ka), EXPECTED.keepaliveInitiatorCounter0);
  const ip = i.seal(V.ipPacket);
  assert.equal(hex(ip), EXPECTED.ipPacketInitiatorCounter1);
  const cmd = r.seal(encodeCommand(V.command));
  assert.equal(hex(cmd), EXPECTED.commandResponderCounter0);
  assert.deepEqual(r.open(ka), Buffer.alloc(0));
  assert.deepEqual(r.open(ip), V.ipPacket);
  const pt = i.open(cmd);
  assert.ok(Buffer.isBuffer(pt));
  assert.deepEqual(decodeInner(pt), { kind: 'command', command: V.command });
});

test('the doc formulas, written out with bare node:crypto, give the same bytes', () => {
  const HASH = (...p: Buffer[]): Buffer => p.reduce((h, x) => h.update(x), createHash('sha256')).digest();
  const HMAC = (k: Buffer, ...p: Buffer[]): Buffer => p.reduce((h, x) => h.update(x), createHmac('sha256', k)).digest();
  const KDF = (n: number, key: Buffer, input: Buffer): Buffer[] => {
    const t0 = HMAC(key, input);
    const out: Buffer[] = [];
    let prev: Buffer = Buffer.alloc(0);
    for (let i = 1; i <= n; i++) {
      prev = HMAC(t0, prev, Buffer.from([i]));
      out.push(prev);
    }
    return out;
  };
  const priv = (raw: Buffer) =>
    createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), raw]),
      format: 'der',
      type: 'pkcs8',
    });
  const pub = (raw: Buffer) =>
    createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), raw]),
      format: 'der',
      type: 'spki',
    });
  const DH = (a: Buffer, b: Buffer) => diffieHellman({ privateKey: priv(a), publicKey: pub(b) });
  const AEAD = (k: Buffer, n: bigint, pt: Buffer, ad: Buffer) => {
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64LE(n, 4);
    const c = createCipheriv('chacha20-poly1305', k, nonce, { authTagLength: 16 });
    c.setAAD(ad, { plaintextLength: pt.length });
    return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
  };
  const Sr = Buffer.from(EXPECTED.relayStaticPublic, 'hex');
  const Si = Buffer.from(EXPECTED.deviceStaticPublic, 'hex');
  const Ei = Buffer.from(EXPECTED.initiatorEphemeralPublic, 'hex');
  const Er = Buffer.from(EXPECTED.responderEphemeralPublic, 'hex');
  const init = Buffer.from(EXPECTED.initiation, 'hex');
  const resp = Buffer.from(EXPECTED.response, 'hex');

  // Responder's view, from the doc, using only its own private keys and the wire bytes.
  let C: Buffer = HASH(Buffer.from('Noise_IKpsk2_25519_ChaChaPoly_SHA256'));
  let H: Buffer = HASH(C, Buffer.from('PocketProxy tunnel v1'));
  H = HASH(H, Sr);
  [C] = KDF(1, C, Ei) as [Buffer];
  H = HASH(H, Ei);
  let k: Buffer;
  [C, k] = KDF(2, C, DH(V.relayStaticPrivate, Ei)) as [Buffer, Buffer];
  const encStatic = AEAD(k, 0n, Si, H);
  assert.equal(hex(encStatic), hex(init.subarray(40, 88)));
  H = HASH(H, encStatic);
  [C, k] = KDF(2, C, DH(V.relayStaticPrivate, Si)) as [Buffer, Buffer];
  const encTs = AEAD(k, 0n, Buffer.from(EXPECTED.timestamp, 'hex'), H);
  assert.equal(hex(encTs), hex(init.subarray(88, 116)));
  H = HASH(H, encTs);
  const mac1 = HMAC(HASH(Buffer.from('mac1----'), Sr), init.subarray(0, 116)).subarray(0, 16);
  assert.equal(hex(mac1), hex(init.subarray(116, 132)));

  [C] = KDF(1, C, Er) as [Buffer];
  H = HASH(H, Er);
  [C] = KDF(1, C, DH(V.responderEphemeralPrivate, Ei)) as [Buffer];
  [C] = KDF(1, C, DH(V.responderEphemeralPrivate, Si)) as [Buffer];
  const [c3, t, k3] = KDF(3, C, V.psk) as [Buffer, Buffer, Buffer];
  C = c3;
  k = k3;
  H = HASH(H, t);
  const empty = AEAD(k, 0n, Buffer.alloc(0), H);
  assert.equal(hex(empty), hex(resp.subarray(44, 60)));
  assert.equal(
    hex(HMAC(HASH(Buffer.from('mac1----'), Si), resp.subarray(0, 60)).subarray(0, 16)),
    hex(resp.subarray(60, 76)),
  );
  const [tInit, tResp] = KDF(2, C, Buffer.alloc(0));
  assert.equal(hex(tInit!), EXPECTED.initiatorSendKey);
  assert.equal(hex(tResp!), EXPECTED.initiatorRecvKey);
  // transport: nonce = 0^4 || counter LE64, empty AAD
  const frame = Buffer.from(EXPECTED.ipPacketInitiatorCounter1, 'hex');
  const nonce = Buffer.concat([Buffer.alloc(4), frame.subarray(8, 16)]);
  const d = createDecipheriv('chacha20-poly1305', tInit!, nonce, { authTagLength: 16 });
  d.setAuthTag(frame.subarray(frame.length - 16));
  const pt = Buffer.concat([d.update(frame.subarray(16, frame.length - 16)), d.final()]);
  assert.deepEqual(pt, V.ipPacket);
});

test('docs/protocol.md publishes exactly these vectors', async () => {
  const { readFile } = await import('node:fs/promises');
  const doc = (await readFile(new URL('../../../docs/protocol.md', import.meta.url), 'utf8')).replace(/\n/g, '');
  for (const [name, value] of Object.entries(EXPECTED))
    assert.ok(doc.includes(value), `${name} missing from docs/protocol.md`);
});
