// Issue 13's goals as a bench run reads them: each figure against its line, met or not, and by how much.
// The phases add their figures (addGoal); the bench prints the table at the end (goalTable).

/** A goal on a ratio (ours / a reference), or on ours alone (time to first byte). */
export interface Goal {
  on: 'ratio' | 'ours';
  op: '>=' | '<=';
  value: number;
  /** The unit of `value` when `on` is 'ours'. */
  unit?: string;
  /** A ratio written as a percentage ("≥ 80 %") rather than a factor ("≥ 0.8×"). */
  percent?: boolean;
}

export interface Verdict {
  met: boolean;
  /** Headroom past the line as a fraction of it (0.25: 25 % better than the goal); negative when short. */
  margin: number;
  /** The goal as written ("≥ 1.3×", "≤ 1 ms", "≥ 80 %"). */
  line: string;
  /** The figure as written in the same form. */
  shown: string;
  /** The margin as printed ("+25 %", "-8 %"; "-" for a figure that could not be measured). */
  marginText: string;
}

const num = (x: number, d: number) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** `x` in the goal's form, with `d` digits, or (no `d`) as stated: a goal's own line is not rounded (0.5 ms stays 0.5 ms). */
function written(x: number, g: Goal, d?: number): string {
  const n = (v: number, digits: number) => (d === undefined ? String(Number(v.toFixed(6))) : num(v, digits));
  if (g.on === 'ours') return `${n(x, d ?? 0)} ${g.unit ?? ''}`.trimEnd();
  return g.percent ? `${n(100 * x, 0)} %` : `${n(x, 2)}×`;
}

/** `figure` (a ratio, or ours' own value for 'ours') against `g`. A failed measure (NaN, 0) is not met. */
export function judgeGoal(figure: number, g: Goal, digits = 2): Verdict {
  const valid = Number.isFinite(figure) && figure > 0;
  const margin = valid ? (g.op === '>=' ? figure / g.value - 1 : g.value / figure - 1) : Number.NaN;
  const met = valid && margin >= 0;
  const line = `${g.op === '>=' ? '≥' : '≤'} ${written(g.value, g)}`;
  const pct = Math.round(100 * margin);
  const marginText = valid ? `${pct >= 0 ? '+' : ''}${pct} %` : '-';
  return { met, margin, line, shown: valid ? written(figure, g, digits) : 'failed', marginText };
}

const rows: { what: string; v: Verdict }[] = [];

/** Records `figure` against `g` for the run's table; returns the verdict (for the phase's own line). */
export function addGoal(what: string, figure: number, g: Goal, digits = 2): Verdict {
  const v = judgeGoal(figure, g, digits);
  rows.push({ what, v });
  return v;
}

/** The run's goals as a markdown table with a count line, or '' when no phase added any. */
export function goalTable(): string {
  if (rows.length === 0) return '';
  const met = rows.filter((r) => r.v.met).length;
  const lines = [
    `issue 13's goals in this run: ${met} of ${rows.length} met (margin: how far past the line; machines of this ` +
      'kind vary by 10-35 % from hour to hour)',
    '',
    '| measure | goal | this run | met | margin |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) => `| ${r.what} | ${r.v.line} | ${r.v.shown} | ${r.v.met ? 'yes' : '**no**'} | ${r.v.marginText} |`,
    ),
  ];
  return lines.join('\n');
}
