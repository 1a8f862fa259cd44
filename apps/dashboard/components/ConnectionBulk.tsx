'use client';
// The connections page's fleet tools: bulk enable / disable / rotate / delete on the selected rows
// (POST /api/connections/bulk: one transaction; an unknown id changes nothing) and export of the
// selected or all shown connections as proxy lines or CSV.
import { lazy, Suspense, useState } from 'react';
import { api, errorMessage } from '@/lib/api';
import type { Connection } from '@/lib/types';
import { ConfirmDialog, Dialog, Loading } from './ui';

// The export panel (formats, CSV) loads when first opened: it stays out of the page's first load.
const ExportPanel = lazy(() => import('./ExportPanel'));

export type BulkAction = 'enable' | 'disable' | 'delete' | 'rotate';
type RotationItem = { device_id: string; outcome: string; error: string | null };
export type BulkAnswer = {
  action: BulkAction;
  count: number;
  items: Connection[];
  deleted: string[];
  rotations: RotationItem[];
};

export type Names = {
  deviceName: (id: string) => string | undefined;
  customerName: (id: string) => string | undefined;
};

export function BulkBar({
  selected,
  shown,
  names,
  onDone,
  onNotice,
}: {
  selected: Connection[];
  shown: Connection[];
  names: Names;
  onDone: (answer: BulkAnswer) => void;
  onNotice: (tone: 'ok' | 'warn' | 'error', text: string) => void;
}) {
  const [busy, setBusy] = useState<BulkAction | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [exporting, setExporting] = useState(false);
  const n = selected.length;

  async function run(action: BulkAction) {
    const answer = await api<BulkAnswer>('/api/connections/bulk', {
      method: 'POST',
      body: { ids: selected.map((c) => c.id), action },
    });
    onDone(answer);
    return answer;
  }

  async function act(action: Exclude<BulkAction, 'delete'>) {
    setBusy(action);
    try {
      const a = await run(action);
      if (action === 'rotate') {
        const bad = a.rotations.filter((r) => r.outcome === 'failed' || r.outcome === 'not_found');
        const devs = a.rotations.length;
        onNotice(
          bad.length ? 'warn' : 'ok',
          `Rotation requested for ${devs - bad.length} of ${devs} device${devs === 1 ? '' : 's'} (${a.count} connection${a.count === 1 ? '' : 's'}); every connection of a device gets its new address.${bad.length ? ` Failed: ${bad.map((b) => `${names.deviceName(b.device_id) ?? b.device_id} (${b.error})`).join(', ')}` : ''}`,
        );
      } else onNotice('ok', `${a.count} connection${a.count === 1 ? '' : 's'} ${action}d.`);
    } catch (err) {
      onNotice('error', `Could not ${action} the selected connections: ${errorMessage(err)}. Nothing was changed.`);
    } finally {
      setBusy(null);
    }
  }

  return (
    <fieldset className="toolbar bulk-bar" aria-label="Selected connections">
      <span className="small muted">{n ? `${n} selected` : 'Select rows for bulk actions'}</span>
      <button type="button" className="btn btn-small" disabled={!n || !!busy} onClick={() => act('enable')}>
        {busy === 'enable' ? 'Enabling…' : 'Enable'}
      </button>
      <button type="button" className="btn btn-small" disabled={!n || !!busy} onClick={() => act('disable')}>
        {busy === 'disable' ? 'Disabling…' : 'Disable'}
      </button>
      <button type="button" className="btn btn-small" disabled={!n || !!busy} onClick={() => act('rotate')}>
        {busy === 'rotate' ? 'Rotating…' : 'Rotate IP'}
      </button>
      <button
        type="button"
        className="btn btn-small btn-danger"
        disabled={!n || !!busy}
        onClick={() => setConfirmDelete(true)}
      >
        Delete
      </button>
      <button type="button" className="btn btn-small" disabled={!shown.length} onClick={() => setExporting(true)}>
        Export{n ? ` (${n})` : ''}
      </button>
      <ConfirmDialog
        open={confirmDelete}
        title={`Delete ${n} connection${n === 1 ? '' : 's'}?`}
        confirmLabel="Delete"
        onClose={() => setConfirmDelete(false)}
        onConfirm={async () => {
          const a = await run('delete');
          onNotice('ok', `${a.deleted.length} connection${a.deleted.length === 1 ? '' : 's'} deleted.`);
        }}
      >
        <p style={{ margin: 0 }}>They stop working immediately and their ports are released.</p>
      </ConfirmDialog>
      <Dialog open={exporting} title="Export proxies" onClose={() => setExporting(false)} wide>
        {exporting && (
          <Suspense fallback={<Loading />}>
            <ExportPanel selected={selected} shown={shown} names={names} />
          </Suspense>
        )}
      </Dialog>
    </fieldset>
  );
}
