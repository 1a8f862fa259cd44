// Webhook administration: GET|POST /api/webhooks, DELETE /api/webhooks/:id.
import assert from 'node:assert/strict';
import { pairDevice, snapshot } from './harness.js';
import { assertProblem, perBackend } from './api.assert.js';

perBackend('webhooks', ({ ts, test }) => {
  test('POST 201 answers the secret once; it is sealed at rest; GET lists without it; events reach deliveries', async () => {
    const res = await ts().call('POST', '/api/webhooks', {
      url: 'https://hooks.example.com/pp',
      events: ['device_paired', 'ip_changed'],
    });
    assert.equal(res.status, 201, res.body);
    assert.match(res.json.id, /^whk_/);
    assert.match(res.json.secret, /^whsec_/);
    assert.deepEqual(res.json.events, ['device_paired', 'ip_changed']);
    const row = (
      await ts().db.query<{ secret_enc: string }>('SELECT secret_enc FROM webhooks WHERE id = $1', [res.json.id])
    ).rows[0]!;
    assert.ok(!row.secret_enc.includes(res.json.secret));
    assert.equal(ts().sys.ctx.box.open(row.secret_enc), res.json.secret);
    const list = await ts().call('GET', '/api/webhooks');
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.json.items.map((w: { id: string }) => w.id),
      [res.json.id],
    );
    assert.ok(!list.body.includes(res.json.secret));
    const d = await pairDevice(ts(), 'hooked');
    const del = await ts().db.query<{ event: string }>('SELECT event FROM webhook_deliveries WHERE webhook_id = $1', [
      res.json.id,
    ]);
    assert.deepEqual(
      del.rows.map((x) => x.event),
      ['device_paired'],
    );
    assert.ok(d.id);
    const given = await ts().call('POST', '/api/webhooks', {
      url: 'http://10.0.0.5/h',
      secret: 'a-secret-of-my-choosing',
    });
    assert.equal(given.json.secret, 'a-secret-of-my-choosing');
    assert.deepEqual(given.json.events, ['device_connected', 'device_disconnected']);
  });

  test('400 bad URL/events/secret/unknown field; 401 without session — nothing stored', async () => {
    const before = await snapshot(ts().db);
    for (const body of [
      {},
      { url: 'not a url' },
      { url: 'ftp://x.example/h' },
      { url: 'javascript:alert(1)' },
      { url: 'https://x.example', events: ['everything'] },
      { url: 'https://x.example', events: [] },
      { url: 'https://x.example', secret: 'short' },
      { url: 'https://x.example', owner: 'me' },
    ]) {
      assertProblem(await ts().call('POST', '/api/webhooks', body), 400, 'PP_ERR_API_VALIDATION');
    }
    assertProblem(await ts().call('POST', '/api/webhooks', { url: 'https://x.example' }, { authorization: '' }), 401);
    assertProblem(await ts().call('GET', '/api/webhooks', undefined, { authorization: '' }), 401);
    assert.equal(await snapshot(ts().db), before);
  });

  test('DELETE 204 removes it; 404 unknown or malformed id', async () => {
    const w = (await ts().call('POST', '/api/webhooks', { url: 'https://gone.example.com/' })).json;
    assert.equal((await ts().call('DELETE', `/api/webhooks/${w.id}`)).status, 204);
    assert.ok(!(await ts().call('GET', '/api/webhooks')).json.items.some((x: { id: string }) => x.id === w.id));
    assertProblem(await ts().call('DELETE', `/api/webhooks/${w.id}`), 404, 'PP_ERR_API_NOT_FOUND');
    assertProblem(await ts().call('DELETE', '/api/webhooks/whk_'), 404);
    assertProblem(await ts().call('DELETE', `/api/webhooks/${w.id}`, undefined, { authorization: '' }), 401);
  });
});
