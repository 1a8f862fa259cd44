import { loadConfig } from './src/config.js';
import { loadSecrets } from './src/secrets.js';
import { openDb, migrate } from '@pocketproxy/db';
import { ensurePortPool } from './src/services/ports.js';
import { hashPassword } from './src/security/crypto.js';
for (let i = 0; i < 3; i++) {
const config = loadConfig({ POCKETPROXY_DATA_DIR: '/tmp/ppt-' + Date.now() });
const t = Date.now();
const p = (s: string) => console.log(s, Date.now() - t);
loadSecrets(config);
const db = await openDb({ dataDir: config.dataDir }); p('open');
await migrate(db); p('migrate');
await ensurePortPool(db, config.connectionPorts); p('pool');
await hashPassword('x'); p('hash');
await db.query('select 1'); p('q');
await db.close(); p('close');
}
