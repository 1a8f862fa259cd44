// The repository's dependency directions (scripts/import-rules.ts, docs/design.md §10): every source file
// of the tree keeps them, and the rule itself fails on each kind of violation (fabricated files below;
// nothing is written to the tree).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  APPS,
  LAYERS,
  PACKAGES,
  checkFile,
  envReadsOf,
  importsOf,
  type SourceFile,
  type Violation,
} from '../../../scripts/import-rules.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SKIP = new Set(['node_modules', 'dist', 'out', 'build', '.next', 'test-results']);
const SOURCE = /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;

function sourceFiles(): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (SKIP.has(name) || name.startsWith('.')) continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (SOURCE.test(name))
        files.push({ path: relative(ROOT, p).split(sep).join('/'), text: readFileSync(p, 'utf8') });
    }
  };
  walk(ROOT);
  return files;
}

const show = (vs: Violation[]) => vs.map((v) => `${v.path}:${v.line} [${v.rule}] ${v.message}`).join('\n');

test('every source file of the repository keeps the dependency rules', () => {
  const files = sourceFiles();
  // The walk found the tree (not an empty directory): every workspace's code is in it.
  for (const ws of [...PACKAGES.map((p) => `packages/${p}/`), ...APPS.map((a) => `apps/${a}/`)])
    assert.ok(
      files.some((f) => f.path.startsWith(ws)),
      `no source file found under ${ws}`,
    );
  assert.ok(files.reduce((n, f) => n + importsOf(f.text).length, 0) > 1000, 'suspiciously few imports found');
  const violations = files.flatMap(checkFile);
  assert.equal(violations.length, 0, `dependency rules broken:\n${show(violations)}`);
});

test('every workspace has a row in the layering, and every workspace in a row exists', () => {
  const dirs = [
    ...readdirSync(join(ROOT, 'packages'))
      .filter((n) => statSync(join(ROOT, 'packages', n, 'package.json'), { throwIfNoEntry: false }))
      .map((n) => `packages/${n}`),
    ...readdirSync(join(ROOT, 'apps'))
      .filter((n) => statSync(join(ROOT, 'apps', n, 'package.json'), { throwIfNoEntry: false }))
      .map((n) => `apps/${n}`),
  ].sort();
  assert.deepEqual(Object.keys(LAYERS).sort(), dirs);
  for (const targets of Object.values(LAYERS)) for (const t of targets) assert.ok(dirs.includes(t), t);
});

test('imports are found in every form, and not in comments, strings or templates', () => {
  const text = [
    "import a from 'a';",
    "import type { B } from 'b';",
    "import 'c';",
    "export * from 'd';",
    'export {',
    '  e,',
    "} from 'e';",
    "const f = await import('f');",
    "const g = require('g');",
    "import h = require('h');",
    "type I = typeof import('i');",
    "// import x from 'comment';",
    "/* import y from 'block'; */",
    'const s = "import z from \'string\'";',
    "const t = `import w from 'template'`;",
    "const r = /from 'regex'/;",
    'const j = await import(name);',
    "obj.require('not-a-require');",
  ].join('\n');
  assert.deepEqual(
    importsOf(text).map((r) => [r.spec, r.kind, r.line]),
    [
      ['a', 'static', 1],
      ['b', 'static', 2],
      ['c', 'static', 3],
      ['d', 'static', 4],
      ['e', 'static', 7],
      ['f', 'dynamic', 8],
      ['g', 'require', 9],
      ['h', 'require', 10],
      ['i', 'dynamic', 11],
      [null, 'dynamic', 17],
    ],
  );
  assert.deepEqual(
    envReadsOf(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text for the scanner, not a template
      'const a = process.env.X;\nconst b = { ...process.env };\nconst c = `${process.env.Y}`;\n// process.env.Z\nx.process.env;',
    ),
    [1, 2, 3],
  );
});

/** The rules `file` breaks (rule names only). */
const broken = (path: string, text: string) => checkFile({ path, text }).map((v) => v.rule);

