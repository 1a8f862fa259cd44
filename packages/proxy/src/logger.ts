// The silent default logger; servers log only protocol-level diagnostics at debug level.
import type { Logger } from './types.js';

const noop = (): void => {};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
