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
}

export const DEFAULT_TIMERS: Readonly<TunnelTimers> = Object.freeze({
  keepaliveMs: 10_000,
  deadAfterMs: 30_000,
  rekeyAfterMs: 120_000,
  rekeyAfterMessages: 2 ** 32,
  rejectAfterMs: 180_000,
  rejectAfterMessages: 2 ** 48,
  rekeyTimeoutMs: 5_000,
});

export function resolveTimers(partial: Partial<TunnelTimers> | undefined): TunnelTimers {
  const t = { ...DEFAULT_TIMERS, ...partial };
  for (const [k, v] of Object.entries(t)) {
    if (!Number.isFinite(v) || v <= 0) throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', { reason: `${k} must be a positive number` });
  }
  if (t.rekeyAfterMs >= t.rejectAfterMs) throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', { reason: 'rekeyAfterMs must be below rejectAfterMs' });
  if (t.rekeyAfterMessages >= t.rejectAfterMessages) throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', { reason: 'rekeyAfterMessages must be below rejectAfterMessages' });
  if (t.keepaliveMs >= t.deadAfterMs) throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', { reason: 'keepaliveMs must be below deadAfterMs' });
  return t;
}
