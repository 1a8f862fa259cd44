// The data-plane isolation suite (isolation.lab.test.ts) once more with the relay's SOCKS5 front off
// (POCKETPROXY_SOCKS5_FRONT=0): SOCKS5 ports DNAT'ed to the device as HTTP ports are, the path an
// operator may choose (its flows survive a restart of the tunnel process), held to the same claims.
process.env.POCKETPROXY_SOCKS5_FRONT = '0';
await import('./isolation.lab.test.js');
