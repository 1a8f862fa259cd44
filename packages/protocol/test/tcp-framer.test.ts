import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isPPError } from '@pocketproxy/errors';
import { TcpFrameDecoder, encodeTcpFrame, tcpLengthPrefix, MAX_FRAME_LEN } from '../src/index.js';
import { connect, ipv4, pair } from './helpers.js';

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

test('frames survive any chunking of the stream (bounded fast-check)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 32, maxLength: 3000 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeTcpFrame(Buffer.from(f))));
        const d = new TcpFrameDecoder();
        const got: Buffer[] = [];
        for (const chunk of splitAt(stream, cuts)) got.push(...d.push(chunk));
        assert.equal(got.length, frames.length);
        for (const [i, g] of got.entries()) assert.deepEqual(g, Buffer.from(frames[i]!));
        assert.equal(d.buffered, 0);
      },
    ),
    { numRuns: 200, seed: 7 },
  );
});

test('one byte at a time, and a maximum-size frame', () => {
  const big = Buffer.alloc(MAX_FRAME_LEN, 0xab);
  const stream = Buffer.concat([encodeTcpFrame(big), encodeTcpFrame(Buffer.alloc(32, 1))]);
  const d = new TcpFrameDecoder();
  const got: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) got.push(...d.push(stream.subarray(i, i + 1)));
  assert.equal(got.length, 2);
  assert.deepEqual(got[0], big);
  assert.equal(d.buffered, 0);
});

test('whole frames inside one chunk are returned without copying', () => {
  const f = Buffer.alloc(40, 5);
  const chunk = Buffer.concat([encodeTcpFrame(f), encodeTcpFrame(f)]);
  const [a, b] = new TcpFrameDecoder().push(chunk);
  assert.equal(a!.buffer, chunk.buffer);
  assert.equal(b!.buffer, chunk.buffer);
});

test('a length below the smallest frame poisons the stream with a PPError', () => {
  const d = new TcpFrameDecoder();
  assert.throws(
    () => d.push(Buffer.from([0, 5, 1, 2, 3, 4, 5])),
    (e) => isPPError(e) && e.code === 'PP_ERR_TUNNEL_TCP_FRAME_LENGTH',
  );
  assert.throws(
    () => d.push(encodeTcpFrame(Buffer.alloc(40))),
    (e) => isPPError(e),
  );
  assert.throws(
    () => encodeTcpFrame(Buffer.alloc(10)),
    (e) => isPPError(e),
  );
  assert.throws(
    () => tcpLengthPrefix(MAX_FRAME_LEN + 1),
    (e) => isPPError(e),
  );
});

test('a whole tunnel session over the TCP framing', () => {
  const p = pair();
  const up = new TcpFrameDecoder();
  const downDec = new TcpFrameDecoder();
  const [init] = p.initiator.tick(0);
  const [initRx] = up.push(encodeTcpFrame(init!));
  const rep = p.responder.receive(initRx!, 'tcp:1', 0);
  assert.equal(rep.kind, 'reply');
  if (rep.kind !== 'reply') return;
  const [repRx] = downDec.push(encodeTcpFrame(rep.frame));
  const est = p.initiator.receive(repRx!, 1);
  assert.equal(est.kind, 'established');
  if (est.kind !== 'established') return;
  const wire = Buffer.concat([...est.send, p.initiator.sendPacket(ipv4(1380), 2)!].map(encodeTcpFrame));
  const kinds = [...up.push(wire.subarray(0, 700)), ...up.push(wire.subarray(700))].map(
    (f) => p.responder.receive(f, 'tcp:1', 3).kind,
  );
  assert.deepEqual(kinds, ['keepalive', 'packet']);
  void connect;
});
