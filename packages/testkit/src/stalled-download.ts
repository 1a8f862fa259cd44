// A download to a customer who stops reading, through a proxy's listener on loopback (no lab, no root): what
// the proxy's end of the customer's connection then holds unsent (TCP_NOTSENT_LOWAT bounds it). Used by the
// relay's transparent proxy and front tests and the agent's front tests.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const TOTAL = 32 << 20;
/**
 * What a proxy's customer socket may hold unsent once its customer stops reading: the addon's TCP_NOTSENT_LOWAT
 * (splice_relay.cc: 128 KiB on the relay's transparent proxy, 512 KiB on the fronts and the agent's listeners)
 * plus at most one write's worth of a pipe (64 KiB) past it. Without the option: the whole send buffer (~4 MB).
 */
export const NOTSENT_MAX = { transparent: (128 + 64) * 1024, front: (512 + 64) * 1024 } as const;

/**
 * A server (the device's proxy port, or an origin) that, once it has a request head, answers `preamble` and
 * writes up to 32 MiB as fast as it is taken.
 */
export async function floodingServer(preamble: string) {
  let written = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let head = '';
    const onHead = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onHead);
      s.write(preamble);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (written < TOTAL) {
          written += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      pump();
    };
    s.on('data', onHead);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    written: () => written,
    // Its connections go too: one still waiting to write must not hold close() open.
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/**
 * Connects to the listener at `port`, sends `head`, reads 1 MiB, stops reading until the server's writes stall,
 * and returns what the proxy's end of that connection holds unsent (`ss`: notsent); then checks that the
 * download goes on once the customer reads again.
 */
export async function notSentWhenStalled(port: number, head: string, server: { written: () => number }) {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  try {
    await new Promise((r) => c.once('connect', r));
    const local = c.localPort;
    let got = 0;
    const first = new Promise<void>((r) =>
      c.on('data', (d) => {
        got += d.length;
        if (got >= 1 << 20) r();
      }),
    );
    c.write(head);
    await first;
    c.pause();
    // Until the server's writes stop: every buffer on the way is full.
    let last = -1;
    for (let i = 0; i < 100 && server.written() !== last; i++) {
      last = server.written();
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(server.written() < TOTAL, `the server's writes stalled (${server.written()} bytes written)`);
    const { stdout } = await execFileP('ss', [
      '-Htin',
      'state',
      'established',
      `( sport = :${port} and dport = :${local} )`,
    ]);
    assert.match(stdout, /cwnd:/, `the proxy's customer socket in ss: ${stdout}`);
    const notsent = Number(/notsent:(\d+)/.exec(stdout)?.[1] ?? 0); // absent when 0
    c.resume();
    const before = got;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(got > before + (1 << 20), `read ${got - before} bytes after resuming`);
    return notsent;
  } finally {
    c.destroy();
  }
}
