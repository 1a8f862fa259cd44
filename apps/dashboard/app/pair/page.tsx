'use client';
import Link from 'next/link';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api } from '@/lib/api';
import { problemErrors, validate, type FieldErrors } from '@/lib/forms';
import { useLiveEvents, useLiveStatus, POLL_INTERVAL_MS } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { Device, List, PairingCode, Relay } from '@/lib/types';
import { Countdown, CopyButton, Field, Notice, PageHeader } from '@/components/ui';

type Paired = { device_id: string; name: string };

/** What the agent runs on, and the `run` options that fit it (the operator adjusts the interface). */
const KINDS = {
  modem: {
    label: 'Linux box with a 4G/5G modem',
    run: 'pocketproxy-agent run --egress-interface wwan0 --rotate-driver modemmanager',
  },
  android: {
    label: 'Rooted Android phone (Termux, as root)',
    run: 'pocketproxy-agent run --egress-interface rmnet_data0 --rotate-driver android-root',
  },
} as const;
type Kind = keyof typeof KINDS;

/** The server a pairing URI names, and whether the agent will refuse it without --insecure-http. */
function uriServer(pairUrl: string): { server: string; plainHttp: boolean } {
  try {
    const server = new URL(pairUrl).searchParams.get('server') ?? '';
    const u = new URL(server);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const loopback = host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
    return { server, plainHttp: u.protocol === 'http:' && !loopback };
  } catch {
    return { server: '', plainHttp: false };
  }
}

