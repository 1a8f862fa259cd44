// Rotation through one path (services/rotation.ts): the worker's schedule, bulk, manual and the public
// rotation link all queue rotate_ip through the command service (pushed, audited, command_updated); the
// link waits for the result (?wait=), has a status URL, and a per-connection minimum interval (429 +
// Retry-After). A result reported to one API instance wakes a waiter on another (PostgreSQL).
import assert from 'node:assert/strict';
import pino from 'pino';
import { pairDevice, snapshot, type TestSystem } from './harness.js';
import { assertProblem, dev, perBackend, UNKNOWN, type Res } from './api.assert.js';
import { createWorker } from '../src/worker/worker.js';
import { buildSystem } from '../src/system.js';
import { POLL_MS } from '../src/services/rotation.js';
import type { FleetEvent } from '../src/services/events.js';

const pub = { authorization: '' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A device that reported 198.18.<n>.1, with one connection; the link's path. */
async function setup(ts: TestSystem, n: number, extra: Record<string, unknown> = {}) {
  const d = await pairDevice(ts);
  await ts.call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: `198.18.${n}.1` }, dev(d.token));
  const c = await ts.call('POST', '/api/connections', { device_id: d.id, protocol: 'http', ...extra });
  assert.equal(c.status, 201, c.body);
  const path = new URL(c.json.rotation_url).pathname;
  return { d, c: c.json, path, statusPath: `${path}/status` };
}

const rotations = async (ts: TestSystem, deviceId: string) =>
  (
    await ts.db.query<{ id: string; status: string; source: string }>(
      `SELECT id, status, source FROM commands WHERE device_id = $1 AND type = 'rotate_ip' ORDER BY created_at DESC, id DESC`,
      [deviceId],
    )
  ).rows;

/** The device's newest open rotation, once there is one. */
const openRotationId = (ts: TestSystem, deviceId: string) =>
  until(
    'a rotate_ip command',
    async () => (await rotations(ts, deviceId)).find((r) => ['pending', 'sent', 'acked'].includes(r.status))?.id,
  );

const report = (
  ts: TestSystem,
  d: { id: string; token: string },
  cmd: string,
  status: string,
  result?: Record<string, unknown>,
) =>
  ts.call(
    'POST',
    `/api/devices/${d.id}/commands/${cmd}/result`,
    result ? { status, result } : { status },
    dev(d.token),
  );

