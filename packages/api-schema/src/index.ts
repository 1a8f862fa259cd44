// @pocketproxy/api-schema — the REST API's request and response schemas (zod), shared by the server
// (validation + OpenAPI) and the dashboard (form validation, types). Imports only zod; safe in a browser.
export * from './common.js';
export * from './resources.js';
export * from './internal.js';
export * from './fleet.js';
export * from './farm.js';
