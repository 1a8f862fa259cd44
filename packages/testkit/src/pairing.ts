// "How long from pairing to serving": pair a fresh device with the real agent binary (startAgent: a
// new state dir, `pocketproxy-agent pair`, then `run`), give it a connection at once, and time from
// the pairing code's redemption (the device's paired_at, written by POST /api/public/pair) to
//   - online: the API shows it online with its tunnel up, and
//   - answering: the new connection's port answers through the device with its carrier address
//     (curl from the customer namespace, every 25 ms).
// Shared by the pairing lab test and `npm run bench:control`.
import type { Lab } from './lab.js';
import {
  createConnection,
  startAgent,
  type AgentOptions,
  type Connection,
  type LabAgent,
  type LabRelay,
} from './system.js';

export interface PairingTiming {
  agent: LabAgent;
  deviceId: string;
  connection: Connection;
  /** paired_at -> the API shows the device online with its tunnel up. */
  onlineMs: number;
  /** paired_at -> the connection's port answers through the device with its carrier address. */
  answerMs: number;
  /** The agent's `pair` command took this long (node start, pairing call, state file). */
  pairCommandMs: number;
}

export async function pairAndMeasure(
  lab: Lab,
  relay: LabRelay,
  n: number,
  opts: { timeoutMs?: number; agent?: AgentOptions } = {},
): Promise<PairingTiming> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const carrier = await lab.carrierAddress(n);
  const t0 = Date.now();
  const agent = await startAgent(lab, relay, n, { rotate: false, ...opts.agent });
  const pairCommandMs = Date.now() - t0;
  try {
    const dev = await relay.api.ok<{ paired_at: string }>('GET', `/api/devices/${agent.deviceId}`);
    const pairedAt = Date.parse(dev.paired_at);
    const connection = await createConnection(relay, agent.deviceId, 'http');
    const proxy = `http://${encodeURIComponent(connection.username)}:${encodeURIComponent(connection.password)}@${lab.relay.ip}:${connection.port}`;
    const deadline = Date.now() + timeoutMs;
    let onlineAt: number | undefined;
    let answerAt: number | undefined;
    const online = (async () => {
      while (onlineAt === undefined && Date.now() < deadline) {
        const d = (await relay.api.call('GET', `/api/devices/${agent.deviceId}`)).body;
        if (d?.status === 'online' && d?.tunnel_connected === true) onlineAt = Date.now();
        else await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const answering = (async () => {
      while (answerAt === undefined && Date.now() < deadline) {
        const r = await lab.exec('cust', 'curl', ['-sS', '--max-time', '2', '-x', proxy, 'http://echo.test/ip'], {
          timeoutMs: 5_000,
        });
        if (r.code === 0 && r.stdout.trim() === carrier) answerAt = Date.now();
        else await new Promise((res) => setTimeout(res, 25));
      }
    })();
    await Promise.all([online, answering]);
    if (onlineAt === undefined || answerAt === undefined) {
      const what = onlineAt === undefined ? 'online' : 'answering on its port';
      throw new Error(
        `device ${agent.deviceId} (dev${n}) not ${what} within ${timeoutMs} ms of pairing; ` +
          `agent output:\n${agent.proc.lines.slice(-30).join('\n')}`,
      );
    }
    return {
      agent,
      deviceId: agent.deviceId,
      connection,
      onlineMs: onlineAt - pairedAt,
      answerMs: answerAt - pairedAt,
      pairCommandMs,
    };
  } catch (e) {
    await agent.stop();
    throw e;
  }
}

/** The transport the agent's tunnel is on, from its log ('tunnel established' / 'tunnel transport switched'), or undefined. */
export function agentTransport(agent: LabAgent): 'udp' | 'tcp' | undefined {
  let t: 'udp' | 'tcp' | undefined;
  for (const line of agent.proc.lines) {
    if (!line.startsWith('{') || !(line.includes('tunnel transport switched') || line.includes('tunnel established')))
      continue;
    try {
      const j = JSON.parse(line) as { msg?: string; transport?: string };
      if (
        (j.msg === 'tunnel transport switched' || j.msg === 'tunnel established') &&
        (j.transport === 'udp' || j.transport === 'tcp')
      )
        t = j.transport;
    } catch {
      /* not JSON */
    }
  }
  return t;
}
