#!/usr/bin/env bash
# The first of the README's two commands: install what is missing, build, and start the platform.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${POCKETPROXY_ADMIN_EMAIL:-}" ] && [ ! -f "${POCKETPROXY_DATA_DIR:-./data}/pg/PG_VERSION" ] && [ -z "${DATABASE_URL:-}" ]; then
  echo "start: first start — set POCKETPROXY_ADMIN_EMAIL and POCKETPROXY_ADMIN_PASSWORD to create the admin (there is no default password)" >&2
fi
exec node apps/server/bin/pocketproxy.js up
