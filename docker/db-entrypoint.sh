#!/bin/sh
# The db image's entry point, as the postgres user: on first start it
# initialises the cluster in $PGDATA (superuser password from
# POSTGRES_PASSWORD, SCRAM on TCP), then runs PostgreSQL in the foreground
# with pg_cron. A named volume on $PGDATA starts as the image's directory,
# owned by postgres; a bind mount must be writable by the image's postgres
# user (`id postgres` in the image).
set -eu
BIN=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  case "${POSTGRES_PASSWORD:-}" in
    ''|change-me*) echo "error: POSTGRES_PASSWORD is unset or still the example's value: set a secret in .env" >&2; exit 2 ;;
  esac
  if ! mkdir -p "$PGDATA" 2>/dev/null || [ ! -w "$PGDATA" ]; then
    echo "error: $PGDATA is not writable by $(id -un) (uid $(id -u)); give the volume to that user" >&2
    exit 1
  fi
  if [ -n "$(ls -A "$PGDATA")" ]; then
    echo "error: $PGDATA holds files but no cluster (no PG_VERSION); refusing to initialise over them" >&2
    exit 1
  fi
  chmod 0700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  "$BIN/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  {
    echo "host all all 0.0.0.0/0 scram-sha-256"
    echo "host all all ::/0 scram-sha-256"
  } >>"$PGDATA/pg_hba.conf"
  echo "initialised a new cluster in $PGDATA"
fi
exec "$BIN/postgres" -D "$PGDATA" \
  -c listen_addresses='*' \
  -c password_encryption=scram-sha-256 \
  -c shared_preload_libraries=pg_cron \
  -c cron.database_name="${BIZOS_DATABASE:-bizos}" \
  -c cron.use_background_workers=on
