// nativeAead: byte-identical to node:crypto (both directions, through TransportSession too), the
// published transport vectors, batch forms, in-place use, and argument checks that keep a wrong
// offset from ever writing outside a buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';
import {
  TransportSession,
  nodeAead,
  OPEN_DECRYPT,
  OPEN_REPLAY,
  OPEN_MALFORMED,
  type AeadProvider,
} from '@pocketproxy/protocol';
import { nativeAead, tryNativeAead, ADDON_PATH } from '../src/index.js';
import { loadAddon, type AeadBackend } from '../src/native.js';

const native = tryNativeAead();
const skip = native ? false : `addon missing at ${ADDON_PATH}: run npm run build -w @pocketproxy/tun`;
/** Both ways through OpenSSL (native/aead.h): each per-key test runs on each. */
const BACKENDS: readonly AeadBackend[] = ['direct', 'evp'];
const keyOn = (backend: AeadBackend, raw: Uint8Array) => new (loadAddon().Aead)(raw, backend);
/**
 * The direct way's tests skip, loudly, where this node binary does not export OpenSSL's routines; where it
 * does and the known-answer run at load disagreed, they run and fail.
 */
let directMissing: string | false = skip;
if (!skip) {
  try {
    keyOn('direct', randomBytes(32)).destroy();
  } catch (e) {
    const why = (e as Error).message;
    if (why.includes('does not export')) directMissing = `LOUD SKIP: ${why}: every key takes the EVP way here`;
  }
}
const skipOn = (backend: AeadBackend) => (backend === 'direct' ? directMissing : skip);

function nonce(counter: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(counter, 4);
  return n;
}
function refSeal(key: Buffer, counter: bigint, pt: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: 16 });
  const ct = c.update(pt);
  c.final();
  return Buffer.concat([ct, c.getAuthTag()]);
}
function refOpen(key: Buffer, counter: bigint, sealed: Buffer): Buffer | undefined {
  const d = createDecipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: 16 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const pt = d.update(sealed.subarray(0, sealed.length - 16));
  try {
    d.final();
    return pt;
  } catch {
    return undefined;
  }
}

test('the provider type-checks as the protocol AeadProvider and loads', { skip }, () => {
  const p: AeadProvider = nativeAead();
  assert.equal(p.name, 'openssl-native');
  assert.equal(nativeAead(), p, 'one provider object');
});

for (const backend of BACKENDS)
  test(`seal/open match node:crypto byte for byte (random sizes and counters, fuzz) (${backend})`, {
    skip: skipOn(backend),
  }, () => {
    for (let round = 0; round < 300; round++) {
      const key = randomBytes(32);
      const k = keyOn(backend, key);
      const len = round < 20 ? round : randomInt(0, round % 10 === 0 ? 65504 : 1500);
      const pt = randomBytes(len);
      const counter =
        round % 3 === 0
          ? BigInt(randomInt(0, 2 ** 48 - 1)) * 16n + BigInt(randomInt(0, 16))
          : BigInt(randomInt(0, 1000));
      const expected = refSeal(key, counter, pt);
      const off = randomInt(0, 40);
      const dst = randomBytes(off + len + 16 + randomInt(0, 8));
      assert.equal(k.seal(Number(counter), pt, dst, off), len + 16);
      assert.deepEqual(dst.subarray(off, off + len + 16), expected);
      // open native what node sealed, and node what native sealed
      const back = Buffer.alloc(len + 3);
      assert.equal(k.open(counter, expected, back, 3), len);
      assert.deepEqual(back.subarray(3), pt);
      assert.deepEqual(refOpen(key, counter, dst.subarray(off, off + len + 16)), pt);
      // a flipped bit anywhere, or the wrong counter, fails and leaves no plaintext behind
      const bad = Buffer.from(expected);
      bad[randomInt(0, bad.length)]! ^= 1 << randomInt(0, 8);
      const out = Buffer.alloc(len, 0xaa);
      assert.equal(k.open(counter, bad, out, 0), -1);
      assert.ok(
        out.every((b) => b === 0),
        'wiped',
      );
      assert.equal(k.open(counter + 1n, expected, Buffer.alloc(len), 0), -1);
      k.destroy();
    }
  });

