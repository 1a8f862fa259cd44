// Admin routes for what an operator sells: connections, customers; plus relays and the overview.
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../../context.js';
import type { Router } from '../route.js';
import {
  createConnection,
  deleteConnection,
  getConnection,
  listConnections,
  updateConnection,
} from '../../services/connections.js';
import {
  createCustomer,
  deleteCustomer,
  getCustomer,
  listCustomers,
  replaceCustomer,
} from '../../services/customers.js';
import { createRelay, getRelayView, listRelays, updateRelay } from '../../services/relays.js';
import { overview } from '../../services/overview.js';
import { apiError } from '../../errors.js';

const list = <T extends z.ZodType>(t: T) => z.object({ items: z.array(t), total: z.number().int() });

/** Where a connection's .ovpn profile is (GET /api/connections/:id/ovpn). */
export const ovpnPath = (connectionId: string) => `/api/connections/${connectionId}/ovpn`;

/** `ovpn` makes a connection's OpenVPN profile; undefined when OpenVPN is off. */
export function salesRoutes(r: Router, ctx: Ctx, ovpn: ((connectionId: string) => Promise<string | null>) | undefined) {
  const ConParams = z.object({ id: S.ConnectionId });
  // Where the connection's .ovpn profile is, or null when OpenVPN is off (the dashboard offers it only then).
  const withOvpn = <C extends { id: string }>(c: C) => ({
    ...c,
    ovpn_url: ovpn ? ovpnPath(c.id) : null,
  });
  let tag = 'connections';
  r.add({
    method: 'GET',
    url: '/api/connections',
    auth: 'admin',
    tag,
    summary: 'List connections',
    query: S.Paging.extend({ device_id: S.DeviceId.optional(), customer_id: S.CustomerId.optional() }),
    response: list(S.Connection),
    handler: async ({ query }) => {
      const l = await listConnections(ctx, ctx.db, query);
      return { ...l, items: l.items.map(withOvpn) };
    },
  });
  r.add({
    method: 'POST',
    url: '/api/connections',
    auth: 'admin',
    tag,
    status: 201,
    summary: 'Create a connection; generates credentials when not given and allocates its port',
    body: S.ConnectionCreate,
    response: S.Connection,
    handler: async ({ body, principal }) => withOvpn(await createConnection(ctx, body, principal.id)),
  });
  r.add({
    method: 'GET',
    url: '/api/connections/:id',
    auth: 'admin',
    tag,
    summary: 'Get a connection',
    params: ConParams,
    response: S.Connection,
    handler: async ({ params }) => withOvpn(await getConnection(ctx, ctx.db, params.id)),
  });
  r.add({
    method: 'PATCH',
    url: '/api/connections/:id',
    auth: 'admin',
    tag,
    summary: 'Change credentials, limits, expiry, allow-list or enabled',
    params: ConParams,
    body: S.ConnectionUpdate,
    response: S.Connection,
    handler: async ({ params, body, principal }) =>
      withOvpn(await updateConnection(ctx, params.id, body, principal.id)),
  });
  r.add({
    method: 'DELETE',
    url: '/api/connections/:id',
    auth: 'admin',
    tag,
    status: 204,
    summary: 'Delete a connection and free its port',
    params: ConParams,
    handler: ({ params, principal }) => deleteConnection(ctx, params.id, principal.id),
  });
  r.add({
    method: 'GET',
    url: '/api/connections/:id/ovpn',
    auth: 'admin',
    tag,
    summary: 'OpenVPN client profile for this connection',
    produces: 'application/x-openvpn-profile',
    params: ConParams,
    handler: async ({ params, reply }) => {
      await getConnection(ctx, ctx.db, params.id);
      const text = ovpn ? await ovpn(params.id) : null;
      if (text === null) throw apiError('PP_ERR_API_OPENVPN_DISABLED');
      reply.header('content-disposition', `attachment; filename="${params.id}.ovpn"`);
      return text;
    },
  });

  tag = 'customers';
  const CusParams = z.object({ id: S.CustomerId });
  r.add({
    method: 'GET',
    url: '/api/customers',
    auth: 'admin',
    tag,
    summary: 'List customers',
    query: S.Paging,
    response: list(S.Customer),
    handler: ({ query }) => listCustomers(ctx.db, query),
  });
  r.add({
    method: 'POST',
    url: '/api/customers',
    auth: 'admin',
    tag,
    status: 201,
    summary: 'Create a customer',
    body: S.CustomerCreate,
    response: S.Customer,
    handler: ({ body, principal }) => createCustomer(ctx, body, principal.id),
  });
  r.add({
    method: 'GET',
    url: '/api/customers/:id',
    auth: 'admin',
    tag,
    summary: 'Get a customer',
    params: CusParams,
    response: S.Customer,
    handler: ({ params }) => getCustomer(ctx.db, params.id),
  });
  r.add({
    method: 'PUT',
    url: '/api/customers/:id',
    auth: 'admin',
    tag,
    summary: 'Replace a customer',
    params: CusParams,
    body: S.CustomerUpdate,
    response: S.Customer,
    handler: ({ params, body, principal }) => replaceCustomer(ctx, params.id, body, principal.id),
  });
  r.add({
    method: 'DELETE',
    url: '/api/customers/:id',
    auth: 'admin',
    tag,
    status: 204,
    summary: 'Delete a customer (its connections stay, unassigned)',
    params: CusParams,
    handler: ({ params, principal }) => deleteCustomer(ctx, params.id, principal.id),
  });

  tag = 'relays';
  const RlyParams = z.object({ id: S.RelayId });
  r.add({
    method: 'GET',
    url: '/api/relays',
    auth: 'admin',
    tag,
    summary: 'List relays',
    response: list(S.Relay),
    handler: () => listRelays(ctx.db),
  });
  r.add({
    method: 'POST',
    url: '/api/relays',
    auth: 'admin',
    tag,
    status: 201,
    summary: 'Add a relay',
    body: S.RelayCreate,
    response: S.Relay,
    handler: ({ body, principal }) => createRelay(ctx, body, principal.id),
  });
  r.add({
    method: 'GET',
    url: '/api/relays/:id',
    auth: 'admin',
    tag,
    summary: 'Get a relay',
    params: RlyParams,
    response: S.Relay,
    handler: ({ params }) => getRelayView(ctx.db, params.id),
  });
  r.add({
    method: 'PATCH',
    url: '/api/relays/:id',
    auth: 'admin',
    tag,
    summary: 'Change a relay',
    params: RlyParams,
    body: S.RelayUpdate,
    response: S.Relay,
    handler: ({ params, body, principal }) => updateRelay(ctx, params.id, body, principal.id),
  });

  r.add({
    method: 'GET',
    url: '/api/overview',
    auth: 'admin',
    tag: 'overview',
    summary: 'Fleet totals, traffic and recent events',
    response: S.Overview,
    handler: () => overview(ctx.db, ctx.clock.now()),
  });
}
