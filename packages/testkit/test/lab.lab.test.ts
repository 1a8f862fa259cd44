// Tier-4 lab test: builds a real lab (2 devices) and checks every piece the product's end-to-end
// tests rely on. Needs root; skips loudly otherwise.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createLab, type Lab } from '../src/index.js';

const isRoot = process.getuid?.() === 0;
const REPO = new URL('../../../', import.meta.url).pathname;

/** One UDP request from inside `ns`; resolves the reply text or 'TIMEOUT'. */
async function udp(
  lab: Lab,
  ns: string,
  host: string,
  port: number,
  payload: string,
  timeoutMs = 1500,
): Promise<string> {
  const script = `const s=require('dgram').createSocket('udp4');
    const t=setTimeout(()=>{console.log('TIMEOUT');process.exit(0)},${timeoutMs});
    s.on('message',m=>{console.log(m.toString());clearTimeout(t);s.close()});
    s.send(${JSON.stringify(payload)},${port},${JSON.stringify(host)});`;
  const r = await lab.exec(ns, process.execPath, ['-e', script], { check: true, timeoutMs: timeoutMs + 5000 });
  return r.stdout.trim();
}

/** One TCP echo round trip from inside `ns`; resolves the echoed text or an error name. */
async function tcpEcho(lab: Lab, ns: string, host: string, port: number, payload: string): Promise<string> {
  const script = `const s=require('net').connect(${port},${JSON.stringify(host)},()=>s.write(${JSON.stringify(payload)}));
    const t=setTimeout(()=>{console.log('TIMEOUT');process.exit(0)},2000);
    s.on('data',d=>{console.log(d.toString());clearTimeout(t);s.destroy()});
    s.on('error',e=>{console.log(e.code);clearTimeout(t)});`;
  return (await lab.exec(ns, process.execPath, ['-e', script], { check: true, timeoutMs: 10_000 })).stdout.trim();
}

async function callerIp(lab: Lab, ns: string, url = 'http://echo.test/'): Promise<string> {
  const r = await lab.exec(ns, 'curl', ['-sS', '-m', '5', url], { check: true });
  return (JSON.parse(r.stdout) as { ip: string }).ip;
}

