// Builds what the platform runs: the native TUN addon (node-gyp, from source), the two command bundles
// (esbuild: our TypeScript inlined, npm packages left as imports) and, unless --no-dashboard, the
// dashboard's static export (--no-addon / --no-dashboard skip those steps). Each step is skipped when its output is newer than its inputs.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, chmodSync, writeFileSync } from 'node:fs';
import { gzipSync, brotliCompressSync, constants as zc } from 'node:zlib';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = new Set(process.argv.slice(2));
const force = args.has('--force');

function newest(dir, exts) {
  let t = 0;
  const walk = (d) => {
    for (const n of readdirSync(d)) {
      if (['node_modules', 'dist', 'out', '.next', 'build', 'test', 'test-results', 'bench'].includes(n)) continue;
      const p = join(d, n);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else if (exts.some((e) => n.endsWith(e))) t = Math.max(t, s.mtimeMs);
    }
  };
  walk(dir);
  return t;
}
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const step = (name) => process.stdout.write(`build: ${name}\n`);

// 1. Native addon.
const addon = join(root, 'packages/tun/build/Release/pp_tun.node');
if (
  !args.has('--no-addon') &&
  (force || mtime(addon) < newest(join(root, 'packages/tun'), ['.cc', '.h', '.gyp', '.cpp']))
) {
  step('native TUN addon (node-gyp)');
  // Headers of the running Node: npm passes its nodedir setting on when this runs under npm; run
  // directly, Debian's nodejs headers in /usr serve, so node-gyp never tries to download them.
  const nodedir = process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/node-gyp/bin/node-gyp.js'), 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])],
    { cwd: join(root, 'packages/tun'), stdio: 'inherit' },
  );
}

// 2. Command bundles. Files keep their own import.meta.url, so package-relative lookups (the addon,
// migrations, lab service scripts) resolve exactly as from source.
const keepMetaUrl = {
  name: 'keep-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\/(packages|apps)\/.*\.ts$/ }, (a) => ({
      contents: readFileSync(a.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(a.path).href)),
      loader: 'ts',
    }));
    // npm packages stay imports; our workspaces are inlined.
    b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@pocketproxy/') ? undefined : { external: true }));
  },
};
const srcTime = Math.max(
  newest(join(root, 'packages'), ['.ts', '.sql']),
  newest(join(root, 'apps/server/src'), ['.ts']),
  newest(join(root, 'apps/agent/src'), ['.ts']),
);
for (const [app, out] of [
  ['apps/server', 'apps/server/dist/main.js'],
  ['apps/agent', 'apps/agent/dist/main.js'],
]) {
  if (!existsSync(join(root, app, 'src/main.ts'))) continue;
  if (!force && mtime(join(root, out)) >= srcTime) continue;
  step(`${app} bundle`);
  await build({
    entryPoints: [join(root, app, 'src/main.ts')],
    outfile: join(root, out),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    conditions: ['source'],
    plugins: [keepMetaUrl],
    logLevel: 'warning',
  });
  chmodSync(join(root, out), 0o755);
}

// 3. Dashboard static export.
const dash = join(root, 'apps/dashboard');
if (!args.has('--no-dashboard') && existsSync(join(dash, 'package.json'))) {
  const out = join(dash, 'out/index.html');
  const inputs = Math.max(
    newest(dash, ['.ts', '.tsx', '.css', '.mjs', '.json']),
    newest(join(root, 'packages/api-schema'), ['.ts']),
  );
  if (force || mtime(out) < inputs) {
    step('dashboard (next build)');
    execFileSync('npm', ['run', 'build', '-w', '@pocketproxy/dashboard'], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
    });
  }
}
if (existsSync(join(dash, 'out'))) {
  // Pre-compressed copies: the API serves .br / .gz when the browser accepts them (no compression work per request).
  const walk = (d) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (
        /\.(js|css|html|svg|json|txt)$/.test(n) &&
        statSync(p).size > 512 &&
        mtime(`${p}.br`) < statSync(p).mtimeMs
      ) {
        const buf = readFileSync(p);
        writeFileSync(`${p}.gz`, gzipSync(buf, { level: 9 }));
        writeFileSync(`${p}.br`, brotliCompressSync(buf, { params: { [zc.BROTLI_PARAM_QUALITY]: 11 } }));
      }
    }
  };
  walk(join(dash, 'out'));
}
step('done');
