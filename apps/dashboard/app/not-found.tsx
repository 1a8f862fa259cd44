'use client';
// The dashboard's 404 page. The API serves it (status 404) for any non-API path that is not a page.
import Link from 'next/link';
import { useEffect, useState } from 'react';
import { Empty, PageHeader } from '@/components/ui';

export default function NotFound() {
  const [path, setPath] = useState('');
  useEffect(() => {
    setPath(window.location.pathname);
    document.title = 'Page not found · PocketProxy';
  }, []);
  return (
    <>
      <PageHeader title="Page not found" />
      <Empty>
        <p style={{ margin: '0 0 12px' }}>
          There is no page at <span className="mono">{path || 'this address'}</span>.
        </p>
        <p style={{ margin: 0 }}>
          <Link href="/">Overview</Link> · <Link href="/devices/">Devices</Link> ·{' '}
          <Link href="/connections/">Connections</Link>
        </p>
      </Empty>
    </>
  );
}
