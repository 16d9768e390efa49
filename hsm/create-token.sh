#!/usr/bin/env bash
# Creates a SoftHSM2 token store for a configured custos deployment, then its wrapping key.
#   hsm/create-token.sh TOKEN_DIR LABEL
# PINs never go on a command line: they are generated into TOKEN_DIR/{so,user}.pin (0600),
# and the token is initialised through PKCS#11 by `custos hsm create-token`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:?usage: create-token.sh TOKEN_DIR LABEL}"
label="${2:?usage: create-token.sh TOKEN_DIR LABEL}"
umask 077
mkdir -p "$dir/tokens"
sed "s#@TOKENDIR@#$dir/tokens#" "$here/softhsm2.conf.template" > "$dir/softhsm2.conf"
export SOFTHSM2_CONF="$dir/softhsm2.conf"
node "$here/../bin/custos.js" hsm create-token --softhsm-conf "$dir/softhsm2.conf" --label "$label" \
  --so-pin-file "$dir/so.pin" --pin-file "$dir/user.pin"
echo "SOFTHSM2_CONF=$dir/softhsm2.conf; user PIN file $dir/user.pin (point hsm.pinFile at it)"
