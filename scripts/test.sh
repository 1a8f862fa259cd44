#!/usr/bin/env bash
# The second of the README's two commands: install what is missing, build, start a throwaway
# PostgreSQL (unless PP_TEST_DATABASE_URL is given), typecheck, lint, and run every test tier.
# Tests that need root skip loudly when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

pgdir=""
# Must not fail: under `set -e` a failing command in the EXIT trap becomes the script's exit status.
cleanup() {
  if [ -n "$pgdir" ]; then bash scripts/pg-test-cluster.sh stop "$pgdir" || true; rm -rf "$pgdir"; fi
  return 0
}
trap cleanup EXIT
if [ -z "${PP_TEST_DATABASE_URL:-}" ]; then
  pgdir=$(mktemp -d /tmp/pp-test-pg.XXXXXX)
  port=$(( 40000 + RANDOM % 20000 ))
  PP_TEST_DATABASE_URL=$(bash scripts/pg-test-cluster.sh start "$pgdir" "$port")
  export PP_TEST_DATABASE_URL
  echo "test: PostgreSQL for the tests at $PP_TEST_DATABASE_URL"
fi

echo "test: typecheck"
node node_modules/typescript/bin/tsc -p tsconfig.json --noEmit
echo "test: lint"
npm run --silent lint
node scripts/run-tests.mjs "$@"
