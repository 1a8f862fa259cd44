'use client';
import Link from 'next/link';
import { useEffect, useState } from 'react';
import { api } from '@/lib/api';
import { formatTime } from '@/lib/format';
import { useFormSend, validate } from '@/lib/forms';
import { usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { Customer, List } from '@/lib/types';
import { upsertById } from '@/lib/types';
import { ConfirmDialog, Dialog, Empty, ErrorBanner, Field, Loading, Notice, PageHeader } from '@/components/ui';

function CustomerForm({
  customer,
  onSaved,
  onCancel,
}: {
  customer?: Customer;
  onSaved: (c: Customer) => void;
  onCancel: () => void;
}) {
  const [name, setName] = useState(customer?.name ?? '');
  const [email, setEmail] = useState(customer?.email ?? '');
  const [notes, setNotes] = useState(customer?.notes ?? '');
  const { errors, setErrors, busy, send } = useFormSend();

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const v = await validate('CustomerCreate', { name, email: email.trim() ? email : null, notes });
    if (!v.ok) return setErrors(v.errors);
    await send(
      () =>
        customer
          ? api<Customer>(`/api/customers/${encodeURIComponent(customer.id)}`, { method: 'PUT', body: v.data })
          : api<Customer>('/api/customers', { method: 'POST', body: v.data }),
      onSaved,
    );
  }

  return (
    <form className="stack" onSubmit={submit} noValidate>
      {errors._ && <Notice tone="error">{errors._}</Notice>}
      <Field label="Name" error={errors.name}>
        {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} maxLength={64} autoFocus />}
      </Field>
      <Field label="Email (optional)" error={errors.email}>
        {(p) => <input {...p} type="email" value={email} onChange={(e) => setEmail(e.target.value)} maxLength={254} />}
      </Field>
      <Field label="Notes" error={errors.notes}>
        {(p) => <textarea {...p} rows={3} value={notes} onChange={(e) => setNotes(e.target.value)} maxLength={500} />}
      </Field>
      <div className="actions">
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Saving…' : customer ? 'Save' : 'Create customer'}
        </button>
      </div>
    </form>
  );
}

export default function CustomersPage() {
  const list = useResource<List<Customer>>('/api/customers?limit=1000');
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Customer | null>(null);
  const [deleting, setDeleting] = useState<Customer | null>(null);
  usePolling(list.reload, 30_000);
  useEffect(() => {
    document.title = 'Customers · PocketProxy';
  }, []);

  function onSaved(c: Customer) {
    setCreating(false);
    setEditing(null);
    list.setData((prev) => upsertById(prev, c));
  }

  const items = list.data?.items ?? [];
  return (
    <>
      <PageHeader title="Customers">
        <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
          New customer
        </button>
      </PageHeader>
      <ErrorBanner error={list.error} onRetry={list.reload} />
      {!list.data && !list.error && <Loading what="Loading customers" />}
      {list.data && items.length === 0 && <Empty>No customers yet.</Empty>}
      {items.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Email</th>
                <th>Connections</th>
                <th>Notes</th>
                <th className="hide-narrow">Created</th>
                <th className="right">Actions</th>
              </tr>
            </thead>
            <tbody>
              {items.map((c) => (
                <tr key={c.id}>
                  <td>{c.name}</td>
                  <td>{c.email ?? <span className="muted">—</span>}</td>
                  <td>
                    <Link href={`/connections/?customer_id=${encodeURIComponent(c.id)}`} prefetch={false}>
                      {c.connections}
                    </Link>
                  </td>
                  <td className="small">{c.notes}</td>
                  <td className="small nowrap hide-narrow">{formatTime(c.created_at)}</td>
                  <td className="actions-cell">
                    <Link
                      className="btn btn-small"
                      href={`/connections/?customer_id=${encodeURIComponent(c.id)}&new=1`}
                      prefetch={false}
                    >
                      Add connection
                    </Link>
                    <button type="button" className="btn btn-small" onClick={() => setEditing(c)}>
                      Edit
                    </button>
                    <button type="button" className="btn btn-small btn-danger" onClick={() => setDeleting(c)}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Dialog open={creating} title="New customer" onClose={() => setCreating(false)}>
        <CustomerForm onSaved={onSaved} onCancel={() => setCreating(false)} />
      </Dialog>
      <Dialog open={!!editing} title="Edit customer" onClose={() => setEditing(null)}>
        {editing && (
          <CustomerForm key={editing.id} customer={editing} onSaved={onSaved} onCancel={() => setEditing(null)} />
        )}
      </Dialog>
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.name ?? 'customer'}?`}
        confirmLabel="Delete customer"
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          if (!deleting) return;
          const id = deleting.id;
          await api(`/api/customers/${encodeURIComponent(id)}`, { method: 'DELETE' });
          list.setData((prev) => prev && { total: prev.total - 1, items: prev.items.filter((x) => x.id !== id) });
        }}
      >
        {deleting && deleting.connections > 0
          ? `${deleting.name} still has ${deleting.connections} connection(s). The server decides whether they are removed or the delete is refused.`
          : 'This cannot be undone.'}
      </ConfirmDialog>
    </>
  );
}
