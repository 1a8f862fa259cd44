'use client';
// For the devices table body only (components/DeviceTable.tsx, loaded lazily): row virtualisation and the
// formats of its live columns.
import { useCallback, useEffect, useRef, useState } from 'react';
import { flushSync } from 'react-dom';

export function formatBps(bps: number | null | undefined): string {
  if (bps == null) return '—';
  if (bps < 1000) return `${Math.round(bps)} bit/s`;
  const units = ['kbit/s', 'Mbit/s', 'Gbit/s'];
  let v = bps / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export const percent = (r: number | null | undefined) =>
  r == null ? '—' : `${r >= 0.999 || r === 0 ? Math.round(r * 100) : (Math.floor(r * 1000) / 10).toFixed(1)}%`;

/**
 * Row virtualisation for a table in the page's normal flow (the window scrolls): renders only the rows
 * in view plus `overscan` each side, with spacer rows keeping the scroll height. Row height is measured
 * from a rendered row (tables stacked as cards on narrow screens have taller rows). Below `threshold`
 * rows every row is rendered.
 *
 * Layout is read only in the animation frame, before this frame's changes (the layout is then clean and
 * the read costs nothing), never after React has changed rows: a measurement in a layout effect forced a
 * second layout of the table on every scroll step (half of the scroll's main-thread time in a profile).
 * The new range is rendered synchronously in that frame (flushSync), so the rows that come into view are
 * drawn with the scroll step that brought them, with one layout.
 */
export function useVirtualRows(count: number, threshold = 150, overscan = 4) {
  const bodyRef = useRef<HTMLTableSectionElement>(null);
  const [rowH, setRowH] = useState(41);
  const [range, setRange] = useState<[number, number]>([0, Math.min(count, 60)]);
  const virtual = count > threshold;
  const h = useRef(rowH);

  const compute = useCallback(
    (sync: boolean) => {
      const body = bodyRef.current;
      if (!body || !virtual) return;
      const row = body.querySelector<HTMLTableRowElement>('tr[data-row]');
      const measured = row?.getBoundingClientRect().height;
      // Rows differ by fractions of a pixel; the spacers use h.current, so the range must too (a 0.5 px
      // difference is 2,700 px over 5,500 rows).
      const rh = measured && Math.abs(measured - h.current) > 0.5 ? measured : h.current;
      const top = body.getBoundingClientRect().top; // viewport y of the first row (spacer included)
      const first = Math.max(0, Math.floor(-top / rh) - overscan);
      const visible = Math.ceil(window.innerHeight / rh) + 2 * overscan;
      const last = Math.min(count, first + visible);
      const update = () => {
        if (rh !== h.current) {
          h.current = rh;
          setRowH(rh);
        }
        setRange((r) => (r[0] === first && r[1] === last ? r : [first, last]));
      };
      if (sync) flushSync(update);
      else update();
    },
    [count, overscan, virtual],
  );

  useEffect(() => {
    if (!virtual) return;
    let frame = 0;
    const onScroll = () => {
      if (!frame)
        frame = requestAnimationFrame(() => {
          frame = 0;
          compute(true);
        });
    };
    window.addEventListener('scroll', onScroll, { passive: true });
    window.addEventListener('resize', onScroll);
    compute(false);
    return () => {
      cancelAnimationFrame(frame);
      window.removeEventListener('scroll', onScroll);
      window.removeEventListener('resize', onScroll);
    };
  }, [compute, virtual]);

  const [start, end] = virtual ? [Math.min(range[0], count), Math.min(range[1], count)] : [0, count];
  return {
    bodyRef,
    start,
    end,
    virtual,
    padTop: virtual ? start * rowH : 0,
    padBottom: virtual ? (count - end) * rowH : 0,
  };
}
