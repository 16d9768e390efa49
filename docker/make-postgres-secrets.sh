#!/usr/bin/env bash
# Writes the PostgreSQL credentials docker/compose.replicas.yaml reads, as 0600 files in
# docker/secrets/ (or DIR): postgres.env (POSTGRES_PASSWORD, for the database container) and
# custos.env (CUSTOS_POSTGRES_URL, for the custos replicas). A fresh random password; an
# existing file is never overwritten. The password never appears on a command line.
set -euo pipefail
dir="${1:-$(dirname "$0")/secrets}"
mkdir -p "$dir"
chmod 700 "$dir"
for f in postgres.env custos.env; do
  if [ -e "$dir/$f" ]; then echo "$dir/$f exists: remove both files to make new credentials" >&2; exit 1; fi
done
umask 077
password="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf 'POSTGRES_PASSWORD=%s\n' "$password" > "$dir/postgres.env"
printf 'CUSTOS_POSTGRES_URL=postgres://custos:%s@postgres:5432/custos\n' "$password" > "$dir/custos.env"
echo "wrote $dir/postgres.env and $dir/custos.env (0600)"