for (const backend of BACKENDS)
  test(`counters: numbers up to 2^53, bigints up to 2^64-1, nothing else (${backend})`, {
    skip: skipOn(backend),
  }, () => {
    const key = randomBytes(32);
    const k = keyOn(backend, key);
    const pt = randomBytes(50);
    const dst = Buffer.alloc(66);
    for (const c of [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 52n - 1n, 2n ** 53n]) {
      k.seal(Number(c), pt, dst, 0);
      assert.deepEqual(dst, refSeal(key, c, pt), `counter ${c}`);
    }
    k.seal(2n ** 64n - 1n, pt, dst, 0);
    assert.deepEqual(dst, refSeal(key, 2n ** 64n - 1n, pt));
    for (const c of [-1, 1.5, NaN, Infinity, 2 ** 53 + 2, '1', -1n, 2n ** 64n]) {
      assert.throws(() => k.seal(c as any, pt, dst, 0), RangeError, `counter ${String(c)}`);
    }
  });

for (const backend of BACKENDS)
  test(`in place: seal over the plaintext, open over the ciphertext (${backend})`, { skip: skipOn(backend) }, () => {
    const key = randomBytes(32);
    const k = keyOn(backend, key);
    const frame = Buffer.alloc(16 + 1380 + 16);
    const pt = randomBytes(1380);
    pt.copy(frame, 16);
    assert.equal(k.seal(7, frame.subarray(16, 16 + 1380), frame, 16), 1396);
    assert.deepEqual(frame.subarray(16), refSeal(key, 7n, pt));
    assert.equal(k.open(7, frame.subarray(16), frame, 16), 1380);
    assert.deepEqual(frame.subarray(16, 16 + 1380), pt);
  });

test('argument checks: sizes, offsets, overlap, types, destroyed', { skip }, () => {
  const k = nativeAead().key(randomBytes(32));
  const pt = randomBytes(100);
  assert.throws(() => nativeAead().key(randomBytes(31)), RangeError);
  assert.throws(() => nativeAead().key('x'.repeat(32) as any), TypeError);
  assert.throws(() => k.seal(0, pt, Buffer.alloc(115), 0), RangeError);
  assert.throws(() => k.seal(0, pt, Buffer.alloc(200), 85), RangeError);
  assert.throws(() => k.seal(0, pt, Buffer.alloc(200), -1), RangeError);
  assert.throws(() => k.seal(0, pt, new Uint16Array(100) as any, 0), TypeError);
  const big = Buffer.alloc(300);
  assert.throws(() => k.seal(0, big.subarray(10, 110), big, 20), RangeError, 'partial overlap');
  assert.equal(k.seal(0, big.subarray(10, 110), big, 110), 116, 'adjacent is fine');
  assert.throws(() => k.open(0, big.subarray(110, 226), Buffer.alloc(99), 0), RangeError);
  assert.equal(k.open(0, Buffer.alloc(15), Buffer.alloc(0), 0), -1, 'shorter than a tag');
  k.destroy();
  assert.throws(() => k.seal(0, pt, Buffer.alloc(116), 0), /destroyed/);
  k.destroy();
});

test('sealBatch = N single seals with counters counter0+i, headroom left free, stops when dst is full', {
  skip,
}, () => {
  const key = randomBytes(32);
  const k = nativeAead().key(key);
  const sizes = [0, 1, 1380, 64, 1500, 20];
  const offsets = new Uint32Array(sizes.length + 1);
  for (let i = 0; i < sizes.length; i++) offsets[i + 1] = offsets[i]! + sizes[i]!;
  const src = randomBytes(offsets[sizes.length]!);
  const total = sizes.reduce((a, s) => a + 16 + s + 16, 0);
  const dst = Buffer.alloc(total, 0xee);
  const dof = new Uint32Array(sizes.length + 1);
  assert.equal(k.sealBatch(1000, src, offsets, sizes.length, dst, dof, 16), sizes.length);
  for (let i = 0; i < sizes.length; i++) {
    const frame = dst.subarray(dof[i]!, dof[i + 1]!);
    assert.ok(
      frame.subarray(0, 16).every((b) => b === 0xee),
      'headroom untouched',
    );
    assert.deepEqual(frame.subarray(16), refSeal(key, BigInt(1000 + i), src.subarray(offsets[i]!, offsets[i + 1]!)));
  }
  const small = Buffer.alloc(total - 1);
  assert.equal(k.sealBatch(0, src, offsets, sizes.length, small, dof, 16), sizes.length - 1, 'last one did not fit');
  const bad = Uint32Array.from(offsets);
  bad[3] = src.length + 1;
  assert.throws(() => k.sealBatch(0, src, bad, sizes.length, dst, dof, 16), RangeError);
  assert.throws(
    () => k.sealBatch(0, src, offsets, sizes.length + 1, dst, dof, 16),
    RangeError,
    'offsets shorter than count + 1',
  );
  assert.throws(() => k.sealBatch(0, dst, offsets, 1, dst, dof, 16), RangeError, 'src and dst overlap');
});

