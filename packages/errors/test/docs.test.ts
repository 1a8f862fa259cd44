import { test } from 'node:test';
import assert from 'node:assert/strict';
import { currentDoc, renderErrorsDoc } from '../../../scripts/gen-errors-doc.js';

test('docs/errors.md lists every registered code (regenerate: node --import tsx scripts/gen-errors-doc.ts --write)', async () => {
  const want = await renderErrorsDoc();
  assert.equal(currentDoc(), want);
});
