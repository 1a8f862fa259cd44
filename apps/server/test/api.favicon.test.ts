// The dashboard's icon answers /favicon.ico, which every browser asks for whatever the page links (a 404 there
// is an error in the browser's console; the dashboard's browser tests fail on console errors).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApi } from '../src/api/app.js';
import { perBackend } from './api.assert.js';

perBackend('dashboard files', ({ ts, test }) => {
  test('/favicon.ico is the dashboard icon; without one it stays a 404', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pp-dash-'));
    try {
      writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
      const bare = await createApi(ts().sys.ctx, { dashboardDir: dir });
      assert.equal((await bare.inject({ method: 'GET', url: '/favicon.ico' })).statusCode, 404);
      await bare.close();
      const svg = '<svg xmlns="http://www.w3.org/2000/svg"/>';
      writeFileSync(join(dir, 'icon.svg'), svg);
      const app = await createApi(ts().sys.ctx, { dashboardDir: dir });
      const r = await app.inject({ method: 'GET', url: '/favicon.ico' });
      assert.equal(r.statusCode, 200);
      assert.match(String(r.headers['content-type']), /^image\/svg\+xml/);
      assert.equal(r.body, svg);
      await app.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
