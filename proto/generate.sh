#!/usr/bin/env bash
# Generates src/gen/ from proto/ with ts-proto. The options are pinned here and nowhere
# else: forceLong=string because the default (number) throws above 2^53.
# --check regenerates into a temp dir and fails if src/gen/ is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
out=src/gen
if [ "${1:-}" = "--check" ]; then out=$(mktemp -d); fi
command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
rm -rf "$out"/custos "$out"/google
mkdir -p "$out"
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out="$out" \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node,forceLong=string,oneof=unions,importSuffix=.js,useExactTypes=false \
  -I proto \
  proto/custos/v1/signer.proto proto/custos/v1/custody.proto proto/google/rpc/status.proto
if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$out" src/gen >/dev/null; then
    echo "src/gen is stale against proto/: run npm run gen" >&2
    diff -r "$out" src/gen | head -20 >&2
    rm -rf "$out"; exit 1
  fi
  rm -rf "$out"; echo "src/gen is up to date"
fi
