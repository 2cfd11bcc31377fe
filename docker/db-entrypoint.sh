#!/bin/sh
# Initialises the cluster on first start (superuser password from
# POSTGRES_PASSWORD), then runs PostgreSQL in the foreground with pg_cron.
set -eu
BIN=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD for the superuser}"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  "$BIN/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
exec "$BIN/postgres" -D "$PGDATA" \
  -c listen_addresses='*' \
  -c shared_preload_libraries=pg_cron \
  -c cron.database_name="${BIZOS_DATABASE:-bizos}" \
  -c cron.use_background_workers=on
