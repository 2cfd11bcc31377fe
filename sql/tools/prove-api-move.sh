#!/usr/bin/env bash
# One-time proof of the move of functions and views from the versioned
# migrations into sql/api (not a permanent test: it fails at the first
# edit of an api file; tests/tests/schema_api.rs holds the permanent
# checks). On the cluster at $BIZOS_TEST_ADMIN_URL (a superuser) it builds
#   A = the versioned migrations only (what main did before sql/api), in the
#       shared tier (public) and a schema tier (tenant_proof), with psql;
#   B = A + the sql/api files, applied as the runner does (one transaction,
#       in the order of sql/src/api.rs, under each tier's search path);
#   C = A with every property the files should restate wiped first (ACLs,
#       SET clauses, comments, view options), then the api files;
# and compares, for the business schemas and their analytics schemas, every
# function (pg_get_functiondef, proacl, proconfig, prosecdef, provolatile,
# owner, comment), every view (pg_get_viewdef, reloptions, relacl, owner,
# comment, column comments) and the sets of relations, triggers and
# policies (sql/tools/catalogue.sql). Prints the diffs; exit 1 when one is
# not empty. KEEP=1 keeps the databases.
#   BIZOS_TEST_ADMIN_URL='host=127.0.0.1 port=54331 user=postgres dbname=postgres' \
#     sql/tools/prove-api-move.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ADMIN="${BIZOS_TEST_ADMIN_URL:?set BIZOS_TEST_ADMIN_URL}"
A=bizos_api_proof_a
B=bizos_api_proof_b
C=bizos_api_proof_c
OUT="${TMPDIR:-/tmp}/bizos-api-proof"
mkdir -p "$OUT"
export PGOPTIONS="-c client_min_messages=warning"
psqla() { psql "$ADMIN" -X -q -o /dev/null -v ON_ERROR_STOP=1 "$@"; }
owner() { psql "$ADMIN dbname=$1 user=bizos_owner" -X -q -o /dev/null -v ON_ERROR_STOP=1 "${@:2}"; }
ownerq() { psql "$ADMIN dbname=$1 user=bizos_owner" -X -q -v ON_ERROR_STOP=1 "${@:2}"; }
# The api files in the order of sql/src/api.rs.
mapfile -t API < <(sed -n 's/.*api_file!("\([a-z_]*\.sql\)").*/\1/p' "$ROOT/sql/src/api.rs")
[ ${#API[@]} -gt 0 ] || { echo "no api files found in sql/src/api.rs" >&2; exit 2; }

psqla -f "$ROOT/sql/bootstrap/roles.sql"
for db in $A $B $C; do psqla -c "drop database if exists $db"; done
psqla -c "create database $A owner bizos_owner"
psql "$ADMIN dbname=$A" -X -q -v ON_ERROR_STOP=1 -f "$ROOT/sql/bootstrap/database.sql"
psqla -c "revoke temporary, create on database $A from bizos_app, bizos_analyst, bizos_bi, bizos_authenticated;
          alter database $A set search_path = \"\$user\", public, extensions, bizos"

migrations=$(ls "$ROOT"/sql/migrations/V*__*.sql | sort -t V -k2 -n)
versioned() { # $1 = search_path setting
  owner $A -c "set search_path = $1; create table if not exists refinery_schema_history(
      version int4 primary key, name varchar(255), applied_on varchar(255), checksum varchar(255))"
  for f in $(ls "$ROOT"/sql/migrations/V*__*.sql | sed 's/.*\/V\([0-9]*\)__.*/\1 &/' | sort -n | cut -d' ' -f2); do
    PGOPTIONS="$PGOPTIONS -c search_path=$1" owner $A -1 -f "$f"
  done
}
versioned public,extensions
owner $A -c "create schema tenant_proof"
versioned tenant_proof,extensions

# C: as A, but with every property the api files should restate wiped
# first (as a superuser, in the catalogue): ACLs back to the default, no
# SET clauses, no comments. So C == A shows that the files alone carry the
# grants, revokes, pinned search paths, settings and comments, not only
# that re-running them leaves the properties alone.
for db in $B $C; do
  psqla -c "create database $db template $A owner bizos_owner"
  psqla -c "alter database $db set search_path = \"\$user\", public, extensions, bizos"
done
psql "$ADMIN dbname=$C" -X -q -o /dev/null -v ON_ERROR_STOP=1 -c "
  delete from pg_description d using pg_proc p, pg_namespace n
   where d.classoid = 'pg_proc'::regclass and d.objoid = p.oid and n.oid = p.pronamespace
     and n.nspname in ('public', 'tenant_proof');
  delete from pg_description d using pg_class c, pg_namespace n
   where d.classoid = 'pg_class'::regclass and d.objoid = c.oid and d.objsubid = 0 and c.relkind = 'v'
     and n.oid = c.relnamespace and n.nspname in ('public', 'tenant_proof');
  update pg_proc p set proacl = null, proconfig = null from pg_namespace n
   where n.oid = p.pronamespace and n.nspname in ('public', 'tenant_proof')
     and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                      and d.objid = p.oid and d.deptype = 'e');
  update pg_class c set relacl = null, reloptions = null from pg_namespace n
   where n.oid = c.relnamespace and n.nspname in ('public', 'tenant_proof') and c.relkind = 'v';"
for db in $B $C; do
  for sp in public,extensions tenant_proof,extensions; do
    args=()
    for f in "${API[@]}"; do args+=(-f "$ROOT/sql/api/$f"); done
    PGOPTIONS="$PGOPTIONS -c search_path=$sp" owner $db -1 "${args[@]}"
  done
done

status=0
for schema in public analytics tenant_proof tenant_proof_analytics; do
  for db in $A $B $C; do
    ownerq $db -A -t -v schema="$schema" -f "$ROOT/sql/tools/catalogue.sql" > "$OUT/$db.$schema.txt"
  done
  n=$(grep -c '' "$OUT/$A.$schema.txt")
  for db in $B $C; do
    if diff -u "$OUT/$A.$schema.txt" "$OUT/$db.$schema.txt"; then
      echo "$schema: $A and $db identical ($n catalogue lines; $(grep -c '^function .* | def' "$OUT/$A.$schema.txt") functions, $(grep -c '^view .* | def' "$OUT/$A.$schema.txt") views)"
    else
      status=1
    fi
  done
done
[ -n "${KEEP:-}" ] || for db in $A $B $C; do psqla -c "drop database $db"; done
exit $status
