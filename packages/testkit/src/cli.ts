// Shell entry point of the lab, stateless (everything is read from the namespaces themselves):
//   node --import tsx packages/testkit/src/cli.ts rotate [--outage-ms=N] <prefix> <n> [address]
//                                                                              → prints the new carrier IP
//   node --import tsx packages/testkit/src/cli.ts address <prefix> <n>            → prints the current carrier IP
//   node --import tsx packages/testkit/src/cli.ts cleanup <prefix>|--stale        → removes a lab / dead labs' leftovers
//   node --import tsx packages/testkit/src/cli.ts list                            → lab prefixes present
// `rotate` is the agent's --rotate-command in the lab; it works from inside a device namespace,
// since it only runs `ip -n` / `ip netns exec` on the lab's named namespaces.
import { parseArgs } from 'node:util';
import { isPPError } from '@pocketproxy/errors';
import { currentCarrierAddress, rotateCarrier } from './carrier.js';
import { cleanupStale, listNamespaces } from './cleanup.js';
import { labError } from './errors.js';
import { PREFIX_RE, assertPrefix } from './plan.js';

const USAGE =
  'usage: cli.ts rotate [--outage-ms=N] <prefix> <n> [address] | address <prefix> <n> | cleanup <prefix>|--stale | list';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'outage-ms': { type: 'string' }, stale: { type: 'boolean' } },
  });
  const [cmd, a, b, c] = positionals;
  switch (cmd) {
    case 'rotate': {
      const { prefix, n } = deviceArgs(a, b);
      const outageMs = Number(values['outage-ms'] ?? '0');
      if (!Number.isFinite(outageMs) || outageMs < 0) throw labError('PP_ERR_LAB_BAD_ARGS', { reason: USAGE });
      const r = await rotateCarrier(prefix, n, c, { outageMs });
      console.error(`lab ${prefix}: carrier ${n} ${r.oldIp} -> ${r.newIp}`);
      console.log(r.newIp);
      return 0;
    }
    case 'address': {
      const { prefix, n } = deviceArgs(a, b);
      console.log(await currentCarrierAddress(prefix, n));
      return 0;
    }
    case 'cleanup': {
      if (a === undefined && !values.stale) throw labError('PP_ERR_LAB_BAD_ARGS', { reason: USAGE });
      if (a !== undefined) assertPrefix(a);
      const removed = a === undefined ? cleanupStale() : cleanupStale(a);
      console.error(`removed lab(s): ${removed.join(' ') || '(none)'}`);
      return 0;
    }
    case 'list': {
      const prefixes = new Set(
        listNamespaces()
          .map((ns) => ns.split('-')[0] ?? '')
          .filter((p) => PREFIX_RE.test(p)),
      );
      for (const p of prefixes) console.log(p);
      return 0;
    }
    default:
      console.error(USAGE);
      return 2;
  }
}

function deviceArgs(prefix: string | undefined, n: string | undefined) {
  if (prefix === undefined || n === undefined || !/^\d+$/.test(n))
    throw labError('PP_ERR_LAB_BAD_ARGS', { reason: USAGE });
  assertPrefix(prefix);
  return { prefix, n: Number(n) };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(isPPError(e) ? `${e.code}: ${e.message}` : e);
    process.exit(1);
  },
);