perBackend(
  'rotation',
  ({ ts, test, backend }) => {
    test('a scheduled rotation goes the one path: pushed at once, audited, the same command_updated as a manual one; its result the same ip_changed event and webhook', async () => {
      ts().clock.advance(61_000);
      const w = createWorker(ts().sys.ctx, { post: async () => 200 });
      const sched = await pairDevice(ts());
      const manual = await pairDevice(ts());
      await ts().call('POST', `/api/devices/${sched.id}/heartbeat`, { public_ip: '198.18.50.1' }, dev(sched.token));
      const hook = `whk_${'rot'.padEnd(12, '0')}`;
      await ts().db.query('INSERT INTO webhooks (id, url, secret_enc, events) VALUES ($1, $2, $3, $4)', [
        hook,
        'https://hooks.example.com/ip',
        ts().sys.ctx.box.seal('whsec_rotation_test_0123456789'),
        ['ip_changed'],
      ]);
      await ts().call('PATCH', `/api/devices/${sched.id}`, { rotation_interval_s: 120 });
      const events: FleetEvent[] = [];
      const unsub = ts().sys.ctx.bus.subscribe((e) => e.type === 'command_updated' && events.push(e));
      ts().push.delivered = true;
      ts().push.sent = [];
      try {
        ts().clock.advance(121_000);
        const res = await w.tick();
        assert.equal(res.find((r) => r.job === 'autoRotate')!.changed, 1);
        const m = await ts().call('POST', `/api/devices/${manual.id}/commands`, { type: 'rotate_ip' });
        assert.equal(m.status, 201, m.body);
        const [s] = await rotations(ts(), sched.id);
        assert.deepEqual(
          [s!.source, s!.status],
          ['schedule', 'sent'],
          'pushed at once: sent, not waiting for the next heartbeat',
        );
        assert.deepEqual(
          ts().push.sent.map((p) => [p.deviceId, p.message.kind, p.message.type, p.message.id]),
          [
            [sched.id, 'command', 'rotate_ip', s!.id],
            [manual.id, 'command', 'rotate_ip', m.json.id],
          ],
        );
        // the same events, in the same shape, for both
        const of = (id: string) => events.filter((e) => e.data.id === id);
        assert.deepEqual(
          of(s!.id).map((e) => e.data.status),
          ['pending', 'sent'],
        );
        assert.deepEqual(
          of(m.json.id).map((e) => e.data.status),
          ['pending', 'sent'],
        );
        assert.deepEqual(Object.keys(of(s!.id)[1]!.data).sort(), Object.keys(of(m.json.id)[1]!.data).sort());
        // audited, both
        const audit = await ts().db.query<{ actor: string; target_id: string; data: Record<string, unknown> }>(
          `SELECT actor, target_id, data FROM audit_log WHERE action = 'command.create' AND target_id = ANY($1::text[]) ORDER BY id`,
          [[s!.id, m.json.id]],
        );
        assert.deepEqual(
          audit.rows.map((a) => [a.target_id, a.actor === 'worker', a.data.source, a.data.type, a.data.device_id]),
          [
            [s!.id, true, 'schedule', 'rotate_ip', sched.id],
            [m.json.id, false, 'api', 'rotate_ip', manual.id],
          ],
        );
        // the device's result: IP history, ip_changed (bus, event row, webhook delivery)
        const ipEvents: FleetEvent[] = [];
        const unsub2 = ts().sys.ctx.bus.subscribe((e) => e.type === 'ip_changed' && ipEvents.push(e));
        await report(ts(), sched, s!.id, 'acked');
        assert.equal(
          (await report(ts(), sched, s!.id, 'succeeded', { old_ip: '198.18.50.1', new_ip: '198.18.50.2' })).json.status,
          'succeeded',
        );
        unsub2();
        assert.deepEqual(
          ipEvents.map((e) => [e.data.device_id, e.data.old_ip, e.data.new_ip, e.data.reason]),
          [[sched.id, '198.18.50.1', '198.18.50.2', 'rotation']],
        );
        const del = await ts().db.query<{ payload: { device_id: string; data: { new_ip: string } } }>(
          'SELECT payload FROM webhook_deliveries WHERE webhook_id = $1',
          [hook],
        );
        assert.deepEqual(
          del.rows.map((r) => [r.payload.device_id, r.payload.data.new_ip]),
          [[sched.id, '198.18.50.2']],
        );
        assert.equal((await ts().call('GET', `/api/devices/${sched.id}`)).json.current_ip, '198.18.50.2');
      } finally {
        unsub();
        ts().push.delivered = false;
        await ts().db.query('DELETE FROM webhooks WHERE id = $1', [hook]);
      }
    });

    test('a scheduled rotation joins one already running (the link asked first): no second command', async () => {
      ts().clock.advance(61_000);
      const w = createWorker(ts().sys.ctx, { post: async () => 200 });
      const { d, path } = await setup(ts(), 51);
      await ts().call('PATCH', `/api/devices/${d.id}`, { rotation_interval_s: 60 });
      assert.equal((await ts().call('GET', path, undefined, pub)).status, 202);
      ts().clock.advance(61_000);
      await w.tick();
      assert.deepEqual(
        (await rotations(ts(), d.id)).map((r) => r.source),
        ['rotation_link'],
      );
    });

    test('?wait: answers when the device reports succeeded, with the old and new address (woken by the event, not a poll)', async () => {
      ts().clock.advance(61_000);
      const { d, path, statusPath } = await setup(ts(), 52);
      const t0 = Date.now();
      const pending = ts().call('GET', `${path}?wait=20`, undefined, pub);
      const id = await openRotationId(ts(), d.id);
      await sleep(150); // the waiter is listening by now
      await report(ts(), d, id, 'acked');
      await sleep(50);
      const tReport = Date.now();
      await report(ts(), d, id, 'succeeded', { old_ip: '198.18.52.1', new_ip: '198.18.52.2' });
      const res = await pending;
      const woke = Date.now() - tReport;
      assert.equal(res.status, 200, res.body);
      const row = (await ts().call('GET', `/api/devices/${d.id}/commands?limit=1`)).json.items[0];
      assert.deepEqual(res.json, {
        status: 'succeeded',
        command_id: id,
        old_ip: '198.18.52.1',
        new_ip: '198.18.52.2',
        rotated_at: row.finished_at,
        requested_at: row.created_at,
        status_url: `http://relay.example.net:8080${statusPath}`,
        already_queued: false,
      });
      assert.ok(woke < 1000 && woke < POLL_MS, `answered ${woke} ms after the result`);
      assert.ok(Date.now() - t0 < 5000);
      // the status URL answers the same, at once
      const st = await ts().call('GET', statusPath, undefined, pub);
      assert.equal(st.status, 200);
      const { already_queued: _, ...same } = res.json;
      assert.deepEqual(st.json, same);
      assert.equal(
        (await ts().call('GET', `${statusPath}?wait=5`, undefined, pub)).status,
        200,
        'a finished rotation is answered at once',
      );
    });

    test("?wait: a failed rotation answers 200 failed without the device's error text; an expired one 200 expired", async () => {
      ts().clock.advance(61_000);
      const { d, path } = await setup(ts(), 53);
      const pending = ts().call('GET', `${path}?wait=20`, undefined, pub);
      const id = await openRotationId(ts(), d.id);
      await sleep(100);
      await report(ts(), d, id, 'failed', {
        error: 'PP_ERR_AGENT_COMMAND_FAILED /opt/secret/rotate.sh exited 1',
        code: 'PP_ERR_AGENT_COMMAND_FAILED',
      });
      const res = await pending;
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.status, 'failed');
      assert.equal(res.json.command_id, id);
      assert.deepEqual([res.json.old_ip, res.json.new_ip, res.json.rotated_at], [null, null, null]);
      assert.doesNotMatch(res.body, /secret|rotate\.sh|PP_ERR_AGENT/);
      // expired by the worker while a link waits (the device never answered)
      ts().clock.advance(61_000);
      const again = ts().call('GET', `${path}?wait=20`, undefined, pub);
      const id2 = await openRotationId(ts(), d.id);
      assert.notEqual(id2, id);
      await sleep(100);
      ts().clock.advance(301_000); // the link's ttl is 300 s
      await createWorker(ts().sys.ctx, { post: async () => 200 }).tick();
      const exp = await again;
      assert.equal(exp.status, 200, exp.body);
      assert.deepEqual([exp.json.status, exp.json.command_id, exp.json.new_ip], ['expired', id2, null]);
    });

    test('?wait runs out: 202 pending after about the wait; without wait: 202 at once with the status URL; a second request joins', async () => {
      ts().clock.advance(61_000);
      const { d, path, statusPath } = await setup(ts(), 54);
      const now = await ts().call('GET', path, undefined, pub);
      assert.equal(now.status, 202, now.body);
      assert.equal(now.json.status, 'pending');
      assert.match(now.json.command_id, /^cmd_/);
      assert.equal(now.json.status_url, `http://relay.example.net:8080${statusPath}`);
      assert.equal(now.json.already_queued, false);
      const t0 = Date.now();
      const waited = await ts().call('GET', `${path}?wait=1`, undefined, pub);
      const took = Date.now() - t0;
      assert.equal(waited.status, 202, waited.body);
      assert.deepEqual(
        [waited.json.status, waited.json.command_id, waited.json.already_queued],
        ['pending', now.json.command_id, true],
      );
      assert.ok(took >= 950 && took < 3000, `waited ${took} ms for wait=1`);
      await report(ts(), d, now.json.command_id, 'acked');
      const st = await ts().call('GET', `${statusPath}?wait=1`, undefined, pub);
      assert.deepEqual(
        [st.status, st.json.status, st.json.command_id],
        [202, 'pending', now.json.command_id],
        'acked is still pending to the link',
      );
      assert.equal((await rotations(ts(), d.id)).length, 1, 'nothing stacked');
      // two at once: one rotation (the device row is locked while the first queues)
      await report(ts(), d, now.json.command_id, 'succeeded', { old_ip: '198.18.54.1', new_ip: '198.18.54.2' });
      const both = await Promise.all([ts().call('GET', path, undefined, pub), ts().call('GET', path, undefined, pub)]);
      assert.deepEqual(
        both.map((r) => r.status),
        [202, 202],
      );
      assert.equal(both[0]!.json.command_id, both[1]!.json.command_id);
      assert.deepEqual(both.map((r) => r.json.already_queued).sort(), [false, true]);
      assert.equal((await rotations(ts(), d.id)).length, 2);
    });

    test('the status URL: the latest rotation of the device, whoever asked; 404 before the first; wait out of range is 400 and queues nothing', async () => {
      ts().clock.advance(61_000);
      const { d, path, statusPath } = await setup(ts(), 55);
      const none = await ts().call('GET', statusPath, undefined, pub);
      assertProblem(none, 404, 'PP_ERR_API_NOT_FOUND');
      const m = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip' })).json;
      const st = await ts().call('GET', statusPath, undefined, pub);
      assert.deepEqual([st.status, st.json.status, st.json.command_id], [202, 'pending', m.id]);
      assert.equal(st.json.already_queued, undefined);
      const before = await snapshot(ts().db);
      for (const w of ['0', '61', '-1', '1.5', 'abc', '', '1e9']) {
        assertProblem(await ts().call('GET', `${path}?wait=${w}`, undefined, pub), 400, 'PP_ERR_API_VALIDATION');
        assertProblem(await ts().call('GET', `${statusPath}?wait=${w}`, undefined, pub), 400, 'PP_ERR_API_VALIDATION');
      }
      assert.equal(await snapshot(ts().db), before);
      assert.equal((await ts().call('GET', `${statusPath}?wait=1`, undefined, pub)).status, 202);
      await report(ts(), d, m.id, 'succeeded', { old_ip: '198.18.55.1', new_ip: '198.18.55.2' });
      const done = await ts().call('GET', `${statusPath}?wait=60`, undefined, pub);
      assert.deepEqual([done.status, done.json.status, done.json.new_ip], [200, 'succeeded', '198.18.55.2']);
    });

    test('rotation_min_interval_s: API fields and bounds; the link answers 429 with Retry-After until the interval since the last rotation has passed', async () => {
      ts().clock.advance(61_000);
      const { d, c, path } = await setup(ts(), 56, { rotation_min_interval_s: 120 });
      assert.equal(c.rotation_min_interval_s, 120);
      assert.equal((await ts().call('GET', `/api/connections/${c.id}`)).json.rotation_min_interval_s, 120);
      const plain = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'socks5' })).json;
      assert.equal(plain.rotation_min_interval_s, null, 'no minimum unless set');
      const before = await snapshot(ts().db);
      for (const v of [-1, 86_401, 1.5, '60', true]) {
        assertProblem(
          await ts().call('PATCH', `/api/connections/${c.id}`, { rotation_min_interval_s: v }),
          400,
          'PP_ERR_API_VALIDATION',
        );
        assertProblem(
          await ts().call('POST', '/api/connections', {
            device_id: d.id,
            protocol: 'http',
            rotation_min_interval_s: v,
          }),
          400,
          'PP_ERR_API_VALIDATION',
        );
      }
      assert.equal(await snapshot(ts().db), before);
      for (const v of [0, 86_400, null, 120])
        assert.equal(
          (await ts().call('PATCH', `/api/connections/${c.id}`, { rotation_min_interval_s: v })).json
            .rotation_min_interval_s,
          v,
        );
      assert.equal(
        (await ts().call('PATCH', `/api/connections/${c.id}`, { enabled: true })).json.rotation_min_interval_s,
        120,
        'PATCH keeps it when not named',
      );

      const first = await ts().call('GET', path, undefined, pub);
      assert.equal(first.status, 202);
      ts().clock.advance(30_000);
      // still open: a request joins it, whatever the interval
      const join = await ts().call('GET', path, undefined, pub);
      assert.deepEqual(
        [join.status, join.json.command_id, join.json.already_queued],
        [202, first.json.command_id, true],
      );
      await report(ts(), d, first.json.command_id, 'succeeded', { old_ip: '198.18.56.1', new_ip: '198.18.56.2' });
      ts().clock.advance(10_000);
      const soon = await ts().call('GET', path, undefined, pub);
      assertProblem(soon, 429, 'PP_ERR_API_ROTATION_TOO_SOON');
      assert.equal(soon.headers['retry-after'], '80');
      assert.match(soon.json.detail, /one rotation every 120 s; retry in 80 s/);
      ts().clock.advance(79_000);
      const still = await ts().call('GET', path, undefined, pub);
      assertProblem(still, 429, 'PP_ERR_API_ROTATION_TOO_SOON');
      assert.equal(still.headers['retry-after'], '1');
      assert.equal((await rotations(ts(), d.id)).length, 1, 'refused requests queue nothing');
      ts().clock.advance(1_000);
      const ok = await ts().call('GET', path, undefined, pub);
      assert.equal(ok.status, 202, ok.body);
      assert.equal(ok.json.already_queued, false);
      await report(ts(), d, ok.json.command_id, 'failed', { error: 'x' });
      // any rotation of the device counts (here the operator's), and the other connection's link has no minimum
      ts().clock.advance(200_000);
      await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip' });
      const mine = await ts().call('GET', path, undefined, pub);
      assert.equal(mine.status, 202, "joins the operator's open rotation");
      await report(ts(), d, mine.json.command_id, 'succeeded', { old_ip: '198.18.56.2', new_ip: '198.18.56.3' });
      ts().clock.advance(5_000);
      assert.equal((await ts().call('GET', path, undefined, pub)).headers['retry-after'], '115');
      assert.equal((await ts().call('GET', new URL(plain.rotation_url).pathname, undefined, pub)).status, 202);
      // the per-connection rate limit still guards the link
      ts().clock.advance(61_000);
      await ts().call('PATCH', `/api/connections/${c.id}`, { rotation_min_interval_s: null });
      const limit = ts().sys.ctx.config.rotateLinkRatePerMin;
      const codes: number[] = [];
      for (let i = 0; i <= limit; i++) codes.push((await ts().call('GET', path, undefined, pub)).status);
      assert.equal(codes.at(-1), 429);
      assert.ok(codes.slice(0, -1).every((s) => s === 202));
    });

    test('bad tokens: the same 404 whatever was wrong, on both routes, with or without wait; nothing changes', async () => {
      ts().clock.advance(61_000);
      const { statusPath } = await setup(ts(), 57);
      const before = await snapshot(ts().db);
      const bad = [
        'A'.repeat(32),
        'short',
        'x'.repeat(100),
        'has.dot.in.it.0123456789',
        '%00%00%00%00%00%00%00%00%00%00',
        `${'B'.repeat(31)}'`,
      ];
      const answers: Res[] = [];
      for (const tok of bad) {
        for (const suffix of ['', '?wait=1', '/status', '/status?wait=1']) {
          const res = await ts().call('GET', `/api/public/rotate/${tok}${suffix}`, undefined, pub);
          assertProblem(res, 404, 'PP_ERR_API_NOT_FOUND');
          answers.push(res);
        }
      }
      const shape = (r: Res) => JSON.stringify({ ...r.json, request_id: '' });
      assert.equal(
        new Set(answers.map(shape)).size,
        1,
        `one answer for every bad token: ${[...new Set(answers.map(shape))].join(' | ')}`,
      );
      // a valid link with no rotation yet answers the same on its status URL
      assert.equal(shape(await ts().call('GET', statusPath, undefined, pub)), shape(answers[0]!));
      for (const r of answers) assert.doesNotMatch(r.body, /dev_|con_|cmd_|token|hash/);
      // past 100 characters the router itself matches no route: a 404 all the same
      assert.equal(
        (await ts().call('GET', `/api/public/rotate/${'x'.repeat(129)}?wait=1`, undefined, pub)).status,
        404,
      );
      assert.equal(await snapshot(ts().db), before);
    });

    test('POST /api/devices/rotate: one rotation per device, an answer per device (queued, joined, not_found)', async () => {
      ts().clock.advance(61_000);
      const a = await pairDevice(ts());
      const b = await pairDevice(ts());
      const open = (await ts().call('POST', `/api/devices/${b.id}/commands`, { type: 'rotate_ip' })).json;
      ts().push.delivered = true;
      ts().push.sent = [];
      try {
        const res = await ts().call('POST', '/api/devices/rotate', { device_ids: [a.id, b.id, UNKNOWN.dev, a.id] });
        assert.equal(res.status, 200, res.body);
        assert.deepEqual(
          res.json.items.map((i: { device_id: string; outcome: string; error: string | null }) => [
            i.device_id,
            i.outcome,
            i.error,
          ]),
          [
            [a.id, 'queued', null],
            [b.id, 'joined', null],
            [UNKNOWN.dev, 'not_found', 'PP_ERR_API_NOT_FOUND'],
          ],
        );
        const qa = res.json.items[0].command;
        assert.deepEqual([qa.type, qa.source, qa.status], ['rotate_ip', 'bulk', 'sent']);
        assert.equal(res.json.items[1].command.id, open.id);
        assert.deepEqual(
          ts().push.sent.map((p) => [p.deviceId, p.message.id]),
          [[a.id, qa.id]],
          'pushed; a joined rotation is not pushed again',
        );
        assert.equal(
          (await ts().db.query(`SELECT 1 FROM audit_log WHERE action = 'command.create' AND target_id = $1`, [qa.id]))
            .rows.length,
          1,
        );
      } finally {
        ts().push.delivered = false;
      }
      const before = await snapshot(ts().db);
      for (const body of [
        {},
        { device_ids: [] },
        { device_ids: ['nope'] },
        { device_ids: Array.from({ length: 1001 }, () => a.id) },
        { device_ids: [a.id], extra: 1 },
        { device_ids: [a.id], ttl_s: 5 },
      ]) {
        assertProblem(await ts().call('POST', '/api/devices/rotate', body), 400, 'PP_ERR_API_VALIDATION');
      }
      assertProblem(await ts().call('POST', '/api/devices/rotate', { device_ids: [a.id] }, { authorization: '' }), 401);
      assert.equal(await snapshot(ts().db), before);
    });

    test("an operator's rotate_ip is a command of its own, as before (never joined)", async () => {
      const d = await pairDevice(ts());
      const one = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip', ttl_s: 60 })).json;
      const two = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip' })).json;
      assert.notEqual(one.id, two.id);
      assert.equal(Date.parse(one.expires_at) - Date.parse(one.created_at), 60_000);
      assert.deepEqual(
        (await rotations(ts(), d.id)).map((r) => r.source),
        ['api', 'api'],
      );
    });

    if (backend === 'postgres') {
      test('a result reported to one API instance wakes a link waiting on another (LISTEN/NOTIFY)', async () => {
        ts().clock.advance(61_000);
        const { d, path } = await setup(ts(), 58);
        const a = ts();
        const b = await buildSystem(a.sys.ctx.config, { clock: a.clock, push: a.push, log: pino({ level: 'silent' }) });
        try {
          const res = b.api.inject({ method: 'GET', url: `${path}?wait=20` });
          const id = await openRotationId(a, d.id);
          await sleep(500); // B's waiter listens; its first read has seen the command open
          const tReport = Date.now();
          const r = await report(a, d, id, 'succeeded', { old_ip: '198.18.58.1', new_ip: '198.18.58.2' });
          assert.equal(r.status, 200);
          const out = await res;
          const woke = Date.now() - tReport;
          assert.equal(out.statusCode, 200, out.body);
          assert.deepEqual(
            [out.json().status, out.json().command_id, out.json().new_ip],
            ['succeeded', id, '198.18.58.2'],
          );
          assert.ok(
            woke < 2000 && woke < POLL_MS,
            `instance B answered ${woke} ms after instance A recorded the result (the event, not B's ${POLL_MS} ms poll)`,
          );
          console.error(`rotation: cross-instance wake ${woke} ms`);
        } finally {
          await b.close();
        }
      });
    }
  },
  { POCKETPROXY_PAIRING_RATE: '10000', POCKETPROXY_ROTATE_LINK_RATE: '6' },
);
