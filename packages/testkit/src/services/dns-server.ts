// Lab service (runs inside `inet`): a DNS server for `*.test` names from a table.
// argv: --host IP --port N --records JSON. Prints "ready dns" when listening.
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { answerQuery } from './dns-wire.js';
import { exitWithParent } from './lifecycle.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '0.0.0.0' },
    port: { type: 'string', default: '53' },
    records: { type: 'string', default: '{}' },
  },
});
const records = JSON.parse(values.records!) as Record<string, string>;
const lower: Record<string, string> = {};
for (const [k, v] of Object.entries(records)) lower[k.toLowerCase().replace(/\.$/, '')] = v;

const sock = createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  const reply = answerQuery(msg, lower);
  if (reply.length > 0) sock.send(reply, rinfo.port, rinfo.address);
});
sock.bind(Number(values.port), values.host, () => console.log(`ready dns ${values.host}:${values.port}`));
exitWithParent(() => sock.close());
