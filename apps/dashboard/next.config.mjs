// Next.js config for the operator dashboard: a static export (no server features) that
// `pocketproxy api` serves at `/`. Dynamic pages use query strings (/devices/view/?id=dev_…).
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// @pocketproxy/api-schema is published as TypeScript source with NodeNext-style `./x.js` imports.
// webpack maps `.js` → `.ts` with extensionAlias; Turbopack has no such option, so each of the
// package's own modules gets an alias (`./common.js` → …/src/common.ts). The list is read from
// disk so a new schema file needs no change here. index.ts is left out: the package entry resolves
// to it directly, and Next's own code imports many `./index.js` files.
const schemaSrc = join(here, '../../packages/api-schema/src');
const schemaAliases = Object.fromEntries(
  readdirSync(schemaSrc)
    .filter((f) => f.endsWith('.ts') && f !== 'index.ts' && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .map((f) => [`./${f.replace(/\.ts$/, '.js')}`, `./${relative(here, join(schemaSrc, f))}`]),
);

// `next dev` works against a running API: REST calls are proxied to POCKETPROXY_API_URL (default
// http://127.0.0.1:8080), and lib/live.tsx opens the WebSocket on NEXT_PUBLIC_POCKETPROXY_WS_ORIGIN when set
// (e.g. ws://127.0.0.1:8080), since Next's dev proxy does not carry WebSocket upgrades.
const dev = process.env.NODE_ENV === 'development';
const apiUrl = (process.env.POCKETPROXY_API_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');

/** @type {import('next').NextConfig} */
const nextConfig = {
  ...(dev
    ? { rewrites: async () => [{ source: '/api/:path*', destination: `${apiUrl}/api/:path*` }] }
    : { output: 'export' }),
  trailingSlash: true,
  reactStrictMode: true,
  poweredByHeader: false,
  images: { unoptimized: true },
  transpilePackages: ['@pocketproxy/api-schema'],
  turbopack: { resolveAlias: schemaAliases },
  webpack(config) {
    config.resolve.extensionAlias = { ...(config.resolve.extensionAlias ?? {}), '.js': ['.ts', '.tsx', '.js'] };
    return config;
  },
};

export default nextConfig;
