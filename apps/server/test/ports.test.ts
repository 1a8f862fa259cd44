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
      const res = await Promise.all(
        Array.from({ length: 40 }, () => ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })),
      );
      for (const r of res) assert.equal(r.status, 201, r.body);
      const ports = res.map((r) => r.json.port as number);
      assert.equal(new Set(ports).size, 40, `duplicate ports: ${ports.sort()}`);
      const rows = await ts().db.query<{ port: number; owner_id: string }>(
        'SELECT port, owner_id FROM ports WHERE owner_id = ANY($1::text[])',
        [res.map((r) => r.json.id)],
      );
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
      const before = (
        await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM ports WHERE owner_id IS NOT NULL')
      ).rows[0]!.n;
      await assert.rejects(
        ts().db.tx(async (q) => {
          await allocatePort(q, 'connection', 'con_rolledback00', range);
          throw new Error('abort');
        }),
        /abort/,
      );
      assert.equal(
        (await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM ports WHERE owner_id IS NOT NULL')).rows[0]!
          .n,
        before,
      );
      await ts().db.query(`UPDATE ports SET owner_id = NULL WHERE owner_id LIKE 'con_direct%'`);
    });

    test('20 concurrent pairings get different VPN addresses and no ports (device-level ports are gone)', async () => {
      const owned = async () =>
        (await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM ports WHERE owner_id IS NOT NULL')).rows[0]!
          .n;
      const before = await owned();
      const codes = await Promise.all(Array.from({ length: 20 }, () => ts().call('POST', '/api/pairing-codes', {})));
      const res = await Promise.all(
        codes.map((c) => ts().call('POST', '/api/public/pair', { code: c.json.code }, { authorization: '' })),
      );
      for (const r of res) assert.equal(r.status, 201, r.body);
      assert.equal(new Set(res.map((r) => r.json.tunnel.vpn_ip)).size, 20);
      for (const r of res) assert.ok(!('base_port' in r.json), r.body);
      assert.equal(await owned(), before, 'pairing allocates no port');
      assert.equal(
        (await ts().db.query(`SELECT 1 FROM ports WHERE kind = 'device'`)).rows.length,
        0,
        'no device port blocks in the pool',
      );
      assert.equal((await ts().db.query('SELECT 1 FROM devices WHERE base_port IS NOT NULL')).rows.length, 0);
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
      assert.deepEqual(
        made.map((c) => c.port),
        [40000, 40001, 40002, 40003, 40004],
      );
      const before = await snapshot(ts().db);
      const res = await ts().call('POST', '/api/connections', {
        device_id: d.id,
        protocol: 'http',
        username: 'one-too-many',
      });
      assertProblem(res, 409, 'PP_ERR_API_PORTS_EXHAUSTED');
      assert.equal(await snapshot(ts().db), before);
      // concurrent attempts on a full pool: all refused, nothing stored
      const many = await Promise.all(
        Array.from({ length: 8 }, () => ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })),
      );
      for (const r of many) assertProblem(r, 409, 'PP_ERR_API_PORTS_EXHAUSTED');
      assert.equal(await snapshot(ts().db), before);
      await ts().call('DELETE', `/api/connections/${made[3].id}`);
      await ts().call('DELETE', `/api/connections/${made[1].id}`);
      const a = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' });
      const b = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' });
      assert.deepEqual([a.json.port, b.json.port], [40001, 40003]);
      assertProblem(
        await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' }),
        409,
        'PP_ERR_API_PORTS_EXHAUSTED',
      );
    });

    test('a full connection pool does not stop pairing: devices take no ports', async () => {
      for (let i = 0; i < 3; i++) await pairDevice(ts());
      assert.equal(
        (await ts().db.query(`SELECT 1 FROM ports WHERE owner_id IS NULL`)).rows.length,
        0,
        'the pool is still full',
      );
    });
  },
  { POCKETPROXY_CONNECTION_PORTS: '40000-40004', POCKETPROXY_PAIRING_RATE: '10000' },
);
