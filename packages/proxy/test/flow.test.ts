// Hold counts and the metered feed in isolation (a PassThrough as the readable, scripted meters).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Hold, MeteredFeed, SLICE_BYTES } from '../src/limits/flow.js';
import type { Meter } from '../src/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

it('Hold pauses on the first reason and resumes only when the last one is released', () => {
  const s = new PassThrough();
  s.resume();
  const h = new Hold(s);
  h.hold();
  h.hold();
  assert.equal(s.isPaused(), true);
  h.release();
  assert.equal(s.isPaused(), true, 'one reason still holds');
  h.release();
  assert.equal(s.isPaused(), false);
  h.release();
  assert.equal(s.isPaused(), false, 'an extra release does not go negative');
  h.hold();
  assert.equal(s.isPaused(), true, 'and the next hold pauses again');
});

/** A meter answering from a script (then 0), recording the sizes it was asked about. */
function scripted(answers: number[]): Meter & { sizes: number[] } {
  const sizes: number[] = [];
  return {
    sizes,
    take: (_d, n) => {
      sizes.push(n);
      return answers.shift() ?? 0;
    },
  };
}

it('slices chunks for the meter but writes slices that need no wait as one buffer', () => {
  const m = scripted([]);
  const out: Buffer[] = [];
  const feed = new MeteredFeed(
    m,
    'down',
    new Hold(new PassThrough()),
    (b) => out.push(b),
    () => assert.fail(),
  );
  const chunk = Buffer.alloc(SLICE_BYTES * 3 + 10, 1);
  feed.push(chunk);
  assert.deepEqual(m.sizes, [SLICE_BYTES, SLICE_BYTES, SLICE_BYTES, 10]);
  assert.equal(out.length, 1);
  assert.equal(out[0], chunk, 'the chunk itself, no copy');
});

it('a wait delivers the slice, holds the source, and goes on with the rest after it; end waits for the rest', async () => {
  const m = scripted([0, 30]);
  const src = new PassThrough();
  src.resume();
  const out: Buffer[] = [];
  const feed = new MeteredFeed(
    m,
    'up',
    new Hold(src),
    (b) => out.push(b),
    () => assert.fail(),
  );
  const chunk = Buffer.alloc(SLICE_BYTES * 3, 2);
  feed.push(chunk);
  assert.deepEqual(
    out.map((b) => b.length),
    [SLICE_BYTES * 2],
    'two slices approved, the second asked for a wait',
  );
  assert.equal(src.isPaused(), true);
  assert.equal(feed.throttledWithin(1000), true);
  let ended = false;
  feed.whenFlushed(() => {
    ended = true;
  });
  assert.equal(ended, false);
  feed.push(Buffer.from('late')); // a source ignoring pause(): appended, not lost
  for (let i = 0; i < 300 && out.length < 2; i++) await sleep(10);
  assert.deepEqual(
    out.map((b) => b.length),
    [SLICE_BYTES * 2, SLICE_BYTES + 4],
  );
  assert.ok(Buffer.concat(out).equals(Buffer.concat([chunk, Buffer.from('late')])));
  assert.equal(ended, true);
  assert.equal(src.isPaused(), false);
});

it('-1 delivers the slices approved before it (the crossing one included), then reports exhaustion once', () => {
  const m = scripted([0, 0, -1]);
  const out: Buffer[] = [];
  let exhausted = 0;
  const feed = new MeteredFeed(
    m,
    'down',
    new Hold(new PassThrough()),
    (b) => out.push(b),
    () => exhausted++,
  );
  feed.push(Buffer.alloc(SLICE_BYTES * 4));
  assert.deepEqual(
    out.map((b) => b.length),
    [SLICE_BYTES * 2],
  );
  assert.equal(exhausted, 1);
  feed.push(Buffer.alloc(10));
  assert.equal(exhausted, 1, 'a stopped feed takes nothing more');
  assert.equal(m.sizes.length, 3);
});

it('stop() hands back what was not delivered yet', () => {
  const feed = new MeteredFeed(
    scripted([50]),
    'up',
    new Hold(new PassThrough()),
    () => {},
    () => {},
  );
  feed.push(Buffer.concat([Buffer.alloc(SLICE_BYTES), Buffer.from('next request')]));
  assert.equal(feed.stop()?.toString(), 'next request');
});
