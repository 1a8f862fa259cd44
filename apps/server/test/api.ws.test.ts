// WebSocket hub /ws?token=<jwt> over a real socket on port 0: fleet events reach dashboards; a bad
// token is closed with 4401.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { pairDevice } from './harness.js';
import { dev, forgedToken, internal, perBackend } from './api.assert.js';

interface Ev {
  type: string;
  data: Record<string, unknown>;
  at: string;
}

perBackend(
  'websocket /ws',
  ({ ts, test }) => {
    let base = '';
    const url = async () => {
      if (!base) {
        await ts().sys.api.listen({ port: 0, host: '127.0.0.1' });
        base = `ws://127.0.0.1:${(ts().sys.api.server.address() as AddressInfo).port}/ws`;
      }
      return base;
    };

    async function connect(token: string) {
      const ws = new WebSocket(`${await url()}?token=${encodeURIComponent(token)}`);
      const events: Ev[] = [];
      ws.on('message', (m) => events.push(JSON.parse(String(m)) as Ev));
      const waitFor = async (pred: (e: Ev) => boolean, what: string, ms = 5000) => {
        const t0 = Date.now();
        while (Date.now() - t0 < ms) {
          const e = events.find(pred);
          if (e) return e;
          await new Promise((r) => setTimeout(r, 10));
        }
        throw new Error(`no ${what} event within ${ms} ms; got ${events.map((e) => e.type).join(', ')}`);
      };
      return { ws, events, waitFor };
    }

    test('an admin receives hello, device_paired, device_connected, heartbeat, command_updated, ip_changed, device_disconnected', async () => {
      const c = await connect(ts().token);
      await c.waitFor((e) => e.type === 'hello', 'hello');
      const d = await pairDevice(ts(), 'ws-phone');
      const paired = await c.waitFor((e) => e.type === 'device_paired' && e.data.device_id === d.id, 'device_paired');
      assert.equal(paired.data.name, 'ws-phone');
      assert.equal(paired.at, ts().clock.now().toISOString());
      await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { metrics: { battery: 77 }, public_ip: '198.18.50.1' },
        dev(d.token),
      );
      await c.waitFor((e) => e.type === 'device_connected' && e.data.device_id === d.id, 'device_connected');
      const hb = await c.waitFor((e) => e.type === 'heartbeat' && e.data.device_id === d.id, 'heartbeat');
      assert.equal((hb.data.metrics as { battery: number }).battery, 77);
      const ip = await c.waitFor((e) => e.type === 'ip_changed' && e.data.device_id === d.id, 'ip_changed');
      assert.deepEqual([ip.data.old_ip, ip.data.new_ip], [null, '198.18.50.1']);
      const cmd = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'reboot' })).json;
      await c.waitFor(
        (e) => e.type === 'command_updated' && e.data.id === cmd.id && e.data.status === 'pending',
        'command_updated pending',
      );
      await ts().call('POST', `/api/devices/${d.id}/commands/${cmd.id}/result`, { status: 'succeeded' }, dev(d.token));
      await c.waitFor(
        (e) => e.type === 'command_updated' && e.data.id === cmd.id && e.data.status === 'succeeded',
        'command_updated succeeded',
      );
      await ts().call('POST', '/api/internal/vpn/disconnected', { device_id: d.id, reason: 'bye' }, internal(ts()));
      await c.waitFor((e) => e.type === 'device_disconnected' && e.data.device_id === d.id, 'device_disconnected');
      // no secrets on the wire
      assert.ok(!JSON.stringify(c.events).includes(d.token));
      c.ws.close();
      await once(c.ws, 'close');
    });

    test('a bad, forged or missing token is closed with 4401 and receives no events', async () => {
      for (const token of ['garbage', await forgedToken(ts()), '']) {
        const c = await connect(token);
        const [code] = (await once(c.ws, 'close')) as [number, Buffer];
        assert.equal(code, 4401, `token ${token.slice(0, 10)}`);
        assert.deepEqual(c.events, []);
      }
    });

    test('several dashboards each get every event; a closed one is unsubscribed', async () => {
      const a = await connect(ts().token);
      const b = await connect(ts().token);
      await a.waitFor((e) => e.type === 'hello', 'hello');
      await b.waitFor((e) => e.type === 'hello', 'hello');
      b.ws.close();
      await once(b.ws, 'close');
      const n = b.events.length;
      const d = await pairDevice(ts(), 'ws-two');
      await a.waitFor((e) => e.type === 'device_paired' && e.data.device_id === d.id, 'device_paired');
      assert.equal(b.events.length, n);
      a.ws.close();
      await once(a.ws, 'close');
    });
  },
  { POCKETPROXY_PAIRING_RATE: '10000' },
);
