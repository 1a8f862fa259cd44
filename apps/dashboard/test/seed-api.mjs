// Seeds a running `pocketproxy api` with fake devices (paired through the public pairing route)
// that keep sending heartbeats, so the dashboard can be exercised without phones.
//   BASE=http://127.0.0.1:18080 EMAIL=… PASSWORD=… node apps/dashboard/test/seed-api.mjs [devices] [seconds]
const BASE = process.env.BASE ?? 'http://127.0.0.1:18080';
const n = Number(process.argv[2] ?? 5);
const seconds = Number(process.argv[3] ?? 120);

async function call(path, { method = 'GET', body, token } = {}) {
  const res = await fetch(BASE + path, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

const { token } = await call('/api/auth/login', {
  method: 'POST',
  body: { email: process.env.EMAIL ?? 'admin@example.com', password: process.env.PASSWORD ?? 'secret-pass-1' },
});
const cust = await call('/api/customers', {
  method: 'POST',
  token,
  body: { name: `Acme Scraping ${Date.now() % 100000}`, email: 'ops@acme.example' },
});
const devices = [];
for (let i = 0; i < n; i++) {
  const { code } = await call('/api/pairing-codes', {
    method: 'POST',
    token,
    body: { device_name: `seed-phone-${i + 1}` },
  });
  const pair = await call('/api/public/pair', { method: 'POST', body: { code, agent_version: 'seed-0.1' } });
  devices.push(pair);
  if (i < 3)
    await call('/api/connections', {
      method: 'POST',
      token,
      body: { device_id: pair.device_id, protocol: i % 2 ? 'socks5' : 'http', customer_id: cust.id },
    }).catch((e) => console.error(e.message));
}
console.log(`seeded ${devices.length} devices`);
const carriers = ['Vodafone', 'Telekom', 'O2'];
const end = Date.now() + seconds * 1000;
let tick = 0;
while (Date.now() < end) {
  await Promise.all(
    devices.map((d, i) =>
      i === n - 1 && n > 1
        ? null // the last device never heartbeats: it stays offline
        : call(`/api/devices/${d.device_id}/heartbeat`, {
            method: 'POST',
            token: d.auth_token,
            body: {
              metrics: {
                battery: 50 + i,
                charging: i % 2 === 0,
                signal: -80 - ((tick + i) % 20),
                carrier: carriers[i % 3],
                network_type: 'LTE',
              },
              public_ip: `198.51.100.${10 + i}`,
            },
          })
            .then(async (r) => {
              for (const c of r.commands ?? []) {
                await call(`/api/devices/${d.device_id}/commands/${c.id}/result`, {
                  method: 'POST',
                  token: d.auth_token,
                  body: {
                    status: 'succeeded',
                    result: { old_ip: `198.51.100.${10 + i}`, new_ip: `198.51.100.${100 + tick}` },
                  },
                });
              }
            })
            .catch((e) => console.error(e.message)),
    ),
  );
  tick++;
  await new Promise((r) => setTimeout(r, 5000));
}
