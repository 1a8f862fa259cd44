// Answers to customers go back into the tunnel: the policy rule and table the agent installs
// (tunnel/routing.ts), through a recording runner. The lab tests run them for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installReplyRoute, removeReplyRoute, replyRouteCommands } from '../src/tunnel/routing.js';

/** Records commands; `ip rule del` fails once no rule is left (as the real one does). */
function runner(leftover: number) {
  const commands: string[] = [];
  let rules = leftover;
  return {
    commands,
    run(cmd: string, args: readonly string[]) {
      const line = [cmd, ...args].join(' ');
      commands.push(line);
      if (line.startsWith('ip rule del')) {
        if (rules === 0) throw new Error('RTNETLINK answers: No such file or directory');
        rules--;
      }
      if (line.startsWith('ip rule add')) rules++;
    },
  };
}

test('reply route: table with one default route into the TUN, rule by source address; leftovers of a dead run removed first', async () => {
  assert.deepEqual(replyRouteCommands({ tun: 'ppd0', address: '192.168.255.7', table: 5210 }), [
    ['route', 'replace', 'default', 'dev', 'ppd0', 'table', '5210'],
    ['rule', 'add', 'from', '192.168.255.7/32', 'lookup', '5210', 'pref', '5210'],
  ]);
  const r = runner(2);
  await installReplyRoute({ tun: 'ppd0', address: '192.168.255.7', table: 5210 }, r);
  assert.deepEqual(r.commands, [
    'ip rule del pref 5210',
    'ip rule del pref 5210',
    'ip rule del pref 5210',
    'ip route replace default dev ppd0 table 5210',
    'ip rule add from 192.168.255.7/32 lookup 5210 pref 5210',
  ]);
  const stop = runner(1);
  assert.equal(await removeReplyRoute(5210, stop), 1);
  assert.equal(await removeReplyRoute(5210, runner(0)), 0);
  for (const table of [0, 253, 254, 255, 1.5, 2 ** 31]) {
    await assert.rejects(
      installReplyRoute({ tun: 'ppd0', address: '192.168.255.7', table }, runner(0)),
      RangeError,
      String(table),
    );
  }
});
