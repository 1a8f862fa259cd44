// The injectable transport AEAD: the default (node:crypto) provider, a provider without batch
// forms (session loops), and the session's batch API against single seal/open. The native
// provider's own tests (byte equality with this one) are in packages/tun/test/aead.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import fc from 'fast-check';
import {
  TransportSession,
  nodeAead,
  OPEN_DECRYPT,
  OPEN_MALFORMED,
  OPEN_REPLAY,
  REPLAY_WINDOW,
  type AeadProvider,
  type AeadKey,
} from '../src/index.js';

/** Wraps node:crypto and counts calls, so tests can see which path the session took. */
function counting(withBatch: boolean) {
  const calls = { seal: 0, open: 0, sealBatch: 0, openBatch: 0 };
  const provider: AeadProvider = {
    name: 'counting',
    key(raw) {
      const k = nodeAead.key(raw);
      const key: AeadKey = {
        seal: (...a) => {
          calls.seal++;
          return k.seal(...a);
        },
        open: (...a) => {
          calls.open++;
          return k.open(...a);
        },
      };
      if (withBatch) {
        // reference batch implementations in JS, with the documented semantics
        key.sealBatch = (counter0, src, so, count, dst, dof, headroom) => {
          calls.sealBatch++;
          let pos = dof[0]!;
          let i = 0;
          for (; i < count; i++) {
            const len = so[i + 1]! - so[i]!;
            if (pos + headroom + len + 16 > dst.length) break;
            pos += headroom + k.seal(counter0 + i, src.subarray(so[i]!, so[i + 1]!), dst, pos + headroom);
            dof[i + 1] = pos;
          }
          return i;
        };
        key.openBatch = (counters, src, offs, count, skip, dst, lengths) => {
          calls.openBatch++;
          let ok = 0;
          for (let i = 0; i < count; i++) {
            if (!(counters[i]! >= 0)) {
              lengths[i] = -2;
              continue;
            }
            const at = offs[i]! + skip;
            lengths[i] = k.open(counters[i]!, src.subarray(at, offs[i + 1]!), dst, at);
            if (lengths[i]! >= 0) ok++;
          }
          return ok;
        };
      }
      return key;
    },
  };
  return { provider, calls };
}

function sessions(aead?: AeadProvider) {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const a = new TransportSession({
    localIndex: 7,
    remoteIndex: 9,
    keys: { sendKey: k1, recvKey: k2 },
    createdAt: 0,
    isInitiator: true,
    aead,
  });
  const b = new TransportSession({
    localIndex: 9,
    remoteIndex: 7,
    keys: { sendKey: k2, recvKey: k1 },
    createdAt: 0,
    isInitiator: false,
    aead,
  });
  const twin = new TransportSession({
    localIndex: 7,
    remoteIndex: 9,
    keys: { sendKey: k1, recvKey: k2 },
    createdAt: 0,
    isInitiator: true,
  });
  return { a, b, twin };
}

function batchOf(pts: Buffer[]) {
  const offsets = new Uint32Array(pts.length + 1);
  for (const [i, p] of pts.entries()) offsets[i + 1] = offsets[i]! + p.length;
  return { data: Buffer.concat(pts), offsets, count: pts.length };
}

test('default provider is node:crypto; an injected provider is used for every seal and open', () => {
  assert.equal(sessions().a.aeadName, 'node:crypto');
  const { provider, calls } = counting(false);
  const { a, b } = sessions(provider);
  assert.equal(a.aeadName, 'counting');
  const f = a.seal(randomBytes(100));
  assert.ok(Buffer.isBuffer(b.open(f)));
  assert.deepEqual(calls, { seal: 1, open: 1, sealBatch: 0, openBatch: 0 });
});

test('open into a given buffer, in place, and its failure modes', () => {
  const { a, b } = sessions();
  const pt = randomBytes(300);
  const f = Buffer.from(a.seal(pt));
  assert.throws(
    () => b.open(f, Buffer.alloc(299)),
    (e: any) => e.code === 'PP_ERR_TUNNEL_MESSAGE_TOO_LARGE',
  );
  const r = b.open(f, f.subarray(16));
  assert.ok(Buffer.isBuffer(r));
  assert.equal(r.byteOffset, f.byteOffset + 16);
  assert.deepEqual(r, pt);
  const g = Buffer.from(a.seal(pt));
  g[40]! ^= 1;
  const out = Buffer.alloc(400, 0x55);
  assert.equal(b.open(g, out), 'decrypt');
  assert.ok(
    out.every((x) => x === 0x55),
    'node:crypto path writes nothing on failure',
  );
});

