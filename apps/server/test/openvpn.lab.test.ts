// The customer OpenVPN path end to end with the real binaries: `pocketproxy up` with
// POCKETPROXY_OPENVPN=on in the relay namespace (it supervises Debian's openvpn on UDP 1195), one
// `pocketproxy-agent run` behind carrier NAT 1, and a REAL `openvpn` client in the customer
// namespace using the profile from GET /api/connections/:id/ovpn and the connection's credentials.
//
//   carried (POCKETPROXY_OPENVPN_CARRY, the default; the agent reads SYN stamps):
//   cust openvpn --UDP 1195--> relay openvpn (tun1 10.9.0.x) --DNAT to 192.168.255.x:PORT, the SYN stamped
//     with 203.0.113.10:80--> dev1's listener for PORT --carrier NAT 1--> 203.0.113.10
//   the transparent proxy (POCKETPROXY_OPENVPN_CARRY=false; a device that does not read stamps):
//   cust openvpn --UDP 1195--> relay openvpn (tun1 10.9.0.x) --REDIRECT--> tproxy :12345
//     --CONNECT via the connection's own port, 192.168.255.x:PORT--> dev1 --carrier NAT 1--> 203.0.113.10
// The whole suite runs once in each mode.
//   cust DNS (203.0.113.53:53/udp) --REDIRECT--> relay :5353 --TCP via the device--> 203.0.113.53:53/tcp
//
// The lab's DNS server speaks UDP only; a tiny TCP->UDP shim on 203.0.113.53:53/tcp in `inet`
// stands in for a real resolver's TCP side and records who asked (must be the carrier address).
// Needs root (namespaces, TUN, nftables); skips loudly otherwise. Every wait is bounded.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TunnelStatus } from '../src/tunnel/tunnel.js';
import {
  createLab,
  waitUntil,
  startRelay,
  startAgent,
  agentLanes,
  waitDeviceOnline,
  createConnection,
  canRunLab,
  scratchDir,
  childPid,
  type Lab,
  type LabRelay,
  type LabAgent,
  type Connection,
  type LabProcess,
} from '@pocketproxy/testkit';

const ROOT = canRunLab();
if (!ROOT) console.error('openvpn.lab.test: SKIPPED — needs root (network namespaces, TUN, nftables, openvpn)');

const TCP_DNS_SHIM = `
const net = require('net'), dgram = require('dgram');
net.createServer((c) => {
  let buf = Buffer.alloc(0);
  c.on('error', () => {});
  c.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const n = buf.readUInt16BE(0);
      if (buf.length < 2 + n) break;
      const q = buf.subarray(2, 2 + n);
      buf = buf.subarray(2 + n);
      console.log('tcp-dns-query from ' + c.remoteAddress);
      const u = dgram.createSocket('udp4');
      const t = setTimeout(() => u.close(), 3000);
      u.on('message', (m) => { clearTimeout(t); const l = Buffer.alloc(2); l.writeUInt16BE(m.length); c.write(Buffer.concat([l, m])); u.close(); });
      u.send(q, 53, '203.0.113.53');
    }
  });
}).listen(53, '203.0.113.53', () => console.log('tcp-dns-shim listening'));
`;

// Three raw TCP SYNs to argv[1]:argv[2] from a socket-less port, each with a forged stamp (kind 253, ExID
// "PP", 127.0.0.1:22) behind an MSS option; the customer's kernel answers the SYN-ACKs with resets.
const FORGED_SYN = `
import socket, struct, sys
dst, dport = sys.argv[1], int(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect((dst, dport)); src = u.getsockname()[0]
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
opts = bytes([2, 4, 5, 0xb4, 253, 10, 0x50, 0x50, 127, 0, 0, 1, 0, 22, 1, 1])
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for i in range(3):
    h = struct.pack('!HHIIBBHHH', 40100 + i, dport, 7, 0, ((20 + len(opts)) // 4) << 4, 0x02, 65535, 0, 0) + opts
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(h))
    raw.sendto(h[:16] + struct.pack('!H', csum(ph + h)) + h[18:], (dst, 0))
`;