for (const backend of BACKENDS)
  test(`openBatch: in place, per-item results, skipped items, tampered items (${backend})`, {
    skip: skipOn(backend),
  }, () => {
    const key = randomBytes(32);
    const k = keyOn(backend, key);
    const pts = [randomBytes(1380), randomBytes(0), randomBytes(77), randomBytes(1380), randomBytes(5)];
    const frames = pts.map((p, i) => Buffer.concat([Buffer.alloc(16, i), refSeal(key, BigInt(i * 3), p)]));
    frames.push(Buffer.alloc(20)); // too short for header + tag
    const data = Buffer.concat(frames);
    const offsets = new Uint32Array(frames.length + 1);
    for (let i = 0; i < frames.length; i++) offsets[i + 1] = offsets[i]! + frames[i]!.length;
    data[offsets[3]! + 100]! ^= 0x40; // tamper frame 3
    const counters = Float64Array.from(frames.map((_, i) => i * 3));
    counters[2] = -1; // skipped (e.g. the replay window refused it)
    const lengths = new Int32Array(frames.length);
    assert.equal(k.openBatch(counters, data, offsets, frames.length, 16, data, lengths), 3);
    assert.deepEqual([...lengths], [1380, 0, -2, -1, 5, -1]);
    assert.deepEqual(data.subarray(offsets[0]! + 16, offsets[0]! + 16 + 1380), pts[0]);
    assert.deepEqual(data.subarray(offsets[4]! + 16, offsets[4]! + 21), pts[4]);
    assert.ok(
      data.subarray(offsets[3]! + 16, offsets[3]! + 16 + 1380).every((b) => b === 0),
      'failed item wiped',
    );
  });

test('direct and EVP: the same bytes for every length 0..2100 and 64 KiB, both sides of one call', {
  skip: directMissing,
}, () => {
  const key = randomBytes(32);
  const d = keyOn('direct', key);
  const e = keyOn('evp', key);
  assert.equal(d.backend, 'direct');
  assert.equal(e.backend, 'evp');
  const lens = [...Array.from({ length: 2101 }, (_, i) => i), 65_535 - 16, 65_535];
  const pt = randomBytes(65_535);
  for (const len of lens) {
    const counter = len % 2 === 0 ? len : 2 ** 40 + len * 977; // the nonce's high word in play
    const a = Buffer.alloc(len + 16);
    const b = Buffer.alloc(len + 16);
    d.seal(counter, pt.subarray(0, len), a, 0);
    e.seal(counter, pt.subarray(0, len), b, 0);
    assert.ok(a.equals(b), `sealed ${len} bytes differ`);
    const back = Buffer.alloc(len);
    assert.equal(d.open(counter, b, back, 0), len, `open ${len}`);
    assert.ok(back.equals(pt.subarray(0, len)), `opened ${len} bytes differ`);
    // a flipped bit (in the ciphertext or in the tag): no plaintext, dst wiped
    const bad = Buffer.from(a);
    bad[(len * 7919) % bad.length]! ^= 0x10;
    const out = Buffer.alloc(len, 0xaa);
    assert.equal(d.open(counter, bad, out, 0), -1, `tampered ${len}`);
    assert.ok(
      out.every((x) => x === 0),
      `wiped ${len}`,
    );
    assert.equal(d.open(counter + 1, a, out, 0), -1, `wrong counter ${len}`);
  }
  d.destroy();
  e.destroy();
});

test('the backend: direct by default here, evp with POCKETPROXY_AEAD=evp, nothing else accepted', {
  skip: directMissing,
}, () => {
  const backendIn = (env: NodeJS.ProcessEnv) =>
    execFileSync(
      process.execPath,
      ['-e', `console.log(new (require(${JSON.stringify(ADDON_PATH)}).Aead)(Buffer.alloc(32)).backend)`],
      { env, encoding: 'utf8' },
    ).trim();
  const { POCKETPROXY_AEAD: _, ...rest } = process.env;
  assert.equal(backendIn(rest), 'direct');
  assert.equal(backendIn({ ...rest, POCKETPROXY_AEAD: 'evp' }), 'evp');
  assert.equal(nativeAead().key(randomBytes(32)).backend, process.env.POCKETPROXY_AEAD === 'evp' ? 'evp' : 'direct');
  assert.throws(() => keyOn('fast' as AeadBackend, randomBytes(32)), /backend must be 'direct' or 'evp'/);
});

