import { tunnelError } from './errors.js';

/**
 * Timer and rekey policy shared by both ends. All durations in milliseconds of the caller's clock
 * (`now` arguments): only differences are used, except the initiator's TAI64N timestamp which needs
 * Unix epoch time, so pass Date.now()-style values.
 */
export interface TunnelTimers {
  /** Send a keepalive when nothing was sent for this long on an established session. */
  keepaliveMs: number;
  /** A peer with no authenticated frame for this long is dead. */
  deadAfterMs: number;
  /** Initiator starts a new handshake when its session is this old... */
  rekeyAfterMs: number;
  /** ...or when this many messages were sent or received on it. */
  rekeyAfterMessages: number;
  /** No session is used (either direction) after this age; forces rekey to have happened. */
  rejectAfterMs: number;
  /** Hard message limit per session. */
  rejectAfterMessages: number;
  /** Initiator resends an unanswered initiation (fresh ephemeral and timestamp) after this long. */
  rekeyTimeoutMs: number;
  /**
   * Initiator only: while it has no session (first connect, after a dead relay or an expired
   * session), its first retries come after these delays, one after another (each at most
   * rekeyTimeoutMs), then every rekeyTimeoutMs as usual. Empty (the default): every rekeyTimeoutMs.
   * A rekey of a live session always waits rekeyTimeoutMs. The agent sets [250, 500, 1000, 2000].
   */
  connectRetryMs: readonly number[];
}

export const DEFAULT_TIMERS: Readonly<TunnelTimers> = Object.freeze({
  keepaliveMs: 10_000,
  deadAfterMs: 30_000,
  rekeyAfterMs: 120_000,
  rekeyAfterMessages: 2 ** 32,
  rejectAfterMs: 180_000,
  rejectAfterMessages: 2 ** 48,
  rekeyTimeoutMs: 5_000,
  connectRetryMs: Object.freeze([]) as readonly number[],
});

/** At most this many fast retries (connectRetryMs). */
const MAX_CONNECT_RETRIES = 16;

export function resolveTimers(partial: Partial<TunnelTimers> | undefined): TunnelTimers {
  const t = { ...DEFAULT_TIMERS, ...partial };
  const { connectRetryMs, ...numbers } = t;
  for (const [k, v] of Object.entries(numbers)) {
    if (!Number.isFinite(v) || v <= 0)
      throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', { reason: `${k} must be a positive number` });
  }
  if (
    !Array.isArray(connectRetryMs) ||
    connectRetryMs.length > MAX_CONNECT_RETRIES ||
    connectRetryMs.some((v) => typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > t.rekeyTimeoutMs)
  ) {
    throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', {
      reason: `connectRetryMs must be at most ${MAX_CONNECT_RETRIES} positive numbers, each at most rekeyTimeoutMs`,
    });
  }
  t.connectRetryMs = Object.freeze([...connectRetryMs]);
  if (t.rekeyAfterMs >= t.rejectAfterMs)
    throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', { reason: 'rekeyAfterMs must be below rejectAfterMs' });
  if (t.rekeyAfterMessages >= t.rejectAfterMessages)
    throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', {
      reason: 'rekeyAfterMessages must be below rejectAfterMessages',
    });
  if (t.keepaliveMs >= t.deadAfterMs)
    throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', { reason: 'keepaliveMs must be below deadAfterMs' });
  return t;
}
