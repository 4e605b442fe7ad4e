#!/usr/bin/env bash
# Install what kaygraph-c needs on Debian 12 (run as root).  Idempotent: only
# missing packages are installed, and `apt-get update` runs only then.
#   scripts/deps.sh          build + run (the demo)
#   scripts/deps.sh --test   also what the tests need (redis-server, PostgreSQL,
#                            Chromium, Node.js, clang/libFuzzer, playwright-core)
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config libjansson-dev libhiredis-dev libcurl4-openssl-dev
      libwebsockets-dev libssl-dev libsqlite3-dev libpq-dev)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(libcmocka-dev redis-server redis-tools chromium clang libclang-rt-14-dev curl
         iproute2 valgrind file dpkg-dev postgresql sqlite3 python3)
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/deps.sh: missing packages: ${missing[*]}; run as root (sudo) to install them" >&2
    exit 1
  fi
  echo "Installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--test" && -f tests/browser/package.json ]]; then
  # `npm ls` fails when a package of package-lock.json is missing (a new
  # dev dependency after a pull), not only on a first install.
  if ! (cd tests/browser && npm ls --silent >/dev/null 2>&1); then
    echo "Installing the browser tests' packages (npm ci)"
    (cd tests/browser && npm ci --no-audit --no-fund --silent)
  fi
fi