const providers: [string, () => AeadProvider][] = [
  ['node:crypto', () => nodeAead],
  ['native', () => nativeAead()],
];

function pair(a: AeadProvider, b: AeadProvider) {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const x = new TransportSession({
    localIndex: 1,
    remoteIndex: 2,
    keys: { sendKey: k1, recvKey: k2 },
    createdAt: 0,
    isInitiator: true,
    aead: a,
  });
  const y = new TransportSession({
    localIndex: 2,
    remoteIndex: 1,
    keys: { sendKey: k2, recvKey: k1 },
    createdAt: 0,
    isInitiator: false,
    aead: b,
  });
  return { x, y };
}

test('TransportSession: native-sealed frames open on node:crypto and vice versa, same bytes', { skip }, () => {
  for (const [an, a] of providers) {
    for (const [bn, b] of providers) {
      const { x, y } = pair(a(), b());
      for (let i = 0; i < 200; i++) {
        const pt = randomBytes(randomInt(0, 1500));
        const f = x.seal(pt);
        assert.deepEqual(y.open(f), pt, `${an} -> ${bn} #${i}`);
        const g = Buffer.from(y.seal(pt));
        assert.deepEqual(x.open(g), pt, `${bn} -> ${an} #${i}`);
        g[20]! ^= 1;
        assert.equal(pair(a(), b()).x.open(g), 'decrypt');
      }
    }
  }
});

test('TransportSession: same keys give the same frames on both providers; in-place seal and open', { skip }, () => {
  const keys = { sendKey: randomBytes(32), recvKey: randomBytes(32) };
  const n = new TransportSession({ localIndex: 1, remoteIndex: 9, keys, createdAt: 0, isInitiator: true });
  const v = new TransportSession({
    localIndex: 1,
    remoteIndex: 9,
    keys,
    createdAt: 0,
    isInitiator: true,
    aead: nativeAead(),
  });
  assert.equal(v.aeadName, 'openssl-native');
  assert.equal(n.aeadName, 'node:crypto');
  for (let i = 0; i < 100; i++) {
    const pt = randomBytes(randomInt(0, 2000));
    const out = Buffer.alloc(pt.length + 32);
    pt.copy(out, 16);
    const inPlace = v.seal(out.subarray(16, 16 + pt.length), out); // sealing in place, as the initiator allows
    assert.deepEqual(Buffer.from(inPlace), n.seal(pt));
  }
  const rx = new TransportSession({
    localIndex: 9,
    remoteIndex: 1,
    keys: { sendKey: keys.recvKey, recvKey: keys.sendKey },
    createdAt: 0,
    isInitiator: false,
    aead: nativeAead(),
  });
  const pt = randomBytes(1380);
  const f = Buffer.from(
    new TransportSession({ localIndex: 1, remoteIndex: 9, keys, createdAt: 0, isInitiator: true }).seal(pt),
  );
  const r = rx.open(f, f.subarray(16));
  assert.ok(Buffer.isBuffer(r));
  assert.equal(r.buffer, f.buffer, 'decrypted in place');
  assert.deepEqual(r, pt);
  assert.equal(rx.open(f), 'replay');
});

