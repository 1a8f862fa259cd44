import { defineErrors, errorFactory } from '@pocketproxy/errors';

export const DB_ERRORS = defineErrors('db', {
  PP_ERR_DB_LOCKED: {
    status: 503,
    message: 'the embedded database in {dir} is in use by process {pid}; stop it first or set DATABASE_URL',
  },
  PP_ERR_DB_CONNECT: { status: 503, message: 'cannot reach the database: {reason}' },
  PP_ERR_DB_MIGRATION: { status: 500, message: 'migration {version} failed: {reason}' },
});
export const dbError = errorFactory(DB_ERRORS);
