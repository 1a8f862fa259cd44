// Proxy lines an operator hands to customers, in the formats proxy tools and shops use. `host` is the
// relay's public address (the connection's `host`), the port its own.
import type { Connection } from './types';

export const EXPORT_FORMATS = {
  url: 'http://user:pass@host:port (socks5:// for SOCKS5)',
  'host:port:user:pass': 'host:port:user:pass',
  'user:pass@host:port': 'user:pass@host:port',
  csv: 'CSV (id, protocol, host, port, username, password, url, device, customer, enabled)',
} as const;
export type ExportFormat = keyof typeof EXPORT_FORMATS;

export type Named = {
  deviceName?: (id: string) => string | undefined;
  customerName?: (id: string) => string | undefined;
};

/** Userinfo in a URL: percent-encoded so ':' '@' '/' in a password cannot break the line. */
const enc = encodeURIComponent;

/** The connection's URL as curl and browsers take it: scheme by protocol, credentials percent-encoded. */
export function proxyUrl(c: Connection): string {
  const scheme = c.protocol === 'socks5' ? 'socks5' : 'http';
  return `${scheme}://${enc(c.username)}:${enc(c.password)}@${c.host}:${c.port}`;
}

function csvField(v: string | number | boolean): string {
  const s = String(v);
  // Quote what needs it; a leading = + - @ is prefixed so a spreadsheet does not run it as a formula.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) || safe !== s ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function exportLine(c: Connection, format: Exclude<ExportFormat, 'csv'>): string {
  switch (format) {
    case 'url':
      return proxyUrl(c);
    case 'host:port:user:pass':
      // Usernames are [A-Za-z0-9._-]; passwords printable ASCII without spaces (may hold ':' — tools
      // that split this format take the rest of the line as the password).
      return `${c.host}:${c.port}:${c.username}:${c.password}`;
    case 'user:pass@host:port':
      return `${enc(c.username)}:${enc(c.password)}@${c.host}:${c.port}`;
  }
}

export function exportText(items: Connection[], format: ExportFormat, names: Named = {}): string {
  if (format === 'csv') {
    const head = ['id', 'protocol', 'host', 'port', 'username', 'password', 'url', 'device', 'customer', 'enabled'];
    const rows = items.map((c) =>
      [
        c.id,
        c.protocol,
        c.host,
        c.port,
        c.username,
        c.password,
        proxyUrl(c),
        names.deviceName?.(c.device_id) ?? c.device_id,
        c.customer_id ? (names.customerName?.(c.customer_id) ?? c.customer_id) : '',
        c.enabled,
      ]
        .map(csvField)
        .join(','),
    );
    return `${[head.join(','), ...rows].join('\r\n')}\r\n`;
  }
  return items.map((c) => `${exportLine(c, format)}\n`).join('');
}

export function exportFilename(format: ExportFormat, count: number): string {
  const day = new Date().toISOString().slice(0, 10);
  return `pocketproxy-${count}-proxies-${day}.${format === 'csv' ? 'csv' : 'txt'}`;
}

export function download(text: string, filename: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
