'use client';
// "Copy" on a row of the devices list: what an operator pastes about a device — its connections as
// proxy lines (one per connection, for a customer or a tool), its id, its current address.
import { useEffect, useState } from 'react';
import { errorMessage } from '@/lib/api';
import { exportText } from '@/lib/export';
import { fetchAll } from '@/lib/fleet';
import type { Connection, Device } from '@/lib/types';
import { CopyButton, Dialog } from './ui';

export function DeviceCopyDialog({ device, onClose }: { device: Device | null; onClose: () => void }) {
  const [conns, setConns] = useState<Connection[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setConns(null);
    setError(null);
    if (!device) return;
    const c = new AbortController();
    fetchAll<Connection>(`/api/connections?device_id=${encodeURIComponent(device.id)}`, c.signal).then(
      (l) => setConns(l.items),
      (err) => {
        if ((err as Error).name !== 'AbortError') setError(errorMessage(err));
      },
    );
    return () => c.abort();
  }, [device]);
  const lines = conns ? exportText(conns, 'url') : '';
  return (
    <Dialog open={!!device} title={device ? `Copy from ${device.name}` : 'Copy'} onClose={onClose} wide>
      {device && (
        <div className="stack">
          <div className="row">
            <span className="muted">Device id</span> <code className="mono">{device.id}</code>
            <CopyButton text={device.id} label="Copy id" />
          </div>
          <div className="row">
            <span className="muted">Current IP</span> <code className="mono">{device.current_ip ?? '—'}</code>
            {device.current_ip && <CopyButton text={device.current_ip} label="Copy IP" />}
          </div>
          <div>
            <div className="muted small">
              Its connections as proxy lines (every line carries its own credentials; customers paste it as a proxy)
            </div>
            {error && <div className="alert alert-error">{error}</div>}
            {!conns && !error && <p className="muted">Loading connections…</p>}
            {conns && conns.length === 0 && <p className="muted">This device has no connections yet.</p>}
            {conns && conns.length > 0 && (
              <textarea
                className="mono"
                aria-label="Proxy lines"
                readOnly
                rows={Math.min(10, conns.length + 1)}
                value={lines}
                spellCheck={false}
                style={{ width: '100%', fontSize: 12, whiteSpace: 'pre', overflowX: 'auto' }}
              />
            )}
          </div>
          <div className="actions">
            {conns && conns.length > 0 && (
              <CopyButton text={lines} label={`Copy ${conns.length} proxy line${conns.length === 1 ? '' : 's'}`} />
            )}
          </div>
        </div>
      )}
    </Dialog>
  );
}