test('the published transport vectors (docs/protocol.md) seal and open with the native provider', { skip }, () => {
  const send = Buffer.from('82e088ef445ababd02b473fb2f4348cc1490635bcbf2e98a2579cf84e52b022f', 'hex');
  const recv = Buffer.from('98b68d5fcc622b0b88d4e78e0ed0758ad09814d49126ea4a6e5dc9e3395392f1', 'hex');
  const ipPacket = Buffer.from('4500001c000100004011f876c0a8ff02c0a8ff01d43500350008a6a7', 'hex');
  const keepalive0 = '040100000d0c0b0a00000000000000003130a8882bd54e2004430bdbd9678d1a';
  const ip1 =
    '040100000d0c0b0a01000000000000006af297450ecb2e0e30e6e54725923b8923983f99d52e85141d0b0bed3b5b381d33dbde6eafad10ec168a9833';
  const cmd0 =
    '04010000040302010000000000000000f18d6a5c33c8089882e11504837f84a1512cd867d59b9dec27af02f7e32e1ba336a37269c5426710752664a4b844cbffe93657277cb1c3b2df4929ea5f46d6d6e62a043f8b54536d5c9fc32bcc060a';
  const i = new TransportSession({
    localIndex: 0x01020304,
    remoteIndex: 0x0a0b0c0d,
    keys: { sendKey: send, recvKey: recv },
    createdAt: 0,
    isInitiator: true,
    aead: nativeAead(),
  });
  const r = new TransportSession({
    localIndex: 0x0a0b0c0d,
    remoteIndex: 0x01020304,
    keys: { sendKey: recv, recvKey: send },
    createdAt: 0,
    isInitiator: false,
    aead: nativeAead(),
  });
  assert.equal(i.seal(Buffer.alloc(0)).toString('hex'), keepalive0);
  assert.equal(i.seal(ipPacket).toString('hex'), ip1);
  assert.deepEqual(r.open(Buffer.from(keepalive0, 'hex')), Buffer.alloc(0));
  assert.deepEqual(r.open(Buffer.from(ip1, 'hex')), ipPacket);
  const cmd = i.open(Buffer.from(cmd0, 'hex'));
  assert.ok(Buffer.isBuffer(cmd));
  assert.equal(cmd[0], 0x05);
  assert.equal(r.seal(cmd).toString('hex'), cmd0);
});

test('TransportSession.sealBatch/openBatch on the native provider = single seal/open on node:crypto', { skip }, () => {
  const keys = { sendKey: randomBytes(32), recvKey: randomBytes(32) };
  const rxKeys = { sendKey: keys.recvKey, recvKey: keys.sendKey };
  const batchTx = new TransportSession({
    localIndex: 1,
    remoteIndex: 9,
    keys,
    createdAt: 0,
    isInitiator: true,
    aead: nativeAead(),
  });
  const singleTx = new TransportSession({ localIndex: 1, remoteIndex: 9, keys, createdAt: 0, isInitiator: true });
  const rx = new TransportSession({
    localIndex: 9,
    remoteIndex: 1,
    keys: rxKeys,
    createdAt: 0,
    isInitiator: false,
    aead: nativeAead(),
  });
  for (let round = 0; round < 20; round++) {
    const pts = Array.from({ length: randomInt(1, 65) }, () => randomBytes(randomInt(0, 1500)));
    const offsets = new Uint32Array(pts.length + 1);
    for (const [i, p] of pts.entries()) offsets[i + 1] = offsets[i]! + p.length;
    const data = Buffer.concat(pts);
    const out = Buffer.alloc(data.length + 32 * pts.length);
    const outOffsets = new Uint32Array(pts.length + 1);
    assert.equal(batchTx.sealBatch({ data, offsets, count: pts.length }, out, outOffsets), pts.length);
    for (let i = 0; i < pts.length; i++)
      assert.deepEqual(out.subarray(outOffsets[i]!, outOffsets[i + 1]!), singleTx.seal(pts[i]!), `frame ${i}`);
    // receive them with one duplicate and one tampered frame appended
    const extra = [
      Buffer.from(out.subarray(outOffsets[0]!, outOffsets[1]!)),
      Buffer.from(out.subarray(outOffsets[0]!, outOffsets[1]!)),
      Buffer.alloc(10),
    ];
    extra[1]![20]! ^= 0x10;
    extra[1]!.writeUInt32LE(0xffff, 8); // fresh counter, bad tag
    const all = Buffer.concat([out, ...extra]);
    const offs = new Uint32Array(pts.length + extra.length + 1);
    offs.set(outOffsets);
    for (let j = 0; j < extra.length; j++) offs[pts.length + j + 1] = offs[pts.length + j]! + extra[j]!.length;
    const results = new Int32Array(offs.length - 1);
    assert.equal(rx.openBatch({ data: all, offsets: offs, count: offs.length - 1 }, results), pts.length);
    for (let i = 0; i < pts.length; i++) {
      assert.equal(results[i], pts[i]!.length);
      assert.deepEqual(all.subarray(offs[i]! + 16, offs[i]! + 16 + pts[i]!.length), pts[i]);
    }
    assert.deepEqual([...results.subarray(pts.length)], [OPEN_REPLAY, OPEN_DECRYPT, OPEN_MALFORMED]);
  }
});
