import type { Ctx } from '../context.js';
import type { Queryable } from '@pocketproxy/db';
import { apiError } from '../errors.js';
import { newId } from '../security/crypto.js';
import { audit } from './audit.js';
import { toCustomer, type Row } from './rows.js';

const SELECT = `SELECT c.*, (SELECT count(*)::int FROM connections x WHERE x.customer_id = c.id) AS connections FROM customers c`;

export async function listCustomers(q: Queryable, f: { limit: number; offset: number }) {
  const total = (await q.query<{ n: number }>('SELECT count(*)::int AS n FROM customers')).rows[0]!.n;
  const rows = await q.query<Row>(`${SELECT} ORDER BY c.name LIMIT $1 OFFSET $2`, [f.limit, f.offset]);
  return { items: rows.rows.map(toCustomer), total };
}

export async function getCustomer(q: Queryable, id: string) {
  const r = (await q.query<Row>(`${SELECT} WHERE c.id = $1`, [id])).rows[0];
  if (!r) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'customer' });
  return toCustomer(r);
}

type Input = { name: string; email?: string | null | undefined; notes: string };

async function assertFreeName(q: Queryable, name: string, exceptId: string | null) {
  const r = await q.query('SELECT 1 FROM customers WHERE lower(name) = lower($1) AND id IS DISTINCT FROM $2', [
    name,
    exceptId,
  ]);
  if (r.rows.length) throw apiError('PP_ERR_API_CONFLICT', { detail: `a customer named "${name}" already exists` });
}

export async function createCustomer(ctx: Ctx, input: Input, actor: string) {
  return ctx.db.tx(async (q) => {
    await assertFreeName(q, input.name, null);
    const id = newId('cus');
    const now = ctx.clock.now();
    await q.query(
      'INSERT INTO customers (id, name, email, notes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)',
      [id, input.name, input.email ?? null, input.notes, now],
    );
    await audit(q, actor, 'customer.create', id, { name: input.name });
    return getCustomer(q, id);
  });
}

export async function replaceCustomer(ctx: Ctx, id: string, input: Input, actor: string) {
  return ctx.db.tx(async (q) => {
    await getCustomer(q, id);
    await assertFreeName(q, input.name, id);
    await q.query('UPDATE customers SET name = $2, email = $3, notes = $4, updated_at = $5 WHERE id = $1', [
      id,
      input.name,
      input.email ?? null,
      input.notes,
      ctx.clock.now(),
    ]);
    await audit(q, actor, 'customer.update', id, { name: input.name });
    return getCustomer(q, id);
  });
}

export async function deleteCustomer(ctx: Ctx, id: string, actor: string) {
  await ctx.db.tx(async (q) => {
    const r = await q.query('DELETE FROM customers WHERE id = $1', [id]);
    if (!r.rowCount) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'customer' });
    await audit(q, actor, 'customer.delete', id);
  });
}
