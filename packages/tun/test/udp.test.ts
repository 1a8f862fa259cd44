// Loopback only: BatchUdpSocket against itself and against node:dgram.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { BatchUdpSocket, type Datagram } from '../src/index.js';

function collect(
  sock: BatchUdpSocket,
  want: number,
  timeoutMs = 3000,
): Promise<{ datagrams: Datagram[]; batches: number }> {
  return new Promise((resolve, reject) => {
    const datagrams: Datagram[] = [];
    let batches = 0;
    const timer = setTimeout(() => reject(new Error(`got ${datagrams.length}/${want}`)), timeoutMs);
    sock.start((ds) => {
      batches++;
      // Buffers are views into a per-batch Buffer, safe to keep.
      datagrams.push(...ds);
      if (datagrams.length >= want) {
        clearTimeout(timer);
        resolve({ datagrams, batches });
      }
    });
  });
}

for (const offload of [false, true])
  test(`sendBatch -> recvmmsg delivers every datagram, in order, with the sender address (UDP GSO/GRO ${offload ? 'on' : 'off'})`, async () => {
    const a = new BatchUdpSocket({ type: 'udp4', address: '127.0.0.1', offload });
    const b = new BatchUdpSocket({
      type: 'udp4',
      address: '127.0.0.1',
      batchSize: 16,
      recvBufferSize: 1 << 20,
      offload,
    });
    try {
      const to = b.address();
      const from = a.address();
      const n = 200;
      const out = Array.from({ length: n }, (_, i) => ({
        data: Buffer.from(`dgram-${i}`),
        address: '127.0.0.1',
        port: to.port,
      }));
      const got = collect(b, n);
      assert.equal(a.sendBatch(out), n);
      const { datagrams, batches } = await got;
      assert.deepEqual(
        datagrams.map((d) => d.data.toString()),
        out.map((o) => o.data.toString()),
      );
      assert.ok(datagrams.every((d) => d.address === '127.0.0.1' && d.port === from.port));
      assert.equal(a.stats().txPackets, n);
      assert.ok(a.stats().txSyscalls <= 2, 'one sendmmsg per 256 datagrams');
      assert.equal(b.stats().rxPackets, n);
      if (!offload) {
        assert.ok(batches >= Math.ceil(n / 16) && batches < n, `batches=${batches}`);
      } else {
        // Same-sized runs to one peer went as GSO sends and arrived GRO-merged (fewer messages, same datagrams).
        assert.equal(a.stats().gso, true);
        assert.equal(b.stats().gro, true);
        assert.ok(a.stats().txGso > 0, JSON.stringify(a.stats()));
        assert.ok(b.stats().rxGro > 0, JSON.stringify(b.stats()));
        assert.ok(batches < Math.ceil(n / 16), `batches=${batches}`);
      }
    } finally {
      a.close();
      b.close();
    }
  });

test('interoperates with node:dgram both ways, and udp6 reaches IPv4 peers (v4-mapped)', async () => {
  const s = new BatchUdpSocket({ type: 'udp6', address: '::' });
  const d = dgram.createSocket('udp4');
  try {
    await new Promise<void>((r) => d.bind(0, '127.0.0.1', r));
    const dport = d.address().port;
    const echoed = new Promise<string>((r) => d.once('message', (m) => r(m.toString())));
    const got = collect(s, 1);
    d.send('ping', s.address().port, '127.0.0.1');
    const { datagrams } = await got;
    assert.equal(datagrams[0]!.data.toString(), 'ping');
    assert.equal(datagrams[0]!.address, '::ffff:127.0.0.1');
    assert.equal(datagrams[0]!.port, dport);
    assert.equal(s.send(Buffer.from('pong'), '127.0.0.1', dport), true);
    assert.equal(await echoed, 'pong');
  } finally {
    s.close();
    d.close();
  }
});

test('oversized datagrams are dropped and counted, not delivered truncated', async () => {
  const a = new BatchUdpSocket({ type: 'udp4', address: '127.0.0.1' });
  const b = new BatchUdpSocket({ type: 'udp4', address: '127.0.0.1', maxDatagram: 100 });
  try {
    const port = b.address().port;
    const got = collect(b, 1);
    a.sendBatch([
      { data: Buffer.alloc(500, 1), address: '127.0.0.1', port },
      { data: Buffer.from('small'), address: '127.0.0.1', port },
    ]);
    const { datagrams } = await got;
    assert.deepEqual(
      datagrams.map((d) => d.data.toString()),
      ['small'],
    );
    assert.equal(b.stats().rxTruncated, 1);
  } finally {
    a.close();
    b.close();
  }
});

test('bad input fails with stable codes', () => {
  assert.throws(
    () => new BatchUdpSocket({ type: 'udp4', address: 'nope' }),
    (e: any) => e.code === 'PP_ERR_TUN_INVALID_CONFIG',
  );
  assert.throws(
    () => new BatchUdpSocket({ type: 'udp4', address: '::1' }),
    (e: any) => e.code === 'PP_ERR_TUN_UDP_BIND_FAILED',
  );
  const s = new BatchUdpSocket({ type: 'udp4', address: '127.0.0.1' });
  assert.throws(
    () => s.sendBatch([{ data: Buffer.from('x'), address: 'not-an-ip', port: 1 }]),
    (e: any) => e.code === 'PP_ERR_TUN_INVALID_DATAGRAM',
  );
  assert.throws(
    () => s.send(Buffer.from('x'), '127.0.0.1', 70000),
    (e: any) => e.code === 'PP_ERR_TUN_INVALID_DATAGRAM',
  );
  s.close();
  assert.throws(
    () => s.sendBatch([]),
    (e: any) => e.code === 'PP_ERR_TUN_CLOSED',
  );
});

test('a closed, idle socket does not keep the process alive; unref() lets it exit while open', () => {
  const s = new BatchUdpSocket({ type: 'udp4', address: '127.0.0.1' });
  s.start(() => {});
  s.unref();
  s.close();
  s.close(); // idempotent
});
