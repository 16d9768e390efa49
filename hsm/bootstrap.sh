#!/usr/bin/env bash
# Makes a fresh Debian machine with Node >= 20 ready to run custos: installs what is
# missing (SoftHSM2; for tests also gdb for gcore, protoc for the generated-code check,
# Chromium for the console's browser tests, and what builds SoftHSM2 with Ed25519 unwrap
# for the key-migration tests — hsm/softhsm2-eddsa/;
# the Python client's tests Debian's python3-grpcio and friends; PostgreSQL for the replicated
# store's tests and bench; for the benchmark
# nghttp2-client), installs npm packages, and builds.
# Usage: bash hsm/bootstrap.sh [serve|test|bench]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-serve}"

need=()
# pkcs11js and better-sqlite3 compile natively on install (node-gyp: python3, make, g++).
command -v make >/dev/null || need+=(make)
command -v g++ >/dev/null || need+=(g++)
command -v python3 >/dev/null || need+=(python3)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || [ -e /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so ] || need+=(softhsm2)
if [ "$mode" = test ]; then
  command -v gcore >/dev/null || need+=(gdb)
  command -v protoc >/dev/null || need+=(protobuf-compiler)
  [ -x /usr/bin/chromium ] || need+=(chromium) # browser tests of the officer console (playwright-core drives it; no browser download)
  command -v curl >/dev/null || need+=(curl)
  [ -f /usr/include/openssl/evp.h ] || need+=(libssl-dev)
  command -v patch >/dev/null || need+=(patch)
  command -v openssl >/dev/null || need+=(openssl) # reads officer key files independently of custos
  # The Python client's tests (clients/python) run on Debian's python3 and its packages; the
  # gRPC Python codegen plugin matches python3-grpcio (not python3-grpc-tools: its protoc is too old).
  for pkg in python3-grpcio python3-protobuf python3-requests python3-aiohttp python3-pytest python3-venv python3-pip python3-setuptools python3-wheel; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  [ -x /usr/bin/grpc_python_plugin ] || need+=(protobuf-compiler-grpc)
fi
if [ "$mode" = test ] || [ "$mode" = bench ]; then
  # Replicated deployments' store: tests and the bench start throwaway clusters (initdb, pg_ctl)
  # in temp directories on loopback (test/helpers/postgres.ts); no system cluster is used.
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
fi
if [ "$mode" = bench ]; then
  command -v h2load >/dev/null || need+=(nghttp2-client)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "custos: installing ${need[*]} from Debian's packages" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm packages (pkcs11js and better-sqlite3 compile natively: python3, make, g++).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "custos: installing npm packages, compiling pkcs11js and better-sqlite3 (about 2 minutes the first time)" >&2
  started=$SECONDS
  npm ci --no-audit --no-fund --loglevel=error
  echo "custos: npm packages installed in $((SECONDS - started)) s" >&2
fi

# The test-only SoftHSM2 build with Ed25519 unwrap (cached in .cache/; about a minute the first time).
[ "$mode" = test ] && bash hsm/softhsm2-eddsa/build.sh >/dev/null

# The test run starts from a clean dist/ so no output of a deleted source file lingers.
[ "$mode" = test ] && rm -rf dist
# dist/.build-stamp carries the time the last successful build started: when no source,
# config or lock file is newer, dist/ is current and `npm run serve` starts without a build.
stamp=dist/.build-stamp
if [ -f "$stamp" ] && [ -z "$(find src test bench proto bin tsconfig.json package.json package-lock.json -newer "$stamp" -print -quit)" ]; then
  echo "custos: build is up to date" >&2
else
  echo "custos: building" >&2
  mkdir -p .cache
  started_stamp=$(mktemp .cache/build-started.XXXXXX)
  npx --no-install tsc -p tsconfig.json
  mv "$started_stamp" "$stamp"
fi
