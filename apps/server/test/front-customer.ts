// A customer of the relay's front listener on loopback, for socks5-front.test.ts and http-early-reply.test.ts.
import * as net from 'node:net';

/** A customer: connect, then `read(n)` waits for n more bytes; `ended` resolves with 'end' | 'reset'. */
export async function customer(port: number) {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
  let buf = Buffer.alloc(0);
  let want = 0;
  let wake: (() => void) | undefined;
  const ended = new Promise<string>((r) => {
    s.on('end', () => r('end'));
    s.on('error', (e: NodeJS.ErrnoException) => r(e.code === 'ECONNRESET' ? 'reset' : String(e.code)));
  });
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length >= want) wake?.();
  });
  const read = async (n: number, ms = 2_000): Promise<Buffer> => {
    want = n;
    const t0 = Date.now();
    while (buf.length < n && Date.now() - t0 < ms)
      await Promise.race([new Promise<void>((r) => (wake = r)), new Promise((r) => setTimeout(r, 50))]);
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  return { s, read, ended, pending: () => buf };
}

export type FrontCustomer = Awaited<ReturnType<typeof customer>>;
