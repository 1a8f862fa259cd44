'use client';
// The connections page's export: the selected or all shown connections as proxy lines or CSV, to copy or
// download (lib/export.ts). Loaded on demand by ConnectionBulk.
import { useMemo, useState } from 'react';
import { download, EXPORT_FORMATS, exportFilename, exportText, type ExportFormat } from '@/lib/export';
import type { Connection } from '@/lib/types';
import type { Names } from './ConnectionBulk';
import { CopyButton } from './ui';

export default function ExportPanel({
  selected,
  shown,
  names,
}: {
  selected: Connection[];
  shown: Connection[];
  names: Names;
}) {
  const [format, setFormat] = useState<ExportFormat>('url');
  const [scope, setScope] = useState<'selected' | 'shown'>(selected.length ? 'selected' : 'shown');
  const items = scope === 'selected' ? selected : shown;
  const text = useMemo(() => exportText(items, format, names), [items, format, names]);
  return (
    <div className="stack">
      <div className="toolbar">
        <label className="check">
          Format
          <select aria-label="Export format" value={format} onChange={(e) => setFormat(e.target.value as ExportFormat)}>
            {(Object.keys(EXPORT_FORMATS) as ExportFormat[]).map((f) => (
              <option key={f} value={f}>
                {EXPORT_FORMATS[f]}
              </option>
            ))}
          </select>
        </label>
        <label className="check">
          <input
            type="radio"
            name="export-scope"
            checked={scope === 'selected'}
            disabled={!selected.length}
            onChange={() => setScope('selected')}
          />
          Selected ({selected.length})
        </label>
        <label className="check">
          <input type="radio" name="export-scope" checked={scope === 'shown'} onChange={() => setScope('shown')} />
          All shown ({shown.length})
        </label>
      </div>
      <textarea
        className="mono"
        style={{ width: '100%', fontSize: 12, whiteSpace: 'pre', overflowX: 'auto' }}
        aria-label="Exported proxies"
        readOnly
        rows={Math.min(12, Math.max(3, items.length + 1))}
        value={text}
        spellCheck={false}
      />
      <div className="actions">
        <CopyButton text={text} label="Copy all" />
        <button
          type="button"
          className="btn btn-primary"
          onClick={() =>
            download(
              text,
              exportFilename(format, items.length),
              format === 'csv' ? 'text/csv;charset=utf-8' : 'text/plain;charset=utf-8',
            )
          }
        >
          Download
        </button>
      </div>
      <p className="muted small" style={{ margin: 0 }}>
        These lines hold the passwords. Each works only on its own port and only with its own credentials.
      </p>
    </div>
  );
}
