// farm/threads.ts without threads: the pool's bookkeeping against a fake worker (the real workers run in
// farm.lab.test.ts with --threads 2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import {
  farmThreads,
  type DeviceSpec,
  type FarmWorkerData,
  type FromFarmWorker,
  type ToFarmWorker,
} from '../src/farm/threads.js';

class FakeWorker extends EventEmitter {
  readonly sent: ToFarmWorker[] = [];
  postMessage(m: ToFarmWorker): void {
    this.sent.push(m);
  }
  answer(m: FromFarmWorker): void {
    this.emit('message', m);
  }
  last<T extends ToFarmWorker['t']>(t: T): Extract<ToFarmWorker, { t: T }> {
    const m = [...this.sent].reverse().find((x) => x.t === t);
    assert.ok(m, `a ${t} was sent`);
    return m as Extract<ToFarmWorker, { t: T }>;
  }
}

const DATA: FarmWorkerData = {
  ppRole: 'farm',
  logLevel: 'silent',
  parts: { rotateMethod: 'airplane', airplaneSeconds: 5, insecureHttp: false },
};

const spec = (hw: string): DeviceSpec =>
  ({
    cfg: {
      stateDir: `/tmp/${hw}`,
      tunnelInterface: 'ppf0',
      allowPrivateDestinations: false,
      closeOnRotate: true,
      allowReboot: false,
      airplaneSeconds: 5,
    },
    state: { device_id: hw } as unknown as DeviceSpec['state'],
    kind: 'phone',
    hardwareId: hw,
    bindings: { device: `phone:${hw}` },
  }) as DeviceSpec;

function pool(threads: number) {
  const workers: FakeWorker[] = [];
  const fatal: unknown[] = [];
  const p = farmThreads(
    threads,
    '/entry.js',
    DATA,
    (e) => fatal.push(e),
    (entry, data) => {
      assert.equal(entry, '/entry.js');
      assert.equal(data, DATA);
      const w = new FakeWorker();
      workers.push(w);
      return w as unknown as Worker;
    },
  );
  return { p, workers, fatal };
}

test('devices go to the worker with the fewest, workers start only when needed', async () => {
  const { p, workers } = pool(3);
  assert.equal(workers.length, 0, 'no worker before a device');
  const a = p.create(spec('a'));
  const b = p.create(spec('b'));
  assert.deepEqual([a.thread, b.thread], [0, 1]);
  assert.equal(workers.length, 2);
  const c = p.create(spec('c'));
  const d = p.create(spec('d'));
  assert.deepEqual([c.thread, d.thread], [2, 0]);
  assert.deepEqual(p.load(), [2, 1, 1]);
  // A device that stops frees its place: the next one goes there.
  await b.stop(); // never started: nothing to ask the worker
  assert.deepEqual(p.load(), [2, 0, 1]);
  assert.equal(p.create(spec('e')).thread, 1);
  assert.deepEqual(p.load(), [2, 1, 1]);
});

test("start and stop are settled by their own answers; a failure carries the worker's message", async () => {
  const { p, workers } = pool(1);
  const a = p.create(spec('a'));
  const b = p.create(spec('b'));
  const w = workers[0]!;
  const sa = a.start();
  const sb = b.start();
  const ma = w.sent[0] as Extract<ToFarmWorker, { t: 'start' }>;
  const mb = w.sent[1] as Extract<ToFarmWorker, { t: 'start' }>;
  assert.equal(ma.spec.hardwareId, 'a');
  assert.notEqual(ma.dev, mb.dev);
  assert.notEqual(ma.req, mb.req);
  w.answer({ t: 'failed', req: mb.req, error: 'no relay' });
  await assert.rejects(sb, /no relay/);
  w.answer({ t: 'done', req: ma.req });
  await sa;
  await assert.rejects(a.start(), /already started/);
  // An answer nobody waits for (a stale or unknown request) is ignored.
  w.answer({ t: 'done', req: 9999 });
  // stop: asked of the worker for the same device, settled by its own request's answer.
  const st = a.stop();
  const ms = w.last('stop');
  assert.equal(ms.dev, ma.dev);
  assert.notEqual(ms.req, ma.req);
  assert.deepEqual(p.load(), [2]);
  w.answer({ t: 'done', req: ms.req });
  await st;
  assert.deepEqual(p.load(), [1]);
  await a.stop(); // twice: nothing more
  assert.equal(w.sent.filter((m) => m.t === 'stop').length, 1);
});

test('a stop while the start is under way is sent at once; a failed stop still frees the place', async () => {
  const { p, workers } = pool(2);
  const a = p.create(spec('a'));
  const w = workers[0]!;
  const sa = a.start();
  const start = w.last('start');
  const st = a.stop();
  const stop = w.last('stop');
  w.answer({ t: 'failed', req: stop.req, error: 'tunnel would not close' });
  await assert.rejects(st, /tunnel would not close/);
  assert.deepEqual(p.load(), [0, 0]);
  w.answer({ t: 'failed', req: start.req, error: 'stopped' });
  await assert.rejects(sa, /stopped/);
});

test("a modem's new index goes to its worker; a worker that dies or errs is fatal", () => {
  const { p, workers, fatal } = pool(2);
  const a = p.create({ ...spec('m'), kind: 'modem', modemId: '3' });
  void a.start().catch(() => {});
  const start = workers[0]!.last('start');
  assert.equal(start.spec.modemId, '3');
  a.modemChanged('7');
  assert.deepEqual(workers[0]!.last('modem'), { t: 'modem', dev: start.dev, modemId: '7' });
  workers[0]!.emit('exit', 1);
  assert.equal(fatal.length, 1);
  assert.match(String(fatal[0]), /exited \(code 1\)/);
  workers[0]!.emit('error', new Error('boom'));
  assert.equal(fatal.length, 2);
});

test('a worker that cannot start: create throws and counts nothing on it', () => {
  let fail = true;
  const p = farmThreads(
    2,
    '/e',
    DATA,
    () => {},
    () => {
      if (fail) throw new Error('no threads left');
      return new FakeWorker() as unknown as Worker;
    },
  );
  assert.throws(() => p.create(spec('a')), /no threads left/);
  assert.deepEqual(p.load(), [0, 0]);
  fail = false;
  assert.equal(p.create(spec('b')).thread, 0);
  assert.deepEqual(p.load(), [1, 0]);
});

test('the number of threads is checked', () => {
  for (const n of [0, -1, 1.5, Number.NaN]) assert.throws(() => farmThreads(n, '/e', DATA, () => {}), RangeError);
});
