// bench/http-target.c (the C web server of BENCH_TARGET=c): compiled here and asked over loopback only.
// What it answers, that heads arriving in pieces are read whole, that bad and random heads get an error
// or a close and never take it down, and that it exits when its stdin closes.
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const SRC = new URL('../bench/http-target.c', import.meta.url).pathname;

/** Sends `pieces` (with a pause between them) and reads until the server closes; the whole answer. */
function ask(port: number, pieces: (string | Buffer)[], gapMs = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no close within 5 s'));
    }, 5_000);
    s.on('data', (b) => got.push(b));
    s.on('error', () => {}); // a reset after the answer: what was read counts
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
    s.on('connect', async () => {
      for (const p of pieces) {
        if (s.destroyed) return;
        s.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

const head = (a: Buffer) => a.subarray(0, a.indexOf('\r\n\r\n') + 4).toString('latin1');
const body = (a: Buffer) => a.subarray(a.indexOf('\r\n\r\n') + 4);
const status = (a: Buffer) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(a.toString('latin1'))?.[1] ?? 0);

describe('bench/http-target.c', () => {
  let dir: string;
  let srv: ChildProcessWithoutNullStreams;
  let port = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pp-http-target-'));
    const bin = join(dir, 'http-target');
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, SRC]);
    srv = spawn(bin, ['127.0.0.1', '0']);
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      srv.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /ready http-target 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      srv.on('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
    });
  });

  after(() => {
    if (srv.exitCode === null) srv.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /bytes?n=N with N bytes and Content-Length, and /ip with the caller', async () => {
    for (const n of [0, 1, 1024, 1 << 20]) {
      const a = await ask(port, [`GET /bytes?n=${n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
      assert.equal(status(a), 200);
      assert.match(head(a), new RegExp(`\\r\\nContent-Length: ${n}\\r\\n`));
      assert.match(head(a), /\r\nConnection: close\r\n/);
      assert.equal(body(a).length, n);
    }
    const ip = await ask(port, ['GET /ip HTTP/1.1\r\nHost: x\r\n\r\n']);
    assert.equal(body(ip).toString(), '127.0.0.1\n');
    const abs = await ask(port, ['GET http://echo.test:8080/bytes?n=5 HTTP/1.1\r\nHost: echo.test:8080\r\n\r\n']);
    assert.equal(body(abs).toString(), 'aaaaa');
  });

  it('reads a head that arrives in pieces', async () => {
    const a = await ask(port, ['GE', 'T /bytes?n=7 HT', 'TP/1.1\r\nHost: x\r', '\n\r', '\n'], 20);
    assert.equal(status(a), 200);
    assert.equal(body(a).length, 7);
  });

  it('refuses what it does not serve: 404, 400, 431', async () => {
    assert.equal(status(await ask(port, ['GET /nothing HTTP/1.1\r\n\r\n'])), 404);
    for (const bad of ['/bytes?n=1048577', '/bytes?n=', '/bytes?n=12x', '/bytes?n=-1', '/bytes?n=99999999999999999999'])
      assert.equal(status(await ask(port, [`GET ${bad} HTTP/1.1\r\n\r\n`])), 400, bad);
    assert.equal(status(await ask(port, ['POST /ip HTTP/1.1\r\n\r\n'])), 400);
    assert.equal(status(await ask(port, ['GET\r\n\r\n'])), 400);
    assert.equal(status(await ask(port, ['GET http://nopath HTTP/1.1\r\n\r\n'])), 400);
    assert.equal(status(await ask(port, [`GET /ip HTTP/1.1\r\nX: ${'a'.repeat(9000)}`])), 431);
  });

  it('survives 300 random heads and keeps answering', async () => {
    let seed = 0x13572468;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 8;
    };
    const alphabet = ['GET ', '/bytes?n=', '/ip', ' HTTP/1.1', '\r\n', '\r\n\r\n', 'http://', '9', '\0', ' ', '?', '/'];
    for (let i = 0; i < 300; i++) {
      const parts: (string | Buffer)[] = [];
      for (let k = rnd() % 8; k >= 0; k--) {
        if (rnd() % 3 === 0) parts.push(Buffer.from(Array.from({ length: rnd() % 64 }, () => rnd() & 0xff)));
        else parts.push(alphabet[rnd() % alphabet.length]!);
      }
      // Ends every head so the server answers (or closes) rather than waiting for more.
      parts.push('\r\n\r\n');
      const a = await ask(port, [Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)))]);
      if (a.length) assert.ok([200, 400, 404].includes(status(a)), `answer ${i}: ${a.subarray(0, 40).toString()}`);
    }
    assert.equal(body(await ask(port, ['GET /bytes?n=3 HTTP/1.1\r\n\r\n'])).toString(), 'aaa');
  });

  it('exits when its stdin closes', async () => {
    const code = new Promise<number | null>((r) => srv.on('exit', (c) => r(c)));
    srv.stdin.end();
    assert.equal(await code, 0);
  });
});
