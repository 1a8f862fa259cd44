// The peers phase's verdicts on issue 13's goals (bench/goals.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addGoal, goalTable, judgeGoal } from '../bench/goals.js';

test('a ratio at or past a ≥ goal is met, with its headroom', () => {
  const g = { on: 'ratio', op: '>=', value: 1.3 } as const;
  assert.deepEqual(judgeGoal(1.3, g), { met: true, margin: 0, line: '≥ 1.3×', shown: '1.30×', marginText: '+0 %' });
  const past = judgeGoal(1.69, g);
  assert.equal(past.met, true);
  assert.equal(past.marginText, '+30 %');
  const short = judgeGoal(1.2, g);
  assert.equal(short.met, false);
  assert.equal(short.marginText, '-8 %');
});

test('a ≤ goal counts headroom the other way, and ours alone carries its unit', () => {
  const cpu = judgeGoal(0.5, { on: 'ratio', op: '<=', value: 0.7 });
  assert.equal(cpu.met, true);
  assert.equal(cpu.marginText, '+40 %');
  assert.equal(cpu.line, '≤ 0.7×');
  const ttfb = judgeGoal(1.25, { on: 'ours', op: '<=', value: 1, unit: 'ms' });
  assert.equal(ttfb.met, false);
  assert.equal(ttfb.line, '≤ 1 ms');
  assert.equal(ttfb.marginText, '-20 %');
  // The goal as stated, not rounded like the figure.
  assert.equal(judgeGoal(0.4, { on: 'ours', op: '<=', value: 0.5, unit: 'ms' }).line, '≤ 0.5 ms');
});

test('a measure that failed (NaN, zero, infinite) is never met', () => {
  for (const x of [Number.NaN, 0, -1, Number.POSITIVE_INFINITY]) {
    const v = judgeGoal(x, { on: 'ratio', op: '>=', value: 3 });
    assert.equal(v.met, false, String(x));
    assert.equal(v.marginText, '-');
  }
  assert.equal(judgeGoal(Number.NaN, { on: 'ratio', op: '<=', value: 0.7 }).met, false);
});

test('a ratio written as a percentage, and the run table counts what was met', () => {
  const v = judgeGoal(0.75, { on: 'ratio', op: '>=', value: 0.8, percent: true });
  assert.equal(v.line, '≥ 80 %');
  assert.equal(v.shown, '75 %');
  assert.equal(v.met, false);
  assert.equal(v.marginText, '-6 %');
  assert.equal(goalTable(), '');
  addGoal('one stream', 3.9, { on: 'ratio', op: '>=', value: 3 });
  addGoal('OpenVPN one stream / bare', 0.7, { on: 'ratio', op: '>=', value: 0.8, percent: true });
  const t = goalTable();
  assert.match(t, /1 of 2 met/);
  assert.match(t, /\| one stream \| ≥ 3× \| 3\.90× \| yes \| \+30 % \|/);
  assert.match(t, /\| OpenVPN one stream \/ bare \| ≥ 80 % \| 70 % \| \*\*no\*\* \| -13 % \|/);
});
