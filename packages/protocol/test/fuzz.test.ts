// Bounded fuzzing: decoders throw nothing but PPError, and nothing random or mutated is ever
// accepted as authenticated (no reply, no packet, no message).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isPPError } from '@pocketproxy/errors';
import { decodeFrame, decodeInner, TcpFrameDecoder, encodeTcpFrame } from '../src/index.js';
import { connect, ipv4, pair } from './helpers.js';

const onlyPPError = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (!isPPError(e)) throw e;
  }
};

// Bytes biased toward our own header so the fuzzer gets past the first checks.
const frameLike = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc
    .tuple(fc.constantFrom(1, 2, 3, 4, 5, 0), fc.constantFrom(1, 0, 2), fc.uint8Array({ maxLength: 200 }))
    .map(([t, v, rest]) => Uint8Array.from([t, v, 0, 0, ...rest])),
  fc
    .tuple(fc.constantFrom(1, 2, 4), fc.constantFrom(148, 152, 92, 32, 33, 100))
    .chain(([t, len]) =>
      fc.uint8Array({ minLength: len - 4, maxLength: len - 4 }).map((r) => Uint8Array.from([t, 1, 0, 0, ...r])),
    ),
);

test('outer decoder: never throws anything but PPError', () => {
  fc.assert(
    fc.property(frameLike, (b) => onlyPPError(() => decodeFrame(Buffer.from(b)))),
    { numRuns: 2000, seed: 1 },
  );
});

test('inner decoder: never throws anything but PPError', () => {
  const innerLike = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.tuple(fc.constantFrom(5, 6, 7), fc.json()).map(([t, j]) => Buffer.concat([Buffer.from([t]), Buffer.from(j)])),
    fc
      .tuple(
        fc.constantFrom(5, 6, 7),
        fc.record({
          id: fc.oneof(fc.string(), fc.integer()),
          type: fc.string(),
          status: fc.constantFrom('received', 'x', 'failed'),
        }),
      )
      .map(([t, o]) => Buffer.concat([Buffer.from([t]), Buffer.from(JSON.stringify(o))])),
  );
  fc.assert(
    fc.property(innerLike, (b) => onlyPPError(() => decodeInner(Buffer.from(b)))),
    { numRuns: 2000, seed: 2 },
  );
});

test('TCP framer: never throws anything but PPError', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 400 }), { maxLength: 10 }), (chunks) => {
      const d = new TcpFrameDecoder();
      onlyPPError(() => {
        for (const c of chunks) d.push(Buffer.from(c));
      });
    }),
    { numRuns: 1000, seed: 3 },
  );
});

test('responder: random and mutated frames are never accepted', () => {
  const p = pair();
  connect(p, 0, 'a');
  const valid = [p.initiator.sendPacket(ipv4(), 1)!, p.initiator.sendPacket(Buffer.alloc(0), 1)!];
  const [init] = p.initiator.tick(p.initiator.timers.rekeyAfterMs); // a real initiation to mutate
  const originals = [...valid, init!];
  const mutated = fc
    .tuple(
      fc.nat(originals.length - 1),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
    )
    .map(([which, flips]) => {
      const b = Buffer.from(originals[which]!);
      // flips outside MAC2 of the initiation (unused in v1) and outside reserved-zero checks still change authenticated bytes
      const touched = new Set<number>(); // never flip one byte twice: the flips could cancel out
      for (const [at, x] of flips) {
        const pos = at % (which === 2 ? 132 : b.length);
        if (touched.has(pos)) continue;
        touched.add(pos);
        b[pos]! ^= x;
      }
      return b;
    });
  fc.assert(
    fc.property(
      fc.oneof(
        frameLike.map((b) => Buffer.from(b)),
        mutated,
      ),
      (frame) => {
        const r = p.responder.receive(frame, 'fuzz', 2);
        assert.equal(r.kind, 'dropped', `accepted: ${frame.toString('hex')}`);
      },
    ),
    { numRuns: 1500, seed: 4 },
  );
  assert.equal(p.responder.peer('dev_1')!.endpoint, 'a', 'fuzzing never moved the endpoint');
  // the genuine frames still work afterwards
  assert.equal(p.responder.receive(valid[0]!, 'a', 3).kind, 'packet');
});

test('initiator: random and mutated frames are never accepted', () => {
  const p = pair();
  connect(p, 0, 'a');
  const good = p.responder.sendPacket('dev_1', ipv4(), 1)!.frame;
  fc.assert(
    fc.property(
      fc.oneof(
        frameLike.map((b) => Buffer.from(b)),
        fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
          const b = Buffer.from(good);
          b[at]! ^= x;
          return b;
        }),
      ),
      (frame) => {
        assert.equal(p.initiator.receive(frame, 2).kind, 'dropped');
      },
    ),
    { numRuns: 1500, seed: 5 },
  );
  assert.equal(p.initiator.receive(good, 3).kind, 'packet');
  void encodeTcpFrame;
});