if (!isRoot) {
  test('network-namespace lab', (t) => {
    console.error('SKIPPED packages/testkit lab tests: needs root (network namespaces, veth, nftables)');
    t.skip('needs root: network namespaces, veth, nftables');
  });
} else {
  describe('network-namespace lab (2 devices)', { timeout: 120_000 }, () => {
    let lab: Lab;
    const spawnedPids: number[] = [];

    before(async () => {
      const t0 = Date.now();
      lab = await createLab({ devices: 2 });
      console.error(`lab ${lab.prefix} up in ${Date.now() - t0} ms`);
    });
    after(async () => {
      await lab?.teardown();
    });

    test('each device reaches the inet echo as its carrier public address', { timeout: 30_000 }, async () => {
      assert.equal(await callerIp(lab, 'dev1'), lab.device(1).carrierIp);
      assert.equal(await callerIp(lab, 'dev2'), lab.device(2).carrierIp);
      assert.notEqual(lab.device(1).carrierIp, lab.device(2).carrierIp);
      const r = await lab.exec('dev1', 'curl', ['-sS', '-m', '5', 'http://echo.test/ip'], { check: true });
      assert.equal(r.stdout.trim(), lab.device(1).carrierIp);
      const bytes = await lab.exec(
        'dev1',
        'curl',
        ['-sS', '-m', '10', '-o', '/dev/null', '-w', '%{size_download}', 'http://echo.test/bytes?n=5000000'],
        { check: true },
      );
      assert.equal(bytes.stdout, '5000000');
    });

    test('rotation via the CLI from inside the device changes the public address and kills old flows', {
      timeout: 30_000,
    }, async () => {
      const before = await lab.carrierAddress(1);
      // A long-lived TCP flow through the carrier NAT, which the rotation must break.
      const flow = lab.spawn('dev1', process.execPath, [
        '-e',
        `const s=require('net').connect(7,'203.0.113.10',()=>console.log('connected'));
        s.on('data',()=>{}); const i=setInterval(()=>s.write('x'),100);
        s.on('error',e=>console.log('closed '+e.code)); s.on('close',()=>{console.log('closed');clearInterval(i)});`,
      ]);
      spawnedPids.push(flow.pid);
      await flow.waitForLine('connected', 5000);

      const r = await lab.exec('dev1', lab.rotateCommand(1)[0]!, lab.rotateCommand(1).slice(1), { check: true });
      const after = r.stdout.trim();
      assert.notEqual(after, before);
      assert.equal(after, await lab.carrierAddress(1));
      assert.equal(await callerIp(lab, 'dev1'), after);
      await flow.waitForLine('closed', 10_000);

      // The documented shell form, exactly as the agent's --rotate-command would run it.
      const sh = await lab.exec(
        'dev1',
        'sh',
        ['-c', `cd ${REPO} && node --import tsx ${lab.cliPath} rotate ${lab.prefix} 1`],
        { check: true },
      );
      assert.notEqual(sh.stdout.trim(), after);
      assert.equal(await callerIp(lab, 'dev1'), sh.stdout.trim());
      // In-process rotation works the same, here with an airplane-mode-like outage first.
      const t0 = Date.now();
      const rot = await lab.rotateCarrierAddress(2, undefined, { outageMs: 300 });
      assert.ok(Date.now() - t0 >= 300);
      assert.equal(rot.oldIp, lab.device(2).carrierGateway.replace(/\.1$/, '.2'));
      assert.equal(await callerIp(lab, 'dev2'), rot.newIp);
    });

    test('the customer reaches a TCP listener on the relay public address', { timeout: 30_000 }, async () => {
      const srv = lab.spawn('relay', process.execPath, [
        '-e',
        `require('net').createServer(s=>s.end('hello from relay\\n')).listen(9000,'${lab.relay.ip}',()=>console.log('listening'))`,
      ]);
      spawnedPids.push(srv.pid);
      await srv.waitForLine('listening', 5000);
      const script = `const s=require('net').connect(9000,'${lab.relay.ip}');s.on('data',d=>process.stdout.write(d));s.on('error',e=>console.log(e.code))`;
      const r = await lab.exec('cust', process.execPath, ['-e', script], { check: true });
      assert.equal(r.stdout, 'hello from relay\n');
      // Devices reach the relay too (that is how their tunnels come up).
      const d = await lab.exec('dev1', process.execPath, ['-e', script], { check: true });
      assert.equal(d.stdout, 'hello from relay\n');
    });

    test('DNS answers *.test names from the table and NXDOMAIN otherwise', { timeout: 30_000 }, async () => {
      const a = await lab.exec(
        'cust',
        'dig',
        ['+short', '+time=2', '+tries=1', `@${lab.inet.dns.ip}`, 'echo.test', 'A'],
        { check: true },
      );
      assert.equal(a.stdout.trim(), lab.inet.servicesIp);
      const relay = await lab.exec('dev2', 'dig', ['+short', '+time=2', '+tries=1', 'relay.test'], { check: true });
      assert.equal(relay.stdout.trim(), lab.relay.ip);
      const nx = await lab.exec('cust', 'dig', ['+time=2', '+tries=1', `@${lab.inet.dns.ip}`, 'nope.test'], {
        check: true,
      });
      assert.match(nx.stdout, /status: NXDOMAIN/);
    });

    test('HTTPS echoes the SNI it saw', { timeout: 30_000 }, async () => {
      for (const name of ['b.test', 'sni.test']) {
        const r = await lab.exec(
          'cust',
          'curl',
          ['-sS', '-k', '-m', '5', '--resolve', `${name}:443:${lab.inet.servicesIp}`, `https://${name}/hello`],
          { check: true },
        );
        const body = JSON.parse(r.stdout) as { sni: string; ip: string; path: string };
        assert.equal(body.sni, name);
        assert.equal(body.ip, lab.cust.ip);
        assert.equal(body.path, '/hello');
      }
      // The certificate verifies against itself for every lab name.
      const v = await lab.exec(
        'cust',
        'curl',
        ['-sS', '-m', '5', '--cacert', lab.inet.tls.certPath, 'https://echo.test/'],
        { check: true },
      );
      assert.equal((JSON.parse(v.stdout) as { sni: string }).sni, 'echo.test');
    });

    test('UDP echo and whoami work', { timeout: 30_000 }, async () => {
      assert.equal(await udp(lab, 'cust', lab.inet.servicesIp, lab.inet.echoPort, 'ping-1'), 'ping-1');
      const who = JSON.parse(await udp(lab, 'dev2', lab.inet.servicesIp, lab.inet.whoamiPort, 'who')) as { ip: string };
      assert.equal(who.ip, await lab.carrierAddress(2));
    });

    test('blockUdp blocks UDP only, and unblockUdp restores it', { timeout: 30_000 }, async () => {
      await lab.blockUdp('inet', lab.inet.echoPort);
      try {
        assert.equal(await udp(lab, 'cust', lab.inet.servicesIp, lab.inet.echoPort, 'blocked?', 800), 'TIMEOUT');
        assert.equal(await tcpEcho(lab, 'cust', lab.inet.servicesIp, lab.inet.echoPort, 'tcp-ok'), 'tcp-ok');
      } finally {
        await lab.unblockUdp('inet', lab.inet.echoPort);
      }
      assert.equal(await udp(lab, 'cust', lab.inet.servicesIp, lab.inet.echoPort, 'open-again'), 'open-again');
    });

    test('setLinkDown cuts a device off and setLinkUp restores it', { timeout: 30_000 }, async () => {
      await lab.setLinkDown('dev2');
      const down = await lab.exec('dev2', 'curl', ['-sS', '-m', '2', 'http://203.0.113.10/ip']);
      assert.notEqual(down.code, 0);
      await lab.setLinkUp('dev2');
      assert.equal(await callerIp(lab, 'dev2', 'http://203.0.113.10/'), await lab.carrierAddress(2));
    });

    test('teardown removes every namespace and process', { timeout: 30_000 }, async () => {
      const namespaces = [...lab.namespaces];
      const t0 = Date.now();
      await lab.teardown();
      console.error(`lab ${lab.prefix} torn down in ${Date.now() - t0} ms`);
      const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
      assert.ok(!list.includes(lab.prefix), `namespaces left: ${list}`);
      for (const ns of namespaces) assert.ok(!existsSync(`/etc/netns/${ns}`), `/etc/netns/${ns} left`);
      for (const pid of spawnedPids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `pid ${pid} still alive`);
      await assert.rejects(lab.exec('inet', 'true'), /PP_ERR_LAB_TORN_DOWN|torn down/);
    });
  });
}
