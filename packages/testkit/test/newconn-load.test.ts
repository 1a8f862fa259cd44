// bench/newconn-load.c (the load generator of the data-plane bench): compiled here and run over loopback
// only, against a stub that speaks SOCKS5 (username/password) and HTTP and holds one chosen turn back.
// What it must report: every request, and each of the client's turns in its own slot of `turns_p50_ms`
// (the bench prints them as where a request's time goes), so a slow turn shows in its slot and no other.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LoadResult } from '../bench/newconn.js';

const SRC = new URL('../bench/newconn-load.c', import.meta.url).pathname;
const ANSWER = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello';

/**
 * A SOCKS5 + HTTP stub: `socks` answers greeting, credentials and request before the GET; `holdMs[k]`
 * delays the answer to the client's k-th message (0: the first one it sends).
 */
function stub(socks: boolean, holdMs: number[]): Server {
  return createServer((s: Socket) => {
    let buf = Buffer.alloc(0);
    let step = 0;
    const steps: [number | ((b: Buffer) => number), Buffer | string][] = [
      ...(socks
        ? ([
            [3, Buffer.from([5, 2])],
            [(b: Buffer) => (b.length >= 2 ? 3 + b[1]! + (b[2 + b[1]!] ?? 255) : 1e9), Buffer.from([1, 0])],
            [(b: Buffer) => (b.length >= 5 ? 7 + b[4]! : 1e9), Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 80])],
          ] as [(b: Buffer) => number, Buffer][])
        : []),
      [(b: Buffer) => (b.includes('\r\n\r\n') ? b.indexOf('\r\n\r\n') + 4 : 1e9), ANSWER],
    ];
    s.on('error', () => {});
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const st = steps[step];
        if (!st) return;
        const need = typeof st[0] === 'number' ? st[0] : st[0](buf);
        if (buf.length < need) return;
        buf = buf.subarray(need);
        const reply = st[1];
        const last = step === steps.length - 1;
        const hold = holdMs[step] ?? 0;
        step++;
        const send = () => (last ? s.end(reply) : s.write(reply));
        if (hold > 0) setTimeout(send, hold);
        else send();
      }
    });
  });
}

const listen = (srv: Server) =>
  new Promise<number>((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as AddressInfo).port)));

describe('bench/newconn-load.c', () => {
  let dir: string;
  let bin: string;
  const servers: Server[] = [];
  const run = (args: string[]) =>
    new Promise<LoadResult>((resolve, reject) =>
      execFile(bin, args, { timeout: 20_000 }, (err, out) => (err ? reject(err) : resolve(JSON.parse(out)))),
    );

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pp-newconn-load-'));
    bin = join(dir, 'newconn-load');
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, SRC]);
  });
  after(() => {
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('times a direct request as two turns: connect, and the GET to its first byte', async () => {
    const srv = stub(false, [30]);
    servers.push(srv);
    const port = await listen(srv);
    const r = await run(['direct', '127.0.0.1', String(port), '-', '-', 'x.test', '80', '/', '1', '20000', '6']);
    assert.equal(r.requests, 6);
    assert.equal(r.errors, 0);
    assert.equal(r.turns_p50_ms?.length, 2);
    const [connect, get] = r.turns_p50_ms!;
    assert.ok(connect! < 25, `connect ${connect} ms`);
    assert.ok(get! >= 29 && get! <= r.ttfb_p50_ms, `GET ${get} ms of ${r.ttfb_p50_ms}`);
  });

  it('times SOCKS5 turn by turn, a held-back credentials answer in its own slot', async () => {
    const srv = stub(true, [0, 40, 0, 0]);
    servers.push(srv);
    const port = await listen(srv);
    const r = await run(['socks5', '127.0.0.1', String(port), 'u', 'p', 'x.test', '80', '/', '1', '20000', '5']);
    assert.equal(r.requests, 5);
    assert.equal(r.errors, 0);
    const t = r.turns_p50_ms!;
    assert.equal(t.length, 5, 'connect, greeting, credentials, request, GET');
    assert.ok(t[2]! >= 39, `credentials ${t[2]} ms`);
    for (const k of [0, 1, 3, 4]) assert.ok(t[k]! < 25, `turn ${k}: ${t[k]} ms`);
    assert.ok(r.ttfb_p50_ms >= t[2]!, 'the first byte comes after every turn');
  });
});
