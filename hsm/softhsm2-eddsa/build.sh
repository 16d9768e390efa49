#!/usr/bin/env bash
# Builds SoftHSM2 2.6.1 — Debian 12's version, from Debian's own source tarball — with one
# change, eddsa-unwrap.patch: C_UnwrapKey of an Ed25519 PKCS#8 private key. Stock 2.6.1 has
# the EdDSA PKCS#8 decoder but no branch for CKK_EC_EDWARDS in C_UnwrapKey, so it answers
# CKR_FUNCTION_FAILED; the patch adds that branch, mirroring the EC one beside it.
#
# Why: custos migrates an existing Ed25519 exchange key by unwrapping it inside the HSM (never
# C_CreateObject with the key's value). Production HSMs do this; the tests prove custos's
# side of it against this build, and prove the fail-closed path against the stock module.
#
# Prints the module's path on stdout. Rebuilds only when the patch changes.
#   bash hsm/softhsm2-eddsa/build.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/.cache/softhsm2-eddsa"
lib="$out/libsofthsm2.so"
tarball_url="http://deb.debian.org/debian/pool/main/s/softhsm2/softhsm2_2.6.1.orig.tar.gz"
tarball_sha256="ac9ac1e3f4402f88bf3e626a18f070f8031c031947ed469c6e17482495ec72b6" # from Debian's softhsm2_2.6.1-2.1.dsc; the checksum, not the transport, vouches for it (as with apt)

stamp="$tarball_sha256 $(sha256sum "$here/eddsa-unwrap.patch" | cut -d' ' -f1)"
if [ -f "$lib" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$lib"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
echo "custos: building SoftHSM2 2.6.1 with Ed25519 unwrap (about a minute on 2 cores)" >&2
# deb.debian.org first, then the mirrors apt is configured with (the same pool layout).
mirrors="$(sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' \
  /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | tr ' ' '\n' | grep -v security | sort -u || true)"
fetched=""
for base in "http://deb.debian.org/debian" $mirrors; do
  url="${base%/}/${tarball_url#http://deb.debian.org/debian/}"
  if curl -fsSL --retry 2 -o "$work/src.tar.gz" "$url" && echo "$tarball_sha256  $work/src.tar.gz" | sha256sum -c --quiet - 2>/dev/null; then
    fetched="$url"
    break
  fi
done
[ -n "$fetched" ] || { echo "custos: could not fetch $tarball_url (nor from apt's mirrors) with SHA-256 $tarball_sha256" >&2; exit 1; }
tar xzf "$work/src.tar.gz" -C "$work"
cd "$work/softhsm2-2.6.1"
patch -p1 --quiet < "$here/eddsa-unwrap.patch"
log="$out/build.log"
if ! { ./configure --disable-gost --disable-p11-kit --with-crypto-backend=openssl --enable-eddsa \
         && make -j"$(nproc)" -C src/lib; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "custos: the SoftHSM2 build failed; the whole log is $log" >&2
  exit 1
fi
install -m 0755 src/lib/.libs/libsofthsm2.so "$lib"
echo "$stamp" > "$out/stamp"
echo "$lib"