/** Single-quoted for a POSIX shell (the URI has & and ?). */
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export default function PairPage() {
  const relays = useResource<List<Relay>>('/api/relays');
  const [deviceName, setDeviceName] = useState('');
  const [relayId, setRelayId] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const [code, setCode] = useState<PairingCode | null>(null);
  const [expired, setExpired] = useState(false);
  const [paired, setPaired] = useState<Paired | null>(null);
  const [kind, setKind] = useState<Kind>('modem');
  const [origin, setOrigin] = useState('');
  const knownIds = useRef<Set<string> | null>(null);
  const live = useLiveStatus();

  useEffect(() => {
    setOrigin(window.location.origin);
    document.title = 'Pair a device · PocketProxy';
  }, []);

  async function create(e?: React.FormEvent) {
    e?.preventDefault();
    const body: Record<string, unknown> = {};
    if (deviceName.trim()) body.device_name = deviceName;
    if (relayId) body.relay_id = relayId;
    const v = await validate('PairingCodeCreate', body);
    if (!v.ok) return setErrors(v.errors);
    setErrors({});
    setBusy(true);
    try {
      // Remember the fleet first, so the polling fallback can spot the newly paired device.
      knownIds.current = null;
      api<List<Device>>('/api/devices?limit=1000')
        .then((l) => (knownIds.current = new Set(l.items.map((d) => d.id))))
        .catch(() => {});
      const c = await api<PairingCode>('/api/pairing-codes', { method: 'POST', body: v.data });
      setCode(c);
      setExpired(Date.parse(c.expires_at) <= Date.now());
      setPaired(null);
    } catch (err) {
      setErrors(problemErrors(err));
    } finally {
      setBusy(false);
    }
  }

  useLiveEvents((ev) => {
    if (ev.type !== 'device_paired' || !code || paired) return;
    const prefix = typeof ev.data.code_prefix === 'string' ? ev.data.code_prefix : '';
    if (prefix && prefix.toUpperCase() === code.code.slice(0, 4).toUpperCase()) {
      setPaired({ device_id: String(ev.data.device_id ?? ''), name: String(ev.data.name ?? 'device') });
    }
  });

  // Without the socket, look for a device that was not there when the code was made.
  const waiting = !!code && !paired && !expired;
  const poll = useCallback(async () => {
    if (!knownIds.current) return;
    try {
      const l = await api<List<Device>>('/api/devices?limit=1000');
      const fresh = l.items.filter((d) => !knownIds.current?.has(d.id));
      const wanted = deviceName.trim();
      const match = fresh.find((d) => !wanted || d.name === wanted) ?? (fresh.length === 1 ? fresh[0] : undefined);
      if (match) setPaired({ device_id: match.id, name: match.name });
    } catch {
      /* keep waiting */
    }
  }, [deviceName]);
  useEffect(() => {
    if (!waiting || live === 'live') return;
    const t = setInterval(poll, POLL_INTERVAL_MS);
    return () => clearInterval(t);
  }, [waiting, live, poll]);

  const qrSrc = useMemo(
    () => (code ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(code.qr_svg)}` : ''),
    [code],
  );
  // The pairing URI is what the QR code holds: server, code and the server key fingerprint the agent checks.
  const pairCommand = code ? `pocketproxy-agent pair ${shellQuote(code.pair_url)}` : '';
  const runCommand = KINDS[kind].run;
  const target = code ? uriServer(code.pair_url) : { server: '', plainHttp: false };
  const onExpire = useCallback(() => setExpired(true), []);

  return (
    <>
      <PageHeader title="Pair a device" />
      <div className="grid grid-2">
        <form className="card stack" onSubmit={create} noValidate>
          <h2>New pairing code</h2>
          <p className="muted" style={{ margin: 0 }}>
            A code works once and expires after 10 minutes. The device runs{' '}
            <span className="mono">pocketproxy-agent</span> as root: a Linux box with a 4G/5G modem, or a rooted Android
            phone under Termux. There is no app to install: the QR code holds the same pairing URI as the command, so a
            phone camera can read it.
          </p>
          <p className="muted small" style={{ margin: 0 }}>
            Unrooted Android phones or USB modems on one Linux box? <Link href="/farms/">Farm hosts</Link>: one
            enrollment token enrolls all of them.
          </p>
          {errors._ && <Notice tone="error">{errors._}</Notice>}
          <Field
            label="Device name (optional)"
            error={errors.device_name}
            hint="Shown in the device list; the agent can also pick one."
          >
            {(p) => (
              <input
                {...p}
                value={deviceName}
                onChange={(e) => setDeviceName(e.target.value)}
                maxLength={64}
                placeholder="e.g. pixel-7-berlin-01"
              />
            )}
          </Field>
          <Field label="Relay" error={errors.relay_id}>
            {(p) => (
              <select {...p} value={relayId} onChange={(e) => setRelayId(e.target.value)}>
                <option value="">Default relay</option>
                {(relays.data?.items ?? []).map((r) => (
                  <option key={r.id} value={r.id} disabled={!r.enabled}>
                    {r.name} ({r.host}){r.enabled ? '' : ' — disabled'}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <div className="actions">
            <button type="submit" className="btn btn-primary" disabled={busy}>
              {busy ? 'Creating…' : code ? 'Create another code' : 'Create pairing code'}
            </button>
          </div>
        </form>

        {code && (
          <section className="card stack" aria-labelledby="code-h" aria-live="polite">
            {paired ? (
              <>
                <h2 id="code-h">Paired</h2>
                <Notice tone="ok">
                  <span className="paired">Paired: {paired.name}</span>
                </Notice>
                <div className="row">
                  {paired.device_id && (
                    <Link
                      className="btn btn-primary"
                      href={`/devices/view/?id=${encodeURIComponent(paired.device_id)}`}
                    >
                      Open device
                    </Link>
                  )}
                  <Link className="btn" href={`/connections/?device_id=${encodeURIComponent(paired.device_id)}&new=1`}>
                    Create a connection
                  </Link>
                </div>
              </>
            ) : (
              <>
                <div className="row" style={{ justifyContent: 'space-between' }}>
                  <h2 id="code-h" style={{ margin: 0 }}>
                    Pairing code
                  </h2>
                  {expired ? (
                    <span className="badge badge-bad">expired</span>
                  ) : (
                    <span className="muted">
                      expires in <Countdown key={code.code} at={code.expires_at} onExpire={onExpire} />
                    </span>
                  )}
                </div>
                {expired ? (
                  <Notice tone="warn">This code has expired. Create a new one.</Notice>
                ) : (
                  <>
                    <div className="row">
                      <span className="pair-code">{code.code}</span>
                      <CopyButton text={code.code} label="Copy code" />
                    </div>
                    <div className="row" style={{ alignItems: 'flex-start' }}>
                      {/* Rendered as an image: an SVG in <img> cannot run script. */}
                      <img
                        className="qr"
                        src={qrSrc}
                        alt={`QR code for pairing code ${code.code}`}
                        width={220}
                        height={220}
                      />
                      <div className="stack" style={{ flex: '1 1 220px', minWidth: 0 }}>
                        <div className="row" style={{ justifyContent: 'space-between' }}>
                          <strong>On the device, run:</strong>
                          <select
                            aria-label="Kind of device"
                            value={kind}
                            onChange={(e) => setKind(e.target.value as Kind)}
                          >
                            {(Object.keys(KINDS) as Kind[]).map((k) => (
                              <option key={k} value={k}>
                                {KINDS[k].label}
                              </option>
                            ))}
                          </select>
                        </div>
                        <ol className="small muted steps">
                          <li>
                            <span className="mono">pair</span> redeems the code once and saves the device&apos;s keys;
                          </li>
                          <li>
                            <span className="mono">run</span> brings it online; keep it running (a service, or{' '}
                            <span className="mono">tmux</span> / <span className="mono">nohup</span>).
                          </li>
                        </ol>
                        <div className="cmd cmd-wrap">
                          <code>
                            {pairCommand}
                            {'\n'}
                            {runCommand}
                          </code>
                        </div>
                        <CopyButton text={`${pairCommand}\n${runCommand}`} label="Copy commands" />
                        <div className="small muted">
                          <span className="mono">--egress-interface</span> is the interface that reaches the carrier (
                          <span className="mono">ip route</span> shows it);{' '}
                          <span className="mono">pocketproxy-agent run --help</span> lists the options. The device needs
                          a PocketProxy checkout built with <span className="mono">npm run build</span>, its{' '}
                          <span className="mono">bin/</span> on <span className="mono">PATH</span> (see the README).
                        </div>
                        <div className="small muted">
                          Server fingerprint: <span className="mono">{code.server_fingerprint}</span> — the agent
                          refuses a server or relay key that does not match it.
                        </div>
                        {target.plainHttp && (
                          <Notice tone="warn">
                            The server URL <span className="mono">{target.server}</span> is plain http: the agent
                            refuses it unless you add <span className="mono">--insecure-http</span> to the pair command
                            (for a lab only; the device token and keys would cross the network in clear). Set{' '}
                            <span className="mono">POCKETPROXY_PUBLIC_URL</span> to an https URL.
                          </Notice>
                        )}
                        {origin && target.server && target.server !== origin && (
                          <div className="small muted">
                            The code names the server <span className="mono">{target.server}</span>{' '}
                            (POCKETPROXY_PUBLIC_URL), not <span className="mono">{origin}</span>: the device must reach
                            that address.
                          </div>
                        )}
                        <div className="muted small" role="status">
                          Waiting for the device to pair{live === 'live' ? '…' : ' (checking every 10 s)…'}
                        </div>
                      </div>
                    </div>
                  </>
                )}
              </>
            )}
          </section>
        )}
      </div>
    </>
  );
}
