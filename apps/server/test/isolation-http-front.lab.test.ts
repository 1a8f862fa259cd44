// The data-plane isolation suite (isolation.lab.test.ts) once more with HTTP ports through the relay's
// front too (POCKETPROXY_HTTP_FRONT=true, off by default): every HTTP customer's TCP then ends on the relay
// and reaches the device from the customer's own address with its first bytes in the SYN, held to the same
// claims (credentials per port, allow-lists, slow heads, limits, revocation within 1 s).
process.env.POCKETPROXY_HTTP_FRONT = 'true';
await import('./isolation.lab.test.js');