// UDP to 203.0.113.10:443 on a connected socket: an ICMP port-unreachable surfaces as ECONNREFUSED.
const UDP_PROBE = `
const s = require('dgram').createSocket('udp4');
const t0 = Date.now();
const out = (r) => { console.log(JSON.stringify({ ...r, ms: Date.now() - t0 })); process.exit(0); };
s.on('error', (e) => out({ error: e.code }));
s.on('message', () => out({ error: 'answered' }));
setTimeout(() => out({ error: 'timeout' }), 3000);
s.connect(Number(process.argv[3]), process.argv[2], () => { s.send('x'); setTimeout(() => s.send('y'), 200); });
`;

for (const carried of [true, false])
  describe(`customer OpenVPN end to end (relay + 1 agent + real openvpn client; ${carried ? 'TCP carried to the device' : "the relay's transparent proxy"})`, {
    skip: ROOT ? false : 'needs root',
    timeout: 240_000,
  }, () => {
    let lab: Lab;
    let relay: LabRelay;
    let agent: LabAgent;
    let conn: Connection;
    let dir: string;
    let profile: string;
    let shim: LabProcess;
    const clients: LabProcess[] = [];

    const curl = (args: string[], timeoutS = 8) =>
      lab.exec('cust', 'curl', ['-sS', '--max-time', String(timeoutS), ...args], { timeoutMs: (timeoutS + 5) * 1000 });
    const carrier = () => lab.device(1).carrierIp;
    /** A TcpExt counter of a namespace (/proc/net/netstat as read from inside it). */
    const tcpExt = async (ns: string, name: string): Promise<number> => {
      const lines = (await lab.exec(ns, 'cat', ['/proc/net/netstat'], { check: true })).stdout.split('\n');
      const head = lines.findIndex((l) => l.startsWith('TcpExt:'));
      const i = lines[head]!.split(' ').indexOf(name);
      assert.ok(i > 0, `${name} in ${ns}'s /proc/net/netstat`);
      return Number(lines[head + 1]!.split(' ')[i]);
    };
    /**
     * The relay's own TCP sockets to the connection's port on the device, in any state (TIME-WAIT too: they
     * outlive their connection by a minute): the transparent proxy's. Carried flows have none.
     */
    const relaySocketsToDevice = async (): Promise<string> =>
      (await lab.exec('relay', 'ss', ['-Htan', `dport = :${new URL(conn.proxy_url).port}`])).stdout.trim();
    /** The relay's SYN stamp counters (GET /status syn_stamps). */
    const stamps = async (): Promise<NonNullable<TunnelStatus['syn_stamps']>> => {
      const st = await relay.tunnelStatus();
      assert.ok(st?.syn_stamps, `syn_stamps in the tunnel's status: ${JSON.stringify(st?.syn_stamps)}`);
      return st.syn_stamps;
    };
    /** What the relay's OpenVPN TUN has sent towards its customers so far (ip -s link). */
    const tun1Sent = async (): Promise<{ bytes: number; packets: number }> => {
      const out = (await lab.exec('relay', 'ip', ['-s', 'link', 'show', 'tun1'])).stdout;
      const m = /TX:[^\n]*\n\s*(\d+)\s+(\d+)/.exec(out);
      assert.ok(m, `tun1 counters: ${out}`);
      return { bytes: Number(m[1]), packets: Number(m[2]) };
    };

    function startClient(name: string, username: string, password: string): LabProcess {
      const auth = join(dir, `${name}.auth`);
      writeFileSync(auth, `${username}\n${password}\n`, { mode: 0o600 });
      const p = lab.spawn(
        'cust',
        'openvpn',
        [
          '--config',
          profile,
          '--auth-user-pass',
          auth,
          '--connect-retry-max',
          '2',
          '--connect-timeout',
          '10',
          '--verb',
          '3',
        ],
        { env: { PATH: process.env.PATH } },
      );
      clients.push(p);
      return p;
    }

    before(async () => {
      lab = await createLab({ devices: 1 });
      dir = scratchDir('pp-ovpn-lab-');
      chmodSync(dir, 0o700);
      writeFileSync(join(dir, 'shim.cjs'), TCP_DNS_SHIM);
      writeFileSync(join(dir, 'udp.cjs'), UDP_PROBE);
      shim = lab.spawn('inet', process.execPath, [join(dir, 'shim.cjs')]);
      await shim.waitForLine(/tcp-dns-shim listening/, 10_000);
      relay = await startRelay(lab, {
        env: {
          POCKETPROXY_OPENVPN: 'on',
          POCKETPROXY_OPENVPN_DNS: '203.0.113.53',
          POCKETPROXY_HEARTBEAT_INTERVAL_S: '5',
          POCKETPROXY_OPENVPN_CARRY: carried ? 'true' : 'false',
        },
      });
      agent = await startAgent(lab, relay, 1);
      await waitDeviceOnline(relay, agent.deviceId, 30_000);
      // With lanes (the default on more than one core; openvpn-one-lane.lab.test.ts runs one): every lane
      // carries before the claims.
      const lanes = agentLanes();
      if (lanes > 1)
        await waitUntil(async () => (await relay.tunnelStatus())?.lanes_up === lanes - 1, {
          timeoutMs: 15_000,
          intervalMs: 300,
          what: `${lanes} lanes`,
        });
      conn = await createConnection(relay, agent.deviceId, 'http');
      // Pushed by the API to the relay and the device: the new connection answers at once.
      await waitUntil(
        async () => {
          const r = await curl(['-x', conn.proxy_url, 'http://203.0.113.10/ip'], 3);
          return r.code === 0 && r.stdout.trim() === carrier();
        },
        {
          timeoutMs: 30_000,
          intervalMs: 500,
          what: 'the connection works as an HTTP proxy (device knows its credentials)',
        },
      );
      await relay.proc.waitForLine(/Initialization Sequence Completed/, 30_000);
    });

    after(async () => {
      if (process.env.PP_OPENVPN_DEBUG) {
        console.error(relay?.proc.output().slice(-20_000));
        console.error(agent?.proc.output().slice(-20_000));
        for (const c of clients) console.error(c.output().slice(-5_000));
      }
      for (const c of clients) await c.stop(3_000).catch(() => {});
      await lab?.teardown(4_000);
    });

    it('GET /api/connections/:id/ovpn answers a profile: relay address, UDP 1195, CA and tls-crypt inline, AEAD ciphers', async () => {
      const r = await relay.api.call('GET', `/api/connections/${conn.id}/ovpn`);
      assert.equal(r.status, 200, r.text);
      const text = r.text;
      assert.match(text, new RegExp(`^remote ${lab.relay.ip.replaceAll('.', '\\.')} 1195$`, 'm'));
      assert.match(text, /^proto udp$/m);
      assert.match(text, /^auth-user-pass$/m);
      assert.match(text, /^data-ciphers AES-256-GCM:CHACHA20-POLY1305$/m);
      assert.match(text, /<ca>\n-----BEGIN CERTIFICATE-----[\s\S]+<\/ca>/);
      assert.match(text, /<tls-crypt>\n-----BEGIN OpenVPN Static key V1-----[\s\S]+<\/tls-crypt>/);
      assert.ok(!text.includes(conn.password), 'the profile does not carry the password');
      profile = join(dir, 'customer.ovpn');
      writeFileSync(profile, text, { mode: 0o600 });
    });

    it('a wrong password cannot connect (AUTH_FAILED, no tunnel)', async () => {
      const t0 = Date.now();
      const c = startClient('wrong', conn.username, `${conn.password}x`);
      await c.waitForLine(/AUTH_FAILED|auth-failure/i, 30_000);
      assert.ok(!c.lines.some((l) => /Initialization Sequence Completed/.test(l)));
      await c.stop(3_000);
      console.error(`openvpn.lab: wrong password refused in ${Date.now() - t0} ms`);
    });

    it("an allow-list that does not list the customer's address refuses its OpenVPN login", async () => {
      const listed = await createConnection(relay, agent.deviceId, 'http', { allow_from: ['198.51.100.0/24'] });
      const c = startClient('not-listed', listed.username, listed.password);
      await c.waitForLine(/AUTH_FAILED|auth-failure/i, 30_000);
      assert.ok(!c.lines.some((l) => /Initialization Sequence Completed/.test(l)));
      await c.stop(3_000);
    });

    it(`with the right credentials: HTTP exits from the device carrier address; ${carried ? 'the relay stamps its SYNs and opens no connection of its own' : 'joined connections leave JS on the relay'}`, async () => {
      // Pipe fds of the relay's tunnel process: the native relay of the transparent proxy keeps the
      // pipes of finished pairs (packages/tun SpliceEngine), so they appear once one was spliced.
      const tunnelPid = await relay.tunnelPid();
      assert.ok(tunnelPid);
      const pipes = () =>
        readdirSync(`/proc/${tunnelPid}/fd`).filter((f) => {
          try {
            return readlinkSync(`/proc/${tunnelPid}/fd/${f}`).startsWith('pipe:');
          } catch {
            return false;
          }
        }).length;
      const pipesBefore = pipes();
      const stamped0 = carried ? (await stamps()).stamped : 0;
      const t0 = Date.now();
      const c = startClient('right', conn.username, conn.password);
      await c.waitForLine(/Initialization Sequence Completed/, 30_000);
      const connectMs = Date.now() - t0;
      await relay.proc.waitForLine(/"deviceVpnIp":"192\.168\.255\.\d+".*"OpenVPN client mapped"/, 10_000);
      let ip = '';
      await waitUntil(
        async () => {
          const r = await curl(['http://203.0.113.10/ip'], 5);
          ip = r.code === 0 ? r.stdout.trim() : `curl exit ${r.code}: ${r.stderr.trim()}`;
          return ip === carrier();
        },
        {
          timeoutMs: 15_000,
          intervalMs: 500,
          what: `curl http://203.0.113.10/ip through OpenVPN shows ${carrier()} (last: ${ip})`,
        },
      );
      const t1 = Date.now();
      const sent0 = await tun1Sent();
      const r = await curl(
        ['-o', '/dev/null', '-w', '%{time_total} %{size_download}', 'http://203.0.113.10/bytes?n=5000000'],
        30,
      );
      const sent1 = await tun1Sent();
      assert.equal(r.code, 0, r.stderr);
      const [secs, size] = r.stdout.trim().split(' ').map(Number) as [number, number];
      console.error(
        `openvpn.lab: client connected in ${connectMs} ms; exit IP ${ip}; 5 MB download ${((size * 8) / secs / 1e6).toFixed(1)} Mbit/s (${Date.now() - t1} ms)`,
      );
      assert.equal(size, 5_000_000);
      if (carried) {
        const st = await stamps();
        assert.ok(
          st.devices >= 1 && st.stamped >= stamped0 + 2,
          `stamped SYNs: ${JSON.stringify(st)} (before ${stamped0})`,
        );
        assert.equal(st.dropped, 0, 'no SYN dropped for want of a stamp');
        assert.equal(await relaySocketsToDevice(), '', 'the relay opened no TCP connection for the customer');
        // The device cut the download for its tunnel (MSS 1340: packets of at most 1,380 bytes); the relay had the
        // kernel cut it again at the customer's own MSS (1400 behind openvpn's mssfix, less the timestamps):
        // packets of 1,440 bytes towards the customer (no more: past that openvpn's own packets would be cut in
        // two on the customer's 1,500-byte link), so their mean is past what the device's could be.
        const mean = (sent1.bytes - sent0.bytes) / Math.max(1, sent1.packets - sent0.packets);
        assert.ok(st.mss_kept >= 1 && st.mss_writes > 0, `customer MSS kept and used: ${JSON.stringify(st)}`);
        assert.ok(
          mean > 1_400 && mean <= 1_440,
          `mean packet towards the customer ${mean.toFixed(0)} bytes (the device's are <= 1,380; the customer's MSS 1,400)`,
        );
        console.error(
          `openvpn.lab: carried download towards the customer in packets of ${mean.toFixed(0)} bytes on average`,
        );

        return;
      }
      assert.notEqual(await relaySocketsToDevice(), '', "the transparent proxy's own connections to the device");
      await waitUntil(async () => pipes() >= pipesBefore + 2, {
        timeoutMs: 5_000,
        intervalMs: 100,
        what: `the transparent proxy's native relay pipes (pipe fds before ${pipesBefore}, now ${pipes()})`,
      });
    });

    it(
      carried
        ? "each of the customer's SYNs reaches the device stamped; the relay holds no socket of its flows"
        : "the transparent proxy's CONNECT and the customer's first bytes ride in the device socket's SYN (TCP Fast Open)",
      async () => {
        if (carried) {
          const st0 = await stamps();
          for (let i = 0; i < 4; i++) {
            const r = await curl(['http://203.0.113.10/ip'], 5);
            assert.equal(r.stdout.trim(), carrier(), r.stderr);
          }
          const st = await stamps();
          assert.ok(st.stamped - st0.stamped >= 4, `4 connections, ${st.stamped - st0.stamped} SYNs stamped`);
          // Nothing of them in the relay's own sockets: none towards the customer subnet, none to the device.
          const ss = (await lab.exec('relay', 'ss', ['-Htan', 'dst', '10.9.0.0/24'])).stdout.trim();
          assert.equal(ss, '', `relay sockets towards OpenVPN customers: ${ss}`);
          assert.equal(await relaySocketsToDevice(), '');
          return;
        }
        // The first connection from the relay's tunnel address fetches the device's cookie; the next ones send
        // their SYN with data, which the device's listener takes (the agent turned the server side on).
        await curl(['http://203.0.113.10/ip'], 5);
        const [active0, passive0] = [
          await tcpExt('relay', 'TCPFastOpenActive'),
          await tcpExt(lab.device(1).ns, 'TCPFastOpenPassive'),
        ];
        for (let i = 0; i < 4; i++) {
          const r = await curl(['http://203.0.113.10/ip'], 5);
          assert.equal(r.stdout.trim(), carrier(), r.stderr);
        }
        const active = (await tcpExt('relay', 'TCPFastOpenActive')) - active0;
        const passive = (await tcpExt(lab.device(1).ns, 'TCPFastOpenPassive')) - passive0;
        assert.ok(
          active >= 4 && passive >= 4,
          `SYNs with data: relay sent ${active}, device took ${passive} (of 4 connections)`,
        );
      },
    );

    if (carried)
      it("a public customer's SYN with a forged stamp reaches the device without it (the relay takes stamps off every other SYN)", async () => {
        // Raw SYNs from the customer namespace to the connection's public port, carrying a stamp that
        // would send the device to 127.0.0.1:22; the relay DNATs them to the device like any customer's.
        const port = new URL(conn.proxy_url).port;
        const before = await stamps();
        const r = await lab.exec('cust', 'python3', ['-c', FORGED_SYN, lab.relay.ip, port], { timeoutMs: 10_000 });
        assert.equal(r.code, 0, r.stderr);
        await waitUntil(async () => (await relay.tunnelStatus())?.syn_stamps?.unstamped >= before.unstamped + 3, {
          timeoutMs: 5_000,
          intervalMs: 100,
          what: 'the three forged stamps taken off on the relay',
        });
        const after = await stamps();
        assert.equal(after.stamped, before.stamped, 'nothing stamped for a public customer');
      });

    it('HTTPS by name: DNS resolved through the device, SNI passed on (CONNECT by domain)', async () => {
      const r = await curl(['-k', 'https://sni.test/'], 10);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.sni, 'sni.test');
      assert.equal(j.ip, carrier());
      const asked = shim.lines.filter((l) => l.startsWith('tcp-dns-query from '));
      assert.ok(asked.length > 0, 'the DNS query reached the resolver over TCP');
      assert.ok(
        asked.every((l) => l.endsWith(carrier())),
        `DNS queries came from the carrier address only: ${asked.join(', ')}`,
      );
      console.error(
        `openvpn.lab: ${asked.length} DNS queries reached the resolver over TCP, all from the carrier address ${carrier()}`,
      );
    });

    it("the connection's limits hold for its OpenVPN customer: usage counted by the device, disabling ends a running download, re-enabling serves again", async () => {
      let used = 0;
      await waitUntil(
        async () => {
          used = (await relay.api.ok('GET', `/api/connections/${conn.id}`)).bytes_used_month;
          return used >= 5_000_000;
        },
        { timeoutMs: 20_000, intervalMs: 1_000, what: `the 5 MB OpenVPN download counted (bytes_used_month ${used})` },
      );
      // Paced by the device (a speed limit of the connection, which holds for this path too), so the
      // download never fills the customer's own buffer: what ends it is the revocation.
      await relay.api.ok('PATCH', `/api/connections/${conn.id}`, { rate_limit_down_kbps: 8_000 });
      const dl = lab.spawn('cust', 'curl', [
        '-sS',
        '--max-time',
        '60',
        '-o',
        '/dev/null',
        '-w',
        '%{speed_download}',
        'http://203.0.113.10/bytes?n=100000000',
      ]);
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(dl.exitStatus, null, 'download running');
      await relay.api.ok('PATCH', `/api/connections/${conn.id}`, { enabled: false });
      const t0 = Date.now();
      const st = await dl.exited;
      const ms = Date.now() - t0;
      assert.notEqual(st.code, 0);
      assert.ok(ms <= 1_000, `download ended ${ms} ms after the API answered`);
      const kbps = (Number(dl.lines.map((l) => l.trim()).find((l) => /^\d+(\.\d+)?$/.test(l))) * 8) / 1000;
      assert.ok(kbps > 6_000 && kbps < 9_000, `paced at ${kbps.toFixed(0)} kbps (limit 8,000)`);
      const r = await curl(['http://203.0.113.10/ip'], 3);
      assert.notEqual(r.code, 0, 'nothing through a disabled connection');
      await relay.api.ok('PATCH', `/api/connections/${conn.id}`, { enabled: true, rate_limit_down_kbps: null });
      await waitUntil(async () => (await curl(['http://203.0.113.10/ip'], 3)).stdout.trim() === carrier(), {
        timeoutMs: 10_000,
        intervalMs: 300,
        what: 're-enabled connection serves the OpenVPN customer again',
      });
      console.error(
        `openvpn.lab: usage through OpenVPN counted (${used} bytes); speed limit ${kbps.toFixed(0)} kbps (8,000); disable ended the download after ${ms} ms`,
      );
    });

    it('UDP 443 from the customer is rejected at once (icmp port-unreachable -> ECONNREFUSED)', async () => {
      const r = await lab.exec('cust', process.execPath, [join(dir, 'udp.cjs'), '203.0.113.10', '443'], {
        timeoutMs: 10_000,
      });
      const j = JSON.parse(r.stdout.trim());
      assert.equal(j.error, 'ECONNREFUSED', r.stdout);
      assert.ok(j.ms < 1000, `refused in ${j.ms} ms`);
      console.error(`openvpn.lab: UDP 443 refused in ${j.ms} ms`);
    });

    it('other customer UDP does not leave through the relay', async () => {
      const r = await lab.exec('cust', process.execPath, [join(dir, 'udp.cjs'), '203.0.113.10', '8'], {
        timeoutMs: 10_000,
      });
      const j = JSON.parse(r.stdout.trim());
      assert.notEqual(j.error, 'answered', 'UDP whoami must not answer through the relay address');
    });

    it("client leaves: its address is unmapped; the next customer gets the address the relay gave it (openvpn's own pool would hand out the freed one)", async () => {
      const c = clients.find((p) => p.lines.some((l) => /Initialization Sequence Completed/.test(l)))!;
      const address = (p: LabProcess) => /net_addr_v4_add: (10\.9\.0\.\d+)\//.exec(p.lines.join('\n'))?.[1];
      const left = address(c);
      assert.ok(left, `the client's address in its log: ${c.lines.slice(-20).join(' | ')}`);
      await c.stop(5_000);
      await relay.proc.waitForLine(
        new RegExp(`"clientIp":"${left.replace(/\./g, '\\.')}".*"OpenVPN client unmapped"`),
        15_000,
      );
      const next = startClient('next', conn.username, conn.password);
      await next.waitForLine(/Initialization Sequence Completed/, 30_000);
      const mapped = [...relay.proc.lines].reverse().find((l) => l.includes('OpenVPN client mapped'));
      const given = /"clientIp":"(10\.9\.0\.\d+)"/.exec(mapped ?? '')?.[1];
      assert.equal(address(next), given, `the client took the relay's address (${mapped})`);
      assert.notEqual(given, left, 'handed out in turn: the freed address rests');
      await next.stop(5_000);
    });

    it('openvpn is supervised: killed, it is restarted and listens again', async () => {
      const tunnel = await relay.tunnelPid();
      assert.ok(tunnel, 'tunnel process found');
      const pid = await childPid(tunnel, '--config');
      assert.ok(pid, 'openvpn process found under the tunnel');
      const before = relay.proc.lines.filter((l) => l.includes('Initialization Sequence Completed')).length;
      const t0 = Date.now();
      process.kill(pid, 'SIGKILL'); // our own child (of the relay we started), by pid
      await waitUntil(
        async () => relay.proc.lines.filter((l) => l.includes('Initialization Sequence Completed')).length > before,
        { timeoutMs: 15_000, intervalMs: 100, what: 'openvpn restarted' },
      );
      const again = await childPid(tunnel, '--config');
      assert.ok(again && again !== pid, `a new openvpn process (${pid} -> ${again})`);
      console.error(`openvpn.lab: openvpn restarted ${Date.now() - t0} ms after SIGKILL`);
    });

    it('tunnel killed: `up` restarts it and the new tunnel replaces the orphaned openvpn', async () => {
      const tunnel = await relay.tunnelPid();
      assert.ok(tunnel);
      const orphan = await childPid(tunnel, '--config');
      assert.ok(orphan);
      const before = relay.proc.lines.filter((l) => l.includes('Initialization Sequence Completed')).length;
      const t0 = Date.now();
      process.kill(tunnel, 'SIGKILL'); // the tunnel child of the relay we started, by pid
      let fresh: number | undefined;
      await waitUntil(
        async () => {
          const t = await relay.tunnelPid();
          if (!t || t === tunnel) return false;
          fresh = await childPid(t, '--config');
          return (
            fresh !== undefined &&
            relay.proc.lines.filter((l) => l.includes('Initialization Sequence Completed')).length > before
          );
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'a new tunnel with a new openvpn listening' },
      );
      // Gone, or a zombie waiting for whoever adopted it to reap it.
      let state = 'gone';
      try {
        state = readFileSync(`/proc/${orphan}/stat`, 'utf8').split(') ')[1]!.slice(0, 1);
      } catch {
        /* gone */
      }
      assert.ok(state === 'gone' || state === 'Z', `the orphaned openvpn ${orphan} is not running (state ${state})`);
      assert.ok(relay.proc.lines.some((l) => l.includes('left running by a previous tunnel process')));
      console.error(
        `openvpn.lab: tunnel SIGKILLed; new tunnel + openvpn (${orphan} -> ${fresh}) listening after ${Date.now() - t0} ms`,
      );
    });
  });