for (const withBatch of [true, false]) {
  test(`sealBatch/openBatch (${withBatch ? 'provider batch forms' : 'per-packet fallback'}) = single seal/open, property`, () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1600 }), { minLength: 1, maxLength: 40 }), (sizes) => {
        const { provider, calls } = counting(withBatch);
        const { a, b, twin } = sessions(provider);
        const pts = sizes.map((s) => randomBytes(s));
        const out = Buffer.alloc(sizes.reduce((x, s) => x + s + 32, 0));
        const outOffsets = new Uint32Array(pts.length + 1);
        assert.equal(a.sealBatch(batchOf(pts), out, outOffsets), pts.length);
        assert.equal(a.sent, pts.length);
        for (let i = 0; i < pts.length; i++)
          assert.deepEqual(out.subarray(outOffsets[i]!, outOffsets[i + 1]!), twin.seal(pts[i]!));
        const results = new Int32Array(pts.length);
        assert.equal(b.openBatch({ data: out, offsets: outOffsets, count: pts.length }, results), pts.length);
        for (let i = 0; i < pts.length; i++) {
          assert.equal(results[i], sizes[i]);
          assert.deepEqual(out.subarray(outOffsets[i]! + 16, outOffsets[i]! + 16 + sizes[i]!), pts[i]);
        }
        assert.equal(b.received, pts.length);
        if (withBatch) assert.deepEqual([calls.sealBatch, calls.openBatch, calls.seal, calls.open], [1, 1, 0, 0]);
        else assert.deepEqual([calls.seal, calls.open], [pts.length, pts.length]);
      }),
      { numRuns: 40 },
    );
  });

  test(`openBatch (${withBatch ? 'batch' : 'fallback'}): replays, duplicates within the batch, forgeries, malformed, too old`, () => {
    const { provider } = counting(withBatch);
    const { a, b } = sessions(provider);
    const first = Buffer.from(a.seal(randomBytes(50))); // counter 0
    assert.ok(Buffer.isBuffer(b.open(Buffer.from(first))));
    for (let i = 1; i < REPLAY_WINDOW + 10; i++) a.seal(Buffer.alloc(0)); // skip ahead
    const fresh = Buffer.from(a.seal(randomBytes(60)));
    const forged = Buffer.from(a.seal(randomBytes(60)));
    forged[30]! ^= 0x80;
    const later = Buffer.from(a.seal(randomBytes(70)));
    const frames = [first, fresh, Buffer.from(fresh), forged, Buffer.alloc(31), later];
    const batch = batchOf(frames);
    const results = new Int32Array(frames.length);
    assert.equal(b.openBatch(batch, results), 2);
    assert.deepEqual([...results], [OPEN_REPLAY, 60, OPEN_REPLAY, OPEN_DECRYPT, OPEN_MALFORMED, 70]);
    // the forged counter did not move the window: the real frame with that counter still opens
    const c = forged.readUInt32LE(8);
    assert.equal(b.highestReceived, later.readUInt32LE(8));
    assert.ok(c < later.readUInt32LE(8));
  });
}

test('sealBatch stops when out is full and uses no counter for the rest; rejects oversize packets', () => {
  const { a, b } = sessions();
  const pts = [randomBytes(100), randomBytes(100), randomBytes(100)];
  const out = Buffer.alloc(2 * 132 + 131);
  const offs = new Uint32Array(4);
  assert.equal(a.sealBatch(batchOf(pts), out, offs), 2);
  assert.equal(a.sent, 2);
  assert.deepEqual(b.open(Buffer.from(a.seal(pts[2]!))), pts[2], 'next single seal continues at counter 2');
  assert.throws(
    () => a.sealBatch(batchOf([Buffer.alloc(65504)]), Buffer.alloc(70000), new Uint32Array(2)),
    (e: any) => e.code === 'PP_ERR_TUNNEL_MESSAGE_TOO_LARGE',
  );
  assert.throws(() => a.sealBatch(batchOf(pts), out, new Uint32Array(3)), RangeError);
});

test('fuzz: random bytes never open and never throw, with either path', () => {
  for (const withBatch of [true, false]) {
    const { provider } = counting(withBatch);
    const { b } = sessions(provider);
    for (let i = 0; i < 200; i++) {
      const f = randomBytes(randomInt(0, 200));
      if (f.length >= 4) f.writeUInt32LE(0x104, 0);
      assert.ok(typeof b.open(Buffer.from(f)) === 'string');
      const r = new Int32Array(1);
      assert.equal(b.openBatch(batchOf([f]), r), 0);
      assert.ok(r[0]! < 0);
    }
  }
});
