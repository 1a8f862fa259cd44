// WebSocket hub at /ws?token=<jwt>: fleet events to dashboards, as {type, data, at}.
// A client that cannot keep up (over 1 MiB buffered) is dropped rather than slowing everyone.
import type { FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import type { Ctx } from '../context.js';
import { verifyJwt } from './auth.js';

export async function installWs(app: FastifyInstance, ctx: Ctx, gauge: { inc(): void; dec(): void }) {
  await app.register(websocket, { options: { maxPayload: 4096 } });
  app.get('/ws', { websocket: true }, async (socket, req) => {
    const token = (req.query as Record<string, string | undefined>).token ?? '';
    try {
      await verifyJwt(ctx, token);
    } catch {
      socket.close(4401, 'unauthenticated');
      return;
    }
    gauge.inc();
    const unsubscribe = ctx.bus.subscribe((e) => {
      if (socket.bufferedAmount > 1 << 20) {
        socket.terminate();
        return;
      }
      socket.send(JSON.stringify(e));
    });
    const ping = setInterval(() => socket.ping(), 25_000);
    socket.on('message', () => {}); // clients have nothing to say; ignore
    socket.on('close', () => {
      clearInterval(ping);
      unsubscribe();
      gauge.dec();
    });
    socket.send(JSON.stringify({ type: 'hello', data: {}, at: ctx.clock.now().toISOString() }));
  });
}
