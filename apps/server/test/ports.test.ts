// Port allocation under concurrency (real PostgreSQL is the interesting case: a connection pool and
// truly parallel transactions), exhaustion without half-created rows, and lowest-first recycling.
import assert from 'node:assert/strict';
import { pairDevice, snapshot } from './harness.js';
import { assertProblem, perBackend } from './api.assert.js';
import { allocatePort } from '../src/services/ports.js';

perBackend(
  'port allocation',
  ({ ts, test }) => {
    test('40 concurrent POST /api/connections get 40 different ports', async () => {
      const d = await pairDevice(ts());
      const res = await Promise.all(Array.from({ length: 40 }, () => ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })));
      for (const r of res) assert.equal(r.status, 201, r.body);
      const ports = res.map((r) => r.json.port as number);
      assert.equal(new Set(ports).size, 40, `duplicate ports: ${ports.sort()}`);
      const rows = await ts().db.query<{ port: number; owner_id: string }>('SELECT port, owner_id FROM ports WHERE owner_id = ANY($1::text[])', [res.map((r) => r.json.id)]);
      assert.equal(rows.rows.length, 40);
      for (const r of res) assert.equal(rows.rows.find((x) => x.owner_id === r.json.id)?.port, r.json.port);
    });

    test('40 concurrent allocatePort calls in separate transactions never share a port; a rollback frees its port', async () => {
      const range = ts().sys.ctx.config.connectionPorts;
      const got = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          ts().db.tx(async (q) => {
            const p = await allocatePort(q, 'connection', `con_direct${String(i).padStart(8, '0')}`, range);
            await new Promise((r) => setTimeout(r, 5)); // hold the row lock a moment
            return p;
          }),
        ),
      );
      assert.equal(new Set(got).size, 40);
      const before = (await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM ports WHERE owner_id IS NOT NULL')).rows[0]!.n;
      await assert.rejects(
        ts().db.tx(async (q) => {
          await allocatePort(q, 'connection', 'con_rolledback00', range);
          throw new Error('abort');
        }),
        /abort/,
      );
      assert.equal((await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM ports WHERE owner_id IS NOT NULL')).rows[0]!.n, before);
      await ts().db.query(`UPDATE ports SET owner_id = NULL WHERE owner_id LIKE 'con_direct%'`);
    });

    test('20 concurrent pairings get different base ports and VPN addresses', async () => {
      const codes = await Promise.all(Array.from({ length: 20 }, () => ts().call('POST', '/api/pairing-codes', {})));
      const res = await Promise.all(codes.map((c) => ts().call('POST', '/api/public/pair', { code: c.json.code }, { authorization: '' })));
      for (const r of res) assert.equal(r.status, 201, r.body);
      assert.equal(new Set(res.map((r) => r.json.base_port)).size, 20);
      assert.equal(new Set(res.map((r) => r.json.tunnel.vpn_ip)).size, 20);
      for (const r of res) assert.equal((r.json.base_port - 30000) % 4, 0, 'device blocks are 4-aligned');
    });
  },
  { POCKETPROXY_PAIRING_RATE: '10000' },
);

perBackend(
  'port exhaustion and recycling',
  ({ ts, test }) => {
    test('exhaustion → 409 PP_ERR_API_PORTS_EXHAUSTED with nothing half-created; freed ports come back lowest first', async () => {
      const d = await pairDevice(ts());
      const made = [];
      for (let i = 0; i < 5; i++) {
        const r = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: i % 2 ? 'socks5' : 'http' });
        assert.equal(r.status, 201, r.body);
        made.push(r.json);
      }
      assert.deepEqual(made.map((c) => c.port), [40000, 40001, 40002, 40003, 40004]);
      const before = await snapshot(ts().db);
      const res = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', username: 'one-too-many' });
      assertProblem(res, 409, 'PP_ERR_API_PORTS_EXHAUSTED');
      assert.equal(await snapshot(ts().db), before);
      // concurrent attempts on a full pool: all refused, nothing stored
      const many = await Promise.all(Array.from({ length: 8 }, () => ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })));
      for (const r of many) assertProblem(r, 409, 'PP_ERR_API_PORTS_EXHAUSTED');
      assert.equal(await snapshot(ts().db), before);
      await ts().call('DELETE', `/api/connections/${made[3].id}`);
      await ts().call('DELETE', `/api/connections/${made[1].id}`);
      const a = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' });
      const b = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' });
      assert.deepEqual([a.json.port, b.json.port], [40001, 40003]);
      assertProblem(await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' }), 409, 'PP_ERR_API_PORTS_EXHAUSTED');
    });

    test('device port blocks run out too: pairing answers 409 and burns nothing', async () => {
      // 30000-30011 holds three 4-port blocks; one device is already paired above
      const ok = [];
      for (let i = 0; i < 2; i++) ok.push(await pairDevice(ts()));
      const code = await ts().call('POST', '/api/pairing-codes', {});
      const before = await snapshot(ts().db);
      const res = await ts().call('POST', '/api/public/pair', { code: code.json.code }, { authorization: '' });
      assertProblem(res, 409, 'PP_ERR_API_PORTS_EXHAUSTED');
      assert.equal(await snapshot(ts().db), before, 'the code stays unused and no device row is left behind');
      assert.equal((await ts().call('DELETE', `/api/devices/${ok[0]!.id}`)).status, 204);
      const again = await ts().call('POST', '/api/public/pair', { code: code.json.code }, { authorization: '' });
      assert.equal(again.status, 201, again.body);
      assert.equal(again.json.base_port, ok[0]!.basePort, 'the freed block is reused');
    });
  },
  { POCKETPROXY_CONNECTION_PORTS: '40000-40004', POCKETPROXY_DEVICE_PORTS: '30000-30011', POCKETPROXY_PAIRING_RATE: '10000' },
);
