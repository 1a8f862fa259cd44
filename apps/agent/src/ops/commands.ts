// Commands from the server: pushed over the tunnel (0x05, acknowledged at once with 0x06) and/or
// listed in a heartbeat answer. The same id may arrive both ways and be re-pushed while the ack is
// in flight, so every command runs once per id; results always go over REST, which is what the
// server records (`POST /api/devices/:id/commands/:cmd/result`).
import type { Logger } from 'pino';
import type { CommandResultStatus, PushedCommand } from '../api-client.js';
import { isPPError } from '@pocketproxy/errors';

export type CommandSource = 'tunnel' | 'heartbeat';

/** A handler resolves with the result object (→ succeeded) or throws (→ failed, message as error). */
export type CommandHandler = (
  payload: Record<string, unknown>,
  cmd: PushedCommand,
) => Promise<Record<string, unknown> | undefined>;

export interface CommandDispatcherDeps {
  handlers: Record<string, CommandHandler>;
  report: (id: string, status: CommandResultStatus, result?: Record<string, unknown>) => Promise<void>;
  /** Tunnel ack (0x06); absent when the command came by heartbeat only. */
  ack?: (
    id: string,
    status: 'received' | 'succeeded' | 'failed' | 'rejected',
    extra?: { result?: unknown; error?: string },
  ) => void;
  logger: Logger;
  /** Ids remembered for de-duplication (oldest forgotten first). */
  remember?: number;
}

type Phase = 'running' | 'succeeded' | 'failed';

export class CommandDispatcher {
  private readonly seen = new Map<string, Phase>();
  private readonly remember: number;
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly deps: CommandDispatcherDeps) {
    this.remember = deps.remember ?? 1000;
  }

  /** Returns false when the id was already handled (it is re-acked over the tunnel, not rerun). */
  submit(cmd: PushedCommand, source: CommandSource): boolean {
    const phase = this.seen.get(cmd.id);
    if (phase !== undefined) {
      // The relay re-pushes until it sees our ack: answer again, never run again.
      if (source === 'tunnel') this.deps.ack?.(cmd.id, phase === 'running' ? 'received' : phase);
      return false;
    }
    this.seen.set(cmd.id, 'running');
    while (this.seen.size > this.remember) this.seen.delete(this.seen.keys().next().value as string);
    if (source === 'tunnel') this.deps.ack?.(cmd.id, 'received');
    const p = this.run(cmd).finally(() => this.running.delete(p));
    this.running.add(p);
    return true;
  }

  /** Resolves when every command started so far has finished and reported. */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  private async run(cmd: PushedCommand): Promise<void> {
    const log = this.deps.logger.child({ cmdId: cmd.id, type: cmd.type });
    const payload =
      typeof cmd.payload === 'object' && cmd.payload !== null && !Array.isArray(cmd.payload)
        ? (cmd.payload as Record<string, unknown>)
        : {};
    await this.report(log, cmd.id, 'acked');
    const handler = Object.hasOwn(this.deps.handlers, cmd.type) ? this.deps.handlers[cmd.type] : undefined;
    let status: 'succeeded' | 'failed';
    let result: Record<string, unknown> | undefined;
    if (!handler) {
      status = 'failed';
      result = { error: `unknown command type ${cmd.type}` };
    } else {
      try {
        result = (await handler(payload, cmd)) ?? {};
        status = 'succeeded';
      } catch (e) {
        status = 'failed';
        result = { error: (e as Error).message, ...(isPPError(e) ? { code: e.code } : {}) };
      }
    }
    this.seen.set(cmd.id, status);
    log.info({ status, result }, 'command finished');
    this.deps.ack?.(cmd.id, status, status === 'failed' ? { error: String(result?.error ?? '') } : { result });
    await this.report(log, cmd.id, status, result);
  }

  private async report(
    log: Logger,
    id: string,
    status: CommandResultStatus,
    result?: Record<string, unknown>,
  ): Promise<void> {
    // A lost result would leave the command hanging on the dashboard: retry a few times.
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        await this.deps.report(id, status, result);
        return;
      } catch (e) {
        log.warn({ err: e, attempt, status }, 'reporting command result failed');
        await new Promise((r) => setTimeout(r, Math.min(8_000, 500 * 2 ** attempt)).unref?.());
      }
    }
  }
}
