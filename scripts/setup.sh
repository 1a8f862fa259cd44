#!/usr/bin/env bash
# Installs whatever is missing — Debian packages, npm dependencies — and builds (native addon, bundles,
# dashboard). Idempotent: a second run only checks. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(nftables iproute2 iputils-ping openvpn postgresql chromium curl socat dnsutils iperf3 conntrack wireguard-go wireguard-tools procps openssl python3 make g++ wrk)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} — run as root (or install them) first" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a default cluster on install; the platform and the tests run their own.
  systemctl disable --now postgresql >/dev/null 2>&1 || true
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi

node scripts/build.mjs "$@"