test('the rule fails on each kind of violation', () => {
  // packages never import apps
  assert.deepEqual(broken('packages/proxy/src/x.ts', "import { a } from '@pocketproxy/server';"), ['layer']);
  assert.deepEqual(broken('packages/db/test/x.test.ts', "import { a } from '@pocketproxy/agent';"), ['layer']);
  // libraries import only errors; errors and api-schema nothing of the product
  assert.deepEqual(broken('packages/protocol/src/x.ts', "import { a } from '@pocketproxy/tun';"), ['layer']);
  assert.deepEqual(broken('packages/tun/src/x.ts', "import type { A } from '@pocketproxy/protocol';"), ['layer']);
  assert.deepEqual(broken('packages/netfw/src/x.ts', "export { a } from '@pocketproxy/db';"), ['layer']);
  assert.deepEqual(broken('packages/db/src/x.ts', "const m = await import('@pocketproxy/proxy');"), ['layer']);
  assert.deepEqual(broken('packages/proxy/src/x.ts', "const m = require('@pocketproxy/netfw');"), ['layer']);
  assert.deepEqual(broken('packages/errors/src/x.ts', "import { a } from '@pocketproxy/api-schema';"), ['layer']);
  assert.deepEqual(broken('packages/api-schema/src/x.ts', "import { a } from '@pocketproxy/errors';"), ['layer']);
  // no src imports the lab, in packages or apps
  assert.deepEqual(broken('packages/db/src/x.ts', "import { a } from '@pocketproxy/testkit';"), ['testkit-in-src']);
  assert.deepEqual(broken('apps/server/src/x.ts', "import { a } from '@pocketproxy/testkit';"), ['testkit-in-src']);
  assert.deepEqual(broken('apps/dashboard/lib/x.tsx', "import { a } from '@pocketproxy/testkit';"), ['testkit-in-src']);
  // the lab's src imports packages, not apps
  assert.deepEqual(broken('packages/testkit/src/x.ts', "import { a } from '@pocketproxy/server';"), ['layer']);
  // apps never import each other, by name or by path, in src or tests
  assert.deepEqual(broken('apps/agent/src/x.ts', "import { a } from '@pocketproxy/server';"), ['app-to-app']);
  assert.deepEqual(broken('apps/server/test/x.test.ts', "import { a } from '@pocketproxy/agent';"), ['app-to-app']);
  assert.deepEqual(broken('apps/dashboard/app/page.tsx', "import { a } from '../../server/src/x.js';"), [
    'by-path',
    'app-to-app',
  ]);
  // an app imports only the packages of its row
  assert.deepEqual(broken('apps/agent/src/x.ts', "import { a } from '@pocketproxy/db';"), ['layer']);
  assert.deepEqual(broken('apps/dashboard/lib/x.ts', "import { a } from '@pocketproxy/errors';"), ['layer']);
  // another workspace by path instead of by name, and unknown workspaces
  assert.deepEqual(broken('apps/server/src/x.ts', "import { a } from '../../../packages/db/src/index.js';"), [
    'by-path',
  ]);
  assert.deepEqual(broken('apps/server/src/x.ts', "import { a } from '@pocketproxy/nothing';"), ['layer']);
  // product code never imports repository tooling
  assert.deepEqual(broken('packages/db/src/x.ts', "import { a } from '../../../scripts/import-rules.js';"), ['layer']);
  // no process.env in a package's src
  assert.deepEqual(broken('packages/tun/src/x.ts', "const on = process.env.POCKETPROXY_OFFLOAD !== '0';"), [
    'process-env',
  ]);
  assert.deepEqual(broken('packages/db/src/x.ts', 'const env = { ...process.env };'), ['process-env']);
  // a library's computed import hides a dependency
  assert.deepEqual(broken('packages/errors/src/x.ts', 'await import(pathToFileURL(f).href);'), ['computed-import']);
  // the protocol library is sans-IO; the proxy library uses node built-ins only
  assert.deepEqual(broken('packages/protocol/src/x.ts', "import { createSocket } from 'node:dgram';"), ['external']);
  assert.deepEqual(broken('packages/protocol/src/x.ts', 'setTimeout(() => {}, 1);'), ['global']);
  assert.deepEqual(broken('packages/proxy/src/x.ts', "import pino from 'pino';"), ['external']);
});

test('the rule lets through what the layering allows', () => {
  const ok = (path: string, text: string) => assert.deepEqual(checkFile({ path, text }), [], `${path}: ${text}`);
  ok('packages/db/src/x.ts', "import { a } from '@pocketproxy/errors';\nimport pg from 'pg';");
  ok('packages/protocol/src/x.ts', "import { a } from '@pocketproxy/errors';\nimport { b } from 'node:crypto';");
  ok('packages/proxy/src/x.ts', "import { a } from './y.js';\nimport { b } from 'node:net';");
  ok('packages/testkit/src/x.ts', "import { a } from '@pocketproxy/protocol';\nconst p = process.env.PATH;");
  ok('packages/testkit/test/x.test.ts', "import { a } from '@pocketproxy/server';");
  ok('packages/testkit/bench/x.bench.ts', "import { a } from '@pocketproxy/agent';");
  ok(
    'packages/proxy/test/x.test.ts',
    "import { a } from '@pocketproxy/testkit';\nimport { b } from '@pocketproxy/tun';",
  );
  ok('packages/errors/test/x.test.ts', "import { a } from '../../../scripts/gen-errors-doc.ts';");
  ok('apps/server/src/x.ts', "import { a } from '@pocketproxy/db';\nconst p = process.env.PORT;");
  ok('apps/server/test/x.test.ts', "import { a } from '@pocketproxy/testkit';");
  ok('apps/agent/test/x.test.ts', "import { a } from '@pocketproxy/api-schema';");
  ok('apps/dashboard/lib/x.ts', "import { a } from '@pocketproxy/api-schema';");
  ok('apps/server/bin/x.js', 'await import(dist);');
  ok('scripts/x.ts', "import { a } from '../apps/server/src/errors.ts';");
});
