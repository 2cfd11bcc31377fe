#!/bin/sh
# The compose stack's `migrate` service: roles, database and extensions (as
# the superuser, BIZOS_ADMIN_URL), then the migrations (as the owner,
# BIZOS_DATABASE_URL). A no-op when everything is current.
set -eu
for var in BIZOS_OWNER_PASSWORD BIZOS_APP_PASSWORD BIZOS_WORKER_PASSWORD BIZOS_ANALYST_PASSWORD BIZOS_BI_PASSWORD; do
  eval "value=\${$var:-}"
  case "$value" in
    ''|change-me*) echo "error: $var is unset or still the example's value: set a secret in .env" >&2; exit 2 ;;
  esac
done
bizos db bootstrap --database "${BIZOS_DATABASE:-bizos}"
bizos migrate
