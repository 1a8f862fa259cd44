// A stand-in for `pocketproxy api` while developing the dashboard: serves the static export from
// ../out and answers the REST routes and /ws with in-memory fake data. Not used in production.
//   node apps/dashboard/test/mock-api.mjs [port]    (login: a@b.c / secret-pass-1)
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';

const root = fileURLToPath(new URL('../out/', import.meta.url));
const port = Number(process.argv[2] ?? process.env.PORT ?? 18090);
const TOKEN = 'mock-token';
const now = () => new Date().toISOString();
let seq = 0;
const rid = (p) => {
  const unique = `${Date.now().toString(36)}${(seq++).toString(36)}abcdefghij`;
  return `${p}_${unique.slice(0, 16)}`;
};

const relays = [
  {
    id: 'rly_main0000001',
    name: 'main',
    host: '203.0.113.10',
    tunnel_port: 1194,
    push_url: 'http://127.0.0.1:8081',
    public_key: 'q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=',
    enabled: true,
    devices_online: 0,
    created_at: now(),
  },
];
const farmHost = { id: 'farm_rack0000001', name: 'rack-01', enrollment_token_id: null, created_at: now() };
const farmHostRow = () => {
  const mine = devices.filter((d) => d.farm_host_id === farmHost.id);
  return {
    ...farmHost,
    last_seen_at:
      mine
        .map((d) => d.last_seen_at)
        .sort()
        .at(-1) ?? null,
    devices: mine.length,
    online: mine.filter((d) => d.status === 'online').length,
  };
};
const tokens = [];
const carriers = ['Vodafone', 'Telekom', 'O2', 'T-Mobile US'];
const devices = Array.from({ length: Number(process.env.MOCK_DEVICES ?? 24) }, (_, i) => {
  const online = i % 5 !== 3;
  return {
    id: `dev_${String(i).padStart(12, '0')}`,
    name: `phone-${String(i + 1).padStart(2, '0')}`,
    description: '',
    status: online ? 'online' : 'offline',
    relay_id: relays[0].id,
    vpn_ip: online ? `192.168.255.${i + 2}` : null,
    current_ip: `198.51.100.${i + 10}`,
    last_seen_at: new Date(Date.now() - (online ? (i % 3) * 20_000 : (3_600_000 * (i + 1)) / 4)).toISOString(),
    paired_at: now(),
    agent_version: '0.1.0',
    rotation_interval_s: i % 4 === 0 ? 1800 : null,
    next_rotation_at: i % 4 === 0 ? new Date(Date.now() + 900_000).toISOString() : null,
    metrics: {
      battery: 20 + ((i * 17) % 80),
      charging: i % 2 === 0,
      signal: -70 - ((i * 7) % 50),
      carrier: carriers[i % 4],
      network_type: i % 3 ? 'LTE' : '5G NR',
    },
    proxy_stats: null,
    tunnel_transport: i % 5 === 4 ? 'tcp' : 'udp',
    // The first six are a farm host's (issue 14): five phones and a modem.
    farm_host_id: i < 6 ? 'farm_rack0000001' : null,
    farm_host_name: i < 6 ? 'rack-01' : null,
    kind: i < 5 ? 'phone' : i === 5 ? 'modem' : 'device',
    hardware_id: i < 5 ? `R58M${String(i).padStart(6, '0')}` : i === 5 ? '861234567890123' : null,
    model: i < 5 ? 'Pixel 6' : i === 5 ? 'EM7455' : null,
    created_at: now(),
    updated_at: now(),
  };
});
const customers = [
  {
    id: 'cus_acme00000001',
    name: 'Acme Scraping',
    email: 'ops@acme.test',
    notes: '',
    connections: 0,
    created_at: now(),
    updated_at: now(),
  },
  {
    id: 'cus_beta00000001',
    name: 'Beta Ads',
    email: null,
    notes: 'trial until June',
    connections: 0,
    created_at: now(),
    updated_at: now(),
  },
];
const connections = [];
function mkConn(body) {
  const dev = devices.find((d) => d.id === body.device_id);
  const username = body.username ?? `u${Math.random().toString(36).slice(2, 8)}`;
  const password = body.password ?? Math.random().toString(36).slice(2, 14);
  const port = 40000 + connections.length;
  const c = {
    id: rid('con'),
    device_id: dev.id,
    customer_id: body.customer_id ?? null,
    protocol: body.protocol,
    host: relays[0].host,
    port,
    username,
    password,
    enabled: body.enabled ?? true,
    bandwidth_limit_bytes: body.bandwidth_limit_bytes ?? null,
    max_connections: body.max_connections ?? null,
    rate_limit_down_kbps: body.rate_limit_down_kbps ?? null,
    rate_limit_up_kbps: body.rate_limit_up_kbps ?? null,
    bytes_used_month: Math.floor(Math.random() * 5e9),
    bytes_relay_month: Math.floor(Math.random() * 5e9),
    expires_at: body.expires_at ?? null,
    allow_from: body.allow_from ?? [],
    rotation_url: `/api/public/rotate/${Math.random().toString(36).slice(2)}`,
    proxy_url: `${body.protocol}://${username}:${password}@${relays[0].host}:${port}`,
    device_status: dev.status,
    created_at: now(),
    updated_at: now(),
    // Live once the device is online (the mock's relay and device apply at once).
    live:
      dev.status === 'online'
        ? { state: 'live', relay_applied_at: now(), device_applied_at: now() }
        : { state: 'pending', relay_applied_at: null, device_applied_at: null },
  };
  connections.push(c);
  return c;
}
for (let i = 0; i < 8; i++)
  mkConn({
    device_id: devices[i * 2].id,
    protocol: i % 2 ? 'socks5' : 'http',
    customer_id: customers[i % 2].id,
    bandwidth_limit_bytes: i === 3 ? 1e9 : null,
  });
