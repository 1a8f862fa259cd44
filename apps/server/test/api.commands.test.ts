// Device commands end to end: queue (admin), push (FakePush), heartbeat delivery, results (device token).
import assert from 'node:assert/strict';
import { pairDevice, snapshot } from './harness.js';
import { assertProblem, dev, perBackend, UNKNOWN } from './api.assert.js';

perBackend(
  'commands',
  ({ ts, test }) => {
    test('201 for each of the 5 types; listed newest first; 400 invalid type/payload/ttl; 404 unknown device', async () => {
      const d = await pairDevice(ts());
      const types = ['rotate_ip', 'wifi_toggle', 'airplane_mode', 'reboot', 'config_update'];
      const ids: string[] = [];
      for (const type of types) {
        ts().clock.advance(1000);
        const res = await ts().call('POST', `/api/devices/${d.id}/commands`, {
          type,
          payload: type === 'config_update' ? { heartbeat_s: 30 } : undefined,
        });
        assert.equal(res.status, 201, res.body);
        assert.match(res.json.id, /^cmd_/);
        assert.equal(res.json.type, type);
        assert.equal(res.json.status, 'pending');
        assert.equal(res.json.source, 'api');
        assert.equal(Date.parse(res.json.expires_at) - Date.parse(res.json.created_at), 600_000);
        ids.push(res.json.id);
      }
      const list = await ts().call('GET', `/api/devices/${d.id}/commands`);
      assert.equal(list.status, 200);
      assert.equal(list.json.total, 5);
      assert.deepEqual(
        list.json.items.map((c: { id: string }) => c.id),
        [...ids].reverse(),
      );
      assert.equal((await ts().call('GET', `/api/devices/${d.id}/commands?limit=2`)).json.items.length, 2);
      const before = await snapshot(ts().db);
      for (const body of [
        { type: 'self_destruct' },
        {},
        { type: 'reboot', payload: [] },
        { type: 'reboot', payload: 'x' },
        { type: 'reboot', ttl_s: 5 },
        { type: 'reboot', ttl_s: 86401 },
        { type: 'reboot', extra: true },
      ]) {
        assertProblem(await ts().call('POST', `/api/devices/${d.id}/commands`, body), 400, 'PP_ERR_API_VALIDATION');
      }
      assertProblem(
        await ts().call('POST', `/api/devices/${UNKNOWN.dev}/commands`, { type: 'reboot' }),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(await ts().call('GET', `/api/devices/${UNKNOWN.dev}/commands`), 404, 'PP_ERR_API_NOT_FOUND');
      assert.equal(await snapshot(ts().db), before);
    });

    test('pushed at once when the tunnel delivers: status sent; otherwise pending and delivered in the next heartbeat', async () => {
      const d = await pairDevice(ts());
      ts().push.delivered = true;
      try {
        const res = await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'reboot' });
        assert.equal(res.status, 201);
        assert.equal(res.json.status, 'sent');
        assert.ok(res.json.sent_at);
        const sent = ts().push.sent.at(-1)!;
        assert.equal(sent.deviceId, d.id);
        assert.equal(sent.pushUrl, ts().sys.ctx.config.pushUrl);
        assert.deepEqual(sent.message, { kind: 'command', id: res.json.id, type: 'reboot', payload: {} });
        // a sent command is not delivered again by the heartbeat straight away
        const hb = await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token));
        assert.deepEqual(hb.json.commands, []);
        // ...but is after two heartbeat intervals without an acknowledgement
        ts().clock.advance(ts().sys.ctx.config.heartbeatIntervalS * 2000 + 1000);
        const hb2 = await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token));
        assert.deepEqual(
          hb2.json.commands.map((c: { id: string }) => c.id),
          [res.json.id],
        );
      } finally {
        ts().push.delivered = false;
      }
      const pend = await ts().call('POST', `/api/devices/${d.id}/commands`, {
        type: 'wifi_toggle',
        payload: { on: false },
      });
      assert.equal(pend.json.status, 'pending');
      const hb = await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token));
      assert.deepEqual(hb.json.commands, [{ id: pend.json.id, type: 'wifi_toggle', payload: { on: false } }]);
      const got = (await ts().call('GET', `/api/devices/${d.id}/commands?limit=1`)).json.items[0];
      assert.equal(got.status, 'sent');
      // delivered once: the next heartbeat has nothing new
      assert.deepEqual((await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token))).json.commands, []);
    });

    test('result transitions: acked → succeeded with result; repeating a state is idempotent; impossible moves 409', async () => {
      const d = await pairDevice(ts());
      const c = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'airplane_mode' })).json;
      const url = `/api/devices/${d.id}/commands/${c.id}/result`;
      const ack = await ts().call('POST', url, { status: 'acked' }, dev(d.token));
      assert.equal(ack.status, 200, ack.body);
      assert.equal(ack.json.status, 'acked');
      assert.ok(ack.json.acked_at);
      assert.equal((await ts().call('POST', url, { status: 'acked' }, dev(d.token))).json.status, 'acked');
      const ok = await ts().call('POST', url, { status: 'succeeded', result: { took_ms: 1200 } }, dev(d.token));
      assert.equal(ok.json.status, 'succeeded');
      assert.deepEqual(ok.json.result, { took_ms: 1200 });
      assert.ok(ok.json.finished_at);
      const before = await snapshot(ts().db);
      assertProblem(await ts().call('POST', url, { status: 'acked' }, dev(d.token)), 409, 'PP_ERR_API_COMMAND_STATE');
      assertProblem(await ts().call('POST', url, { status: 'failed' }, dev(d.token)), 409, 'PP_ERR_API_COMMAND_STATE');
      assertProblem(await ts().call('POST', url, { status: 'pending' }, dev(d.token)), 400, 'PP_ERR_API_VALIDATION');
      assertProblem(await ts().call('POST', url, { status: 'expired' }, dev(d.token)), 400, 'PP_ERR_API_VALIDATION');
      assertProblem(
        await ts().call('POST', url, { status: 'succeeded', result: 'ok' }, dev(d.token)),
        400,
        'PP_ERR_API_VALIDATION',
      );
      assert.equal(await snapshot(ts().db), before);
      // failed records an event
      const c2 = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'reboot' })).json;
      const f = await ts().call(
        'POST',
        `/api/devices/${d.id}/commands/${c2.id}/result`,
        { status: 'failed', result: { error: 'no root' } },
        dev(d.token),
      );
      assert.equal(f.json.status, 'failed');
      const ev = await ts().db.query<{ data: { command_id: string } }>(
        `SELECT data FROM events WHERE type = 'command_failed' AND device_id = $1`,
        [d.id],
      );
      assert.equal(ev.rows[0]?.data.command_id, c2.id);
    });

    test('a succeeded rotate_ip records the address change', async () => {
      const d = await pairDevice(ts());
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: '198.18.3.1' }, dev(d.token));
      const c = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip' })).json;
      await ts().call(
        'POST',
        `/api/devices/${d.id}/commands/${c.id}/result`,
        { status: 'succeeded', result: { new_ip: '198.18.3.2' } },
        dev(d.token),
      );
      const h = (await ts().call('GET', `/api/devices/${d.id}/ip-history`)).json.items[0];
      assert.deepEqual([h.old_ip, h.new_ip, h.reason], ['198.18.3.1', '198.18.3.2', 'rotation']);
    });

    // Issue 12: every rotation appeared twice in the events feed and IP history ('observed', 'rotation').
    const ipRows = async (deviceId: string) => ({
      history: (await ts().call('GET', `/api/devices/${deviceId}/ip-history`)).json.items.map(
        (h: { old_ip: string | null; new_ip: string; reason: string }) => `${h.old_ip}->${h.new_ip}:${h.reason}`,
      ),
      events: (
        await ts().db.query<{ d: string }>(
          `SELECT coalesce(data->>'old_ip', 'null') || '->' || (data->>'new_ip') || ':' || (data->>'reason') AS d FROM events
            WHERE device_id = $1 AND type = 'ip_changed' ORDER BY id DESC`,
          [deviceId],
        )
      ).rows.map((r) => r.d),
    });
    const rotateOnce = async (deviceId: string, token: string, order: 'result-first' | 'heartbeat-first') => {
      const c = (await ts().call('POST', `/api/devices/${deviceId}/commands`, { type: 'rotate_ip' })).json;
      const url = `/api/devices/${deviceId}/commands/${c.id}/result`;
      assert.equal((await ts().call('POST', url, { status: 'acked' }, dev(token))).status, 200);
      const hb = () => ts().call('POST', `/api/devices/${deviceId}/heartbeat`, { public_ip: '198.18.4.2' }, dev(token));
      const result = () =>
        ts().call(
          'POST',
          url,
          { status: 'succeeded', result: { old_ip: '198.18.4.1', new_ip: '198.18.4.2' } },
          dev(token),
        );
      for (const step of order === 'result-first' ? [result, hb] : [hb, result]) {
        ts().clock.advance(1000);
        assert.equal((await step()).status, 200);
      }
      // And the next regular heartbeat, with the same address.
      ts().clock.advance(30_000);
      assert.equal((await hb()).status, 200);
    };
    for (const order of ['result-first', 'heartbeat-first'] as const)
      test(`one rotation = one IP history row and one ip_changed event (${order})`, async () => {
        const d = await pairDevice(ts());
        await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: '198.18.4.1' }, dev(d.token));
        await rotateOnce(d.id, d.token, order);
        assert.deepEqual(await ipRows(d.id), {
          history: ['198.18.4.1->198.18.4.2:rotation', 'null->198.18.4.1:observed'],
          events: ['198.18.4.1->198.18.4.2:rotation', 'null->198.18.4.1:observed'],
        });
        assert.equal((await ts().call('GET', `/api/devices/${d.id}`)).json.current_ip, '198.18.4.2');
      });

    test("an address a heartbeat reports before the rotation's ack (an older agent) becomes the rotation's row", async () => {
      const d = await pairDevice(ts());
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: '198.18.5.1' }, dev(d.token));
      const c = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip' })).json;
      ts().clock.advance(1000);
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: '198.18.5.2' }, dev(d.token));
      ts().clock.advance(1000);
      const r = await ts().call(
        'POST',
        `/api/devices/${d.id}/commands/${c.id}/result`,
        { status: 'succeeded', result: { old_ip: '198.18.5.1', new_ip: '198.18.5.2' } },
        dev(d.token),
      );
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(await ipRows(d.id), {
        history: ['198.18.5.1->198.18.5.2:rotation', 'null->198.18.5.1:observed'],
        events: ['198.18.5.1->198.18.5.2:rotation', 'null->198.18.5.1:observed'],
      });
    });

    test('an address change without a rotation is still recorded, once, as observed', async () => {
      const d = await pairDevice(ts());
      for (const ip of ['198.18.6.1', '198.18.6.2', '198.18.6.2']) {
        ts().clock.advance(1000);
        await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: ip }, dev(d.token));
      }
      // A rotation that failed leaves the next change to the heartbeat too.
      const c = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip' })).json;
      const url = `/api/devices/${d.id}/commands/${c.id}/result`;
      await ts().call('POST', url, { status: 'acked' }, dev(d.token));
      await ts().call('POST', url, { status: 'failed', result: { error: 'no signal' } }, dev(d.token));
      ts().clock.advance(1000);
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: '198.18.6.3' }, dev(d.token));
      assert.deepEqual(await ipRows(d.id), {
        history: ['198.18.6.2->198.18.6.3:observed', '198.18.6.1->198.18.6.2:observed', 'null->198.18.6.1:observed'],
        events: ['198.18.6.2->198.18.6.3:observed', '198.18.6.1->198.18.6.2:observed', 'null->198.18.6.1:observed'],
      });
    });

    test('capabilities: reported by the heartbeat, stored, on the device; a command outside them is refused (409) and nothing is queued; unknown types ignored; not reported = every command', async () => {
      const d = await pairDevice(ts());
      assert.equal((await ts().call('GET', `/api/devices/${d.id}`)).json.capabilities, null);
      // An older agent (no capabilities): every command is accepted, as before.
      assert.equal((await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'airplane_mode' })).status, 201);
      const hb = await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { capabilities: ['rotate_ip', 'config_update', 'teleport', 'rotate_ip'] },
        dev(d.token),
      );
      assert.equal(hb.status, 200, hb.body);
      const got = (await ts().call('GET', `/api/devices/${d.id}`)).json;
      assert.deepEqual(got.capabilities, ['rotate_ip', 'config_update']);
      const listed = (await ts().call('GET', '/api/devices?limit=1000')).json.items.find(
        (x: { id: string }) => x.id === d.id,
      );
      assert.deepEqual(listed.capabilities, ['rotate_ip', 'config_update']);
      const before = await snapshot(ts().db);
      for (const type of ['airplane_mode', 'wifi_toggle', 'reboot']) {
        const r = await ts().call('POST', `/api/devices/${d.id}/commands`, { type });
        assertProblem(r, 409, 'PP_ERR_API_COMMAND_UNSUPPORTED');
        assert.match(r.json.detail, new RegExp(`cannot run ${type}.*rotate_ip, config_update`));
      }
      assert.equal(await snapshot(ts().db), before);
      assert.equal((await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip' })).status, 201);
      // A heartbeat without the field keeps what was reported; a new list replaces it.
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token));
      assert.deepEqual((await ts().call('GET', `/api/devices/${d.id}`)).json.capabilities, [
        'rotate_ip',
        'config_update',
      ]);
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { capabilities: ['config_update'] }, dev(d.token));
      assert.deepEqual((await ts().call('GET', `/api/devices/${d.id}`)).json.capabilities, ['config_update']);
      // Bulk rotation answers the device as failed with the code; nothing queued.
      const n = (
        await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM commands WHERE device_id = $1', [d.id])
      ).rows[0]!.n;
      const bulk = await ts().call('POST', '/api/devices/rotate', { device_ids: [d.id] });
      assert.equal(bulk.status, 200, bulk.body);
      assert.equal(bulk.json.items[0].outcome, 'failed');
      assert.equal(bulk.json.items[0].error, 'PP_ERR_API_COMMAND_UNSUPPORTED');
      assert.equal(
        (await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM commands WHERE device_id = $1', [d.id]))
          .rows[0]!.n,
        n,
      );
      assertProblem(
        await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { capabilities: ['Not A Type'] }, dev(d.token)),
        400,
        'PP_ERR_API_VALIDATION',
      );
    });

    test("401 wrong or missing device token; 403 another device's token; 404 unknown or foreign command", async () => {
      const a = await pairDevice(ts());
      const b = await pairDevice(ts());
      const ca = (await ts().call('POST', `/api/devices/${a.id}/commands`, { type: 'reboot' })).json;
      const cb = (await ts().call('POST', `/api/devices/${b.id}/commands`, { type: 'reboot' })).json;
      const url = `/api/devices/${a.id}/commands/${ca.id}/result`;
      const before = await snapshot(ts().db);
      assertProblem(
        await ts().call('POST', url, { status: 'acked' }, dev('x'.repeat(43))),
        401,
        'PP_ERR_API_UNAUTHENTICATED',
      );
      assertProblem(
        await ts().call('POST', url, { status: 'acked' }, { authorization: '' }),
        401,
        'PP_ERR_API_UNAUTHENTICATED',
      );
      assertProblem(await ts().call('POST', url, { status: 'acked' }), 401, 'PP_ERR_API_UNAUTHENTICATED'); // an admin JWT is not a device token
      assertProblem(await ts().call('POST', url, { status: 'acked' }, dev(b.token)), 403, 'PP_ERR_API_FORBIDDEN');
      assertProblem(
        await ts().call('POST', `/api/devices/${a.id}/heartbeat`, {}, dev(b.token)),
        403,
        'PP_ERR_API_FORBIDDEN',
      );
      assertProblem(
        await ts().call('POST', `/api/devices/${a.id}/commands/${cb.id}/result`, { status: 'acked' }, dev(a.token)),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(
        await ts().call(
          'POST',
          `/api/devices/${a.id}/commands/${UNKNOWN.cmd}/result`,
          { status: 'acked' },
          dev(a.token),
        ),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(
        await ts().call('POST', `/api/devices/${a.id}/commands/bogus/result`, { status: 'acked' }, dev(a.token)),
        404,
      );
      assert.equal(await snapshot(ts().db), before);
    });
  },
  { POCKETPROXY_PAIRING_RATE: '10000' },
);

// Regression: the device acknowledged a pushed command over REST before the push call returned; the
// POST must still answer 201 (it answered 409 PP_ERR_API_COMMAND_STATE).
perBackend('command acknowledged during its push', ({ ts, test }) => {
  test('answers 201 with the state the device already reached', async () => {
    const d = await pairDevice(ts());
    const push = ts().push;
    push.delivered = true;
    const orig = push.push.bind(push);
    push.push = async (url, id, msg) => {
      await ts().call(
        'POST',
        `/api/devices/${id}/commands/${String(msg.id)}/result`,
        { status: 'acked' },
        { authorization: `Bearer ${d.token}` },
      );
      return orig(url, id, msg);
    };
    const res = await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip' });
    assert.equal(res.status, 201, res.body);
    assert.equal(res.json.status, 'acked');
  });
});
