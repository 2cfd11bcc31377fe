#!/bin/sh
# The compose stack's optional demo data (service `demo`, profile `demo`):
# the demo tenant of `scripts/dev up`, made through the same SQL functions
# users call, then its self-check. Idempotent: a tenant that already has
# leads is left alone. BIZOS_DEMO_SCALE (default 1: 20 users and a year of
# business, about 11 minutes on 2 cores) makes it smaller or larger.
set -eu
: "${BIZOS_DATABASE_URL:?set BIZOS_DATABASE_URL (the owner, bizos_owner)}"
scale="${BIZOS_DEMO_SCALE:-1}"
case "$scale" in
  ''|*[!0-9.]*|*.*.*) echo "BIZOS_DEMO_SCALE: not a positive number: $scale" >&2; exit 2 ;;
esac
psql "$BIZOS_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f /usr/share/bizos/demo.sql \
  -c "select demo.seed('demo', 'PT Demo Nusantara Logistik', $scale)" >/dev/null
echo "demo data checked: $(psql "$BIZOS_DATABASE_URL" -X -At -v ON_ERROR_STOP=1 -c "select demo.check('demo')")"
