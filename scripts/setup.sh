#!/usr/bin/env bash
# Installs whatever is missing — Debian packages, npm dependencies — and builds (native addon, bundles,
# dashboard). Idempotent: a second run only checks. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

# tinyproxy, dante-server (and wireguard-go, openvpn): the standard-parts chain of `npm run bench:dataplane`
# (peers phase); redsocks: the standard-parts answer to the OpenVPN customer path (ovpn phase); tcpdump: the
# anatomy phase (where a request's time to first byte goes, hop by hop). The benches
# start their own instances in lab namespaces; the packages' system services are never kept.
DEBS=(nftables iproute2 iputils-ping tcpdump openvpn postgresql chromium curl socat dnsutils iperf3 conntrack wireguard-go wireguard-tools procps openssl python3 make g++ wrk tinyproxy dante-server redsocks)
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
  # No service may start during the install (tinyproxy would listen on :8888 on every address):
  # a policy-rc.d that denies every start, unless one is already there, removed again afterwards.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
  # Debian enables (and, without a policy, starts) a default cluster and daemons on install; the
  # platform, the tests and the benches run their own.
  for svc in postgresql tinyproxy danted redsocks; do systemctl disable --now "$svc" >/dev/null 2>&1 || true; done
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi

node scripts/build.mjs "$@"
