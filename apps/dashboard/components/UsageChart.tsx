'use client';
// Bandwidth chart for the device page. uPlot (≈ 20 KB gzip) is imported dynamically, so only the
// device page ever downloads it.
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef, useState } from 'react';
import type uPlotType from 'uplot';
import { formatBytes } from '@/lib/format';
import type { UsagePoint } from '@/lib/types';

type Props = { points: UsagePoint[]; granularity: 'hour' | 'day'; label: string };

/**
 * A complete, gap-free series (UTC-aligned buckets ending now) so missing buckets read as zero:
 * [time, download, upload]. Usage is counted from the customer's side (docs/api.md "Usage"): a
 * download is what was sent to the customer (`bytes_out`), an upload what the customer sent (`bytes_in`).
 */
export function toSeries(
  points: UsagePoint[],
  granularity: 'hour' | 'day',
  now = Date.now(),
): [number[], number[], number[]] {
  const step = granularity === 'hour' ? 3600 : 86400;
  const n = granularity === 'hour' ? 24 : 30;
  const end = Math.floor(now / 1000 / step) * step;
  const start = end - (n - 1) * step;
  const xs: number[] = [];
  const down: number[] = [];
  const up: number[] = [];
  const index = new Map<number, number>();
  for (let t = start; t <= end; t += step) {
    index.set(t, xs.length);
    xs.push(t);
    down.push(0);
    up.push(0);
  }
  for (const p of points) {
    const t = Math.floor(Date.parse(p.t) / 1000 / step) * step;
    const i = index.get(t);
    if (i === undefined) continue;
    down[i] = (down[i] ?? 0) + p.bytes_out;
    up[i] = (up[i] ?? 0) + p.bytes_in;
  }
  return [xs, down, up];
}

export function UsageChart({ points, granularity, label }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlotType | null>(null);
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    let cancelled = false;
    let ro: ResizeObserver | null = null;
    const el = box.current;
    if (!el) return;
    import('uplot')
      .then(({ default: uPlot }) => {
        if (cancelled) return;
        const data = toSeries(points, granularity);
        // Download and upload side by side around each tick, half a bucket of room at both ends.
        const barsDown = uPlot.paths.bars?.({ size: [0.4, 24], align: -1 });
        const barsUp = uPlot.paths.bars?.({ size: [0.4, 24], align: 1 });
        const half = (granularity === 'hour' ? 3600 : 86400) / 2;
        const fmt = (_u: uPlotType, v: number | null) => (v === null ? '—' : formatBytes(v));
        const width = Math.max(300, el.clientWidth);
        const opts: uPlotType.Options = {
          width,
          height: 220,
          scales: { x: { time: true, range: (_u, min, max) => [min - half, max + half] } },
          legend: { live: true },
          cursor: { drag: { x: false, y: false } },
          series: [
            {
              label: granularity === 'hour' ? 'Hour' : 'Day',
              value: (_u, v) =>
                v === null
                  ? '—'
                  : new Date(v * 1000).toLocaleString(
                      undefined,
                      granularity === 'hour'
                        ? { hour: '2-digit', minute: '2-digit', day: 'numeric', month: 'short' }
                        : { day: 'numeric', month: 'short' },
                    ),
            },
            {
              label: 'Download (to customers)',
              stroke: '#1f5fd1',
              fill: 'rgba(31,95,209,0.35)',
              paths: barsDown,
              value: fmt,
              points: { show: false },
            },
            {
              label: 'Upload (from customers)',
              stroke: '#d97706',
              fill: 'rgba(217,119,6,0.35)',
              paths: barsUp,
              value: fmt,
              points: { show: false },
            },
          ],
          axes: [{}, { values: (_u, vals) => vals.map((v) => formatBytes(v)), size: 70 }],
        };
        plot.current?.destroy();
        plot.current = new uPlot(opts, data, el);
        ro = new ResizeObserver(() => {
          const w = Math.max(300, el.clientWidth);
          if (plot.current && Math.abs(plot.current.width - w) > 2) plot.current.setSize({ width: w, height: 220 });
        });
        ro.observe(el);
      })
      .catch(() => !cancelled && setFailed(true));
    return () => {
      cancelled = true;
      ro?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [points, granularity]);

  const down = points.reduce((s, p) => s + p.bytes_out, 0);
  const up = points.reduce((s, p) => s + p.bytes_in, 0);
  const total = down + up;
  return (
    <figure className="chart-fig" style={{ margin: 0 }}>
      <figcaption className="row" style={{ justifyContent: 'space-between' }}>
        <h3>{label}</h3>
        <span className="muted small">
          ↓ {formatBytes(down)} download · ↑ {formatBytes(up)} upload
        </span>
      </figcaption>
      {failed ? (
        <p className="muted">Chart failed to load.</p>
      ) : (
        <div
          ref={box}
          className="chart"
          role="img"
          aria-label={`${label}: ${formatBytes(down)} downloaded and ${formatBytes(up)} uploaded by customers, ${formatBytes(total)} in total`}
        />
      )}
    </figure>
  );
}