const commands = [];
const ipHistory = new Map();
const events = [];

const sockets = new Set();
function emit(type, data) {
  const msg = JSON.stringify({ type, data, at: now() });
  for (const ws of sockets) ws.send(msg);
  if (type !== 'heartbeat')
    events.unshift({ id: events.length + 1, type, device_id: data.device_id ?? null, data, created_at: now() });
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}
function problem(res, status, code, detail, errors) {
  send(
    res,
    status,
    { type: 'about:blank', title: detail, status, code, detail, request_id: rid('req'), ...(errors ? { errors } : {}) },
    { 'content-type': 'application/problem+json' },
  );
}
async function readBody(req) {
  let s = '';
  for await (const c of req) s += c;
  return s ? JSON.parse(s) : {};
}

async function api(req, res, url) {
  const p = url.pathname;
  const m = req.method;
  if (p === '/api/auth/login' && m === 'POST') {
    const b = await readBody(req);
    if (b.email === 'a@b.c' && b.password === 'secret-pass-1')
      return send(res, 200, { token: TOKEN, expires_at: new Date(Date.now() + 12 * 3600_000).toISOString() });
    return problem(res, 401, 'PP_ERR_AUTH_INVALID', 'Wrong email or password.');
  }
  if (req.headers.authorization !== `Bearer ${TOKEN}`)
    return problem(res, 401, 'PP_ERR_AUTH_REQUIRED', 'Sign in first.');
  let mm;
  if (p === '/api/overview') {
    const on = devices.filter((d) => d.status === 'online').length;
    return send(res, 200, {
      devices: { total: devices.length, online: on, offline: devices.length - on },
      connections: { total: connections.length, enabled: connections.filter((c) => c.enabled).length },
      customers: customers.length,
      traffic: { today_bytes: 3.2e9, month_bytes: 812e9 },
      recent_events: events.slice(0, 20),
    });
  }
  // The fleet figures (issue 12): none recorded in the mock.
  if (p === '/api/devices/stats' && m === 'GET') return send(res, 200, { at: now(), items: [] });
  if (p === '/api/usage' && m === 'GET') return send(res, 200, { items: [] });
  if (p === '/api/farm-hosts' && m === 'GET') return send(res, 200, { items: [farmHostRow()] });
  mm = p.match(/^\/api\/farm-hosts\/([^/]+)(\/rotate)?$/);
  if (mm) {
    if (mm[1] !== farmHost.id) return problem(res, 404, 'PP_ERR_API_FARM_HOST_NOT_FOUND', 'No such farm host.');
    const { devices: _n, ...row } = farmHostRow();
    const mine = devices.filter((d) => d.farm_host_id === farmHost.id);
    if (mm[2] && m === 'POST') {
      const on = mine.filter((d) => d.status === 'online');
      return send(res, 200, {
        items: on.map((d) => ({ device_id: d.id, outcome: 'queued', command: null, error: null })),
        skipped: mine
          .filter((d) => d.status !== 'online')
          .map((d) => ({ device_id: d.id, name: d.name, reason: 'offline' })),
      });
    }
    if (m === 'PATCH') {
      const b = await readBody(req);
      if (!b.name?.trim())
        return problem(res, 400, 'PP_ERR_VALIDATION', 'Invalid request body.', [
          { path: '/body/name', message: 'must not be empty' },
        ]);
      farmHost.name = b.name;
      for (const d of mine) d.farm_host_name = b.name;
      return send(res, 200, { ...farmHostRow(), name: b.name });
    }
    return send(res, 200, { ...row, devices: mine });
  }
  if (p === '/api/enrollment-tokens' && m === 'GET') return send(res, 200, { items: tokens });
  if (p === '/api/enrollment-tokens' && m === 'POST') {
    const b = await readBody(req);
    const secret = `ppe_${rid('x').slice(2)}${rid('y').slice(2)}`;
    const t = {
      id: rid('enr'),
      name: b.name ?? '',
      token_prefix: secret.slice(0, 8),
      relay_id: b.relay_id ?? null,
      max_devices: b.max_devices ?? null,
      devices_enrolled: 0,
      expires_at: b.ttl_s ? new Date(Date.now() + b.ttl_s * 1000).toISOString() : null,
      revoked_at: null,
      state: 'active',
      created_at: now(),
    };
    tokens.unshift(t);
    const enroll_command = `pocketproxy-agent farm --server http://127.0.0.1:${port} --enroll ${secret} --fingerprint mockfp`;
    return send(res, 201, { ...t, token: secret, enroll_command });
  }
  mm = p.match(/^\/api\/enrollment-tokens\/([^/]+)$/);
  if (mm && m === 'DELETE') {
    const t = tokens.find((x) => x.id === mm[1]);
    if (!t) return problem(res, 404, 'PP_ERR_API_ENROLLMENT_TOKEN_NOT_FOUND', 'No such enrollment token.');
    Object.assign(t, { revoked_at: t.revoked_at ?? now(), state: 'revoked' });
    return send(res, 200, t);
  }
  if (p === '/api/devices' && m === 'GET') {
    const st = url.searchParams.get('status');
    const fh = url.searchParams.get('farm_host_id');
    const q = (url.searchParams.get('q') ?? '').toLowerCase();
    const items = devices.filter(
      (d) =>
        (!st || d.status === st) &&
        (!fh || d.farm_host_id === fh) &&
        (!q ||
          d.name.includes(q) ||
          (d.current_ip ?? '').includes(q) ||
          (d.hardware_id ?? '').toLowerCase().includes(q) ||
          (d.metrics.carrier ?? '').toLowerCase().includes(q)),
    );
    return send(res, 200, { items, total: items.length });
  }
  mm = p.match(/^\/api\/devices\/([^/]+)$/);
  if (mm) {
    const d = devices.find((x) => x.id === mm[1]);
    if (!d) return problem(res, 404, 'PP_ERR_DEVICE_NOT_FOUND', 'No such device.');
    if (m === 'GET') return send(res, 200, d);
    if (m === 'PATCH') {
      const b = await readBody(req);
      if (b.name !== undefined && !b.name.trim())
        return problem(res, 400, 'PP_ERR_VALIDATION', 'Invalid request body.', [
          { path: '/name', message: 'must not be empty' },
        ]);
      Object.assign(d, b, { updated_at: now() });
      if ('rotation_interval_s' in b)
        d.next_rotation_at = b.rotation_interval_s
          ? new Date(Date.now() + b.rotation_interval_s * 1000).toISOString()
          : null;
      emit('device_updated', { device_id: d.id });
      return send(res, 200, d);
    }
    if (m === 'DELETE') {
      devices.splice(devices.indexOf(d), 1);
      return send(res, 204);
    }
  }
  mm = p.match(/^\/api\/devices\/([^/]+)\/commands$/);
  if (mm) {
    const d = devices.find((x) => x.id === mm[1]);
    if (!d) return problem(res, 404, 'PP_ERR_DEVICE_NOT_FOUND', 'No such device.');
    if (m === 'GET') return send(res, 200, { items: commands.filter((c) => c.device_id === d.id) });
    const b = await readBody(req);
    const c = {
      id: rid('cmd'),
      device_id: d.id,
      type: b.type,
      payload: b.payload ?? {},
      status: 'pending',
      result: null,
      source: 'dashboard',
      created_at: now(),
      sent_at: null,
      acked_at: null,
      finished_at: null,
      expires_at: new Date(Date.now() + 600_000).toISOString(),
    };
    commands.unshift(c);
    if (d.status === 'online') {
      setTimeout(() => {
        c.status = 'sent';
        c.sent_at = now();
        emit('command_updated', c);
      }, 400);
      setTimeout(() => {
        c.status = 'acked';
        c.acked_at = now();
        emit('command_updated', c);
      }, 900);
      setTimeout(() => {
        const old = d.current_ip;
        d.current_ip = `198.51.100.${Math.floor(Math.random() * 250)}`;
        c.status = 'succeeded';
        c.finished_at = now();
        c.result = { old_ip: old, new_ip: d.current_ip };
        const h = ipHistory.get(d.id) ?? [];
        h.unshift({ id: h.length + 1, old_ip: old, new_ip: d.current_ip, reason: 'command', changed_at: now() });
        ipHistory.set(d.id, h);
        emit('command_updated', c);
        emit('ip_changed', { device_id: d.id, old_ip: old, new_ip: d.current_ip });
      }, 2500);
    }
    return send(res, 201, c);
  }
  mm = p.match(/^\/api\/devices\/([^/]+)\/ip-history$/);
  if (mm) return send(res, 200, { items: ipHistory.get(mm[1]) ?? [] });
  mm = p.match(/^\/api\/devices\/([^/]+)\/usage$/);
  if (mm) {
    const hour = url.searchParams.get('granularity') === 'hour';
    const step = hour ? 3600_000 : 86400_000;
    const n = hour ? 24 : 30;
    const end = Math.floor(Date.now() / step) * step;
    const items = Array.from({ length: n }, (_, i) => ({
      t: new Date(end - (n - 1 - i) * step).toISOString(),
      bytes_in: Math.floor(Math.random() * (hour ? 4e8 : 9e9)),
      bytes_out: Math.floor(Math.random() * (hour ? 5e7 : 1e9)),
    }));
    return send(res, 200, { items });
  }
  if (p === '/api/pairing-codes' && m === 'POST') {
    const b = await readBody(req);
    const code = Math.random().toString(36).slice(2, 10).toUpperCase();
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29"><rect width="29" height="29" fill="#fff"/><path d="M1 1h7v7H1zM21 1h7v7h-7zM1 21h7v7H1zM10 10h9v9h-9z" fill="#000"/></svg>`;
    setTimeout(
      () => {
        const d = {
          ...devices[0],
          id: rid('dev'),
          name: b.device_name || 'new-phone',
          status: 'online',
          last_seen_at: now(),
        };
        devices.push(d);
        emit('device_paired', { device_id: d.id, name: d.name, code_prefix: code.slice(0, 4) });
      },
      Number(process.env.MOCK_PAIR_DELAY_MS ?? 8000),
    );
    const fp = 'mOckFingerprint0000000';
    return send(res, 201, {
      code,
      expires_at: new Date(Date.now() + 600_000).toISOString(),
      qr_svg: svg,
      pair_url: `pocketproxy://pair?server=${encodeURIComponent(`http://127.0.0.1:${port}`)}&code=${code}&fp=${fp}`,
      server_fingerprint: fp,
    });
  }
  if (p === '/api/connections' && m === 'GET') {
    const did = url.searchParams.get('device_id');
    const cid = url.searchParams.get('customer_id');
    const items = connections
      .filter((c) => (!did || c.device_id === did) && (!cid || c.customer_id === cid))
      .map((c) => ({ ...c, device_status: devices.find((d) => d.id === c.device_id)?.status ?? 'offline' }));
    return send(res, 200, { items, total: items.length });
  }
  if (p === '/api/connections' && m === 'POST') {
    const b = await readBody(req);
    if (!devices.some((d) => d.id === b.device_id))
      return problem(res, 400, 'PP_ERR_VALIDATION', 'Invalid request body.', [
        { path: '/device_id', message: 'no such device' },
      ]);
    return send(res, 201, mkConn(b));
  }
  mm = p.match(/^\/api\/connections\/([^/]+)(\/ovpn)?$/);
  if (mm) {
    const c = connections.find((x) => x.id === mm[1]);
    if (!c) return problem(res, 404, 'PP_ERR_CONNECTION_NOT_FOUND', 'No such connection.');
    if (mm[2]) return problem(res, 404, 'PP_ERR_OPENVPN_DISABLED', 'OpenVPN is not configured on this server.');
    if (m === 'GET') return send(res, 200, c);
    if (m === 'PATCH') {
      const b = await readBody(req);
      Object.assign(c, b, { updated_at: now() });
      delete c.regenerate_rotation_token;
      c.proxy_url = `${c.protocol}://${c.username}:${c.password}@${c.host}:${c.port}`;
      emit('connection_updated', { id: c.id, device_id: c.device_id });
      return send(res, 200, c);
    }
    if (m === 'DELETE') {
      connections.splice(connections.indexOf(c), 1);
      return send(res, 204);
    }
  }
  if (p === '/api/customers') {
    if (m === 'GET')
      return send(res, 200, {
        items: customers.map((c) => ({ ...c, connections: connections.filter((x) => x.customer_id === c.id).length })),
        total: customers.length,
      });
    const b = await readBody(req);
    const c = { id: rid('cus'), connections: 0, created_at: now(), updated_at: now(), email: null, notes: '', ...b };
    customers.push(c);
    return send(res, 201, c);
  }
  mm = p.match(/^\/api\/customers\/([^/]+)$/);
  if (mm) {
    const c = customers.find((x) => x.id === mm[1]);
    if (!c) return problem(res, 404, 'PP_ERR_CUSTOMER_NOT_FOUND', 'No such customer.');
    if (m === 'PUT') return send(res, 200, Object.assign(c, await readBody(req), { updated_at: now() }));
    if (m === 'DELETE') {
      customers.splice(customers.indexOf(c), 1);
      return send(res, 204);
    }
    return send(res, 200, c);
  }
  if (p === '/api/relays') {
    if (m === 'GET')
      return send(res, 200, {
        items: relays.map((r) => ({
          ...r,
          devices_online: devices.filter((d) => d.status === 'online' && d.relay_id === r.id).length,
        })),
        total: relays.length,
      });
    const b = await readBody(req);
    const r = { id: rid('rly'), devices_online: 0, public_key: null, created_at: now(), ...b };
    relays.push(r);
    return send(res, 201, r);
  }
  mm = p.match(/^\/api\/relays\/([^/]+)$/);
  if (mm && m === 'PATCH') {
    const r = relays.find((x) => x.id === mm[1]);
    if (!r) return problem(res, 404, 'PP_ERR_RELAY_NOT_FOUND', 'No such relay.');
    return send(res, 200, Object.assign(r, await readBody(req)));
  }
  return problem(res, 404, 'PP_ERR_NOT_FOUND', `No route ${m} ${p}`);
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.txt': 'text/plain',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};
async function serveStatic(res, pathname) {
  let file = normalize(join(root, decodeURIComponent(pathname)));
  if (!file.startsWith(root)) return send(res, 403, {});
  try {
    if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
  } catch {
    file = join(root, '404.html');
  }
  try {
    const body = await readFile(file);
    res.writeHead(file.endsWith('404.html') && !pathname.startsWith('/404') ? 404 : 200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    });
    res.end(body);
  } catch {
    res.writeHead(404).end('not found');
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname.startsWith('/api/'))
    return api(req, res, url).catch((e) => problem(res, 500, 'PP_ERR_INTERNAL', String(e)));
  return serveStatic(res, url.pathname);
});
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname !== '/ws' || url.searchParams.get('token') !== TOKEN) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
  });
});
setInterval(() => {
  for (const d of devices) {
    if (d.status !== 'online') continue;
    d.last_seen_at = now();
    d.metrics = {
      ...d.metrics,
      signal: Math.max(-130, Math.min(-50, d.metrics.signal + Math.round(Math.random() * 6 - 3))),
    };
    emit('heartbeat', { device_id: d.id, metrics: d.metrics, current_ip: d.current_ip, last_seen_at: d.last_seen_at });
  }
}, 5000).unref();
server.listen(port, '127.0.0.1', () => console.log(`mock api + dashboard on http://127.0.0.1:${port}`));
