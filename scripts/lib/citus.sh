# Citus for scripts/dev: the release source in ../shared/vendor
# built and installed into the system PostgreSQL 15 once, and a throw-away
# cluster of a coordinator and two workers on loopback. Source it after
# scripts/lib/cluster.sh:
#
#   ensure_citus              build + install Citus unless this release is
#                             installed already (about 3 minutes, once)
#   citus_fresh DIR PORT      a new coordinator on 127.0.0.1:PORT and workers
#                             on PORT+1 and PORT+2 (data in DIR/{c,w1,w2}),
#                             each with citus preloaded; the workers added to
#                             the coordinator's database `postgres`
#   citus_stop DIR            stop the three nodes (data is kept)
#
# The vendored tarball is unmodified; the build copy gets one change, which
# the vendor README names: Citus's compatibility header defines a static
# have_createdb_privilege() for PostgreSQL 15 releases before 15.20, which
# exports a function of that name itself, so the copy's definition is
# renamed (Citus's calls then reach PostgreSQL's own).

CITUS_VERSION=13.2.2
CITUS_TARBALL="${CITUS_TARBALL:-$ROOT/../shared/vendor/citus-$CITUS_VERSION.tar.gz}"

citus_installed() {
  local stamp="$TOOLS/citus-$CITUS_VERSION.installed"
  [ -s "$stamp" ] && [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] &&
    [ "$(cat "$stamp")" = "$(sha256sum "$CITUS_TARBALL" | cut -d' ' -f1)" ]
}

ensure_citus() {
  [ -f "$CITUS_TARBALL" ] || die "no Citus source at $CITUS_TARBALL (../shared/vendor)"
  citus_installed && return 0
  is_root || die "Citus $CITUS_VERSION is not installed: run as root to build and install it"
  # Headers PostgreSQL's own build was configured with (zstd, lz4, GSSAPI).
  local pkgs=(liblz4-dev libzstd-dev libkrb5-dev make gcc) missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (to build Citus)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  say "building Citus $CITUS_VERSION from ../shared/vendor (a few minutes, once)"
  local build="$TOOLS/citus-build"
  rm -rf "$build"
  install -d "$build"
  tar xzf "$CITUS_TARBALL" -C "$build"
  local src="$build/citus-$CITUS_VERSION"
  sed -i 's/^have_createdb_privilege(void)$/citus_unused_have_createdb_privilege(void)/' \
    "$src/src/include/pg_version_compat.h"
  grep -q '^citus_unused_have_createdb_privilege(void)$' "$src/src/include/pg_version_compat.h" \
    || die "Citus's pg_version_compat.h no longer has the definition to rename"
  (cd "$src" && ./configure PG_CONFIG="$PG_CONFIG" --without-libcurl >"$build/configure.log" 2>&1) \
    || { tail -20 "$build/configure.log" >&2; die "Citus's configure failed ($build/configure.log)"; }
  (cd "$src" && make -j"$(nproc)" >"$build/make.log" 2>&1 && make install >>"$build/make.log" 2>&1) \
    || { grep -E 'error' "$build/make.log" | head -20 >&2; die "building Citus failed ($build/make.log)"; }
  sha256sum "$CITUS_TARBALL" | cut -d' ' -f1 >"$TOOLS/citus-$CITUS_VERSION.installed"
  rm -rf "$build"
}

citus_stop() {
  local dir="$1" node
  for node in c w1 w2; do cluster_stop "$dir/$node" || true; done
}

# A fresh coordinator and two workers on ports port..port+2. Citus runs a
# maintenance worker per database (the tests make several), hence
# max_worker_processes above the default 8. Statistic counters on: the
# citus suite reads them to prove that no query leaves a worker.
# wal_level = logical: Citus moves a shard online (its default transfer
# mode) by logical replication from the old placement to the new one, one
# publication, slot and subscription per node pair and move; a cluster
# without it can only move with block_writes, which stops the tenant's
# writes for the whole copy. Slots and senders leave room for moves from
# several databases at once (the tests make one database each).
# PostgreSQL 15.20 lets only the libraries of output_plugin_libraries
# decode logical replication slots (pgoutput and test_decoding by
# default); Citus decodes the old placement's changes with its own plugin,
# `citus` ("library "citus" may not be used as an output plugin" otherwise).
citus_fresh() {
  local dir="$1" port="$2" node p i=0
  pg_owned_dir "$dir"
  for node in c w1 w2; do
    p=$((port + i)); i=$((i + 1))
    CLUSTER_PORT_VAR=BIZOS_CITUS_PORT cluster_fresh "$dir/$node" "$p" "$dir/$node" "$dir/$node.log" \
      "shared_preload_libraries = 'citus'" \
      "fsync = off" "synchronous_commit = off" "full_page_writes = off" \
      "max_connections = 300" "shared_buffers = 256MB" "max_prepared_transactions = 100" \
      "max_worker_processes = 64" "citus.enable_stat_counters = on" \
      "wal_level = logical" "max_replication_slots = 32" "max_wal_senders = 32" \
      "max_logical_replication_workers = 16" \
      "output_plugin_libraries = 'pgoutput, test_decoding, citus'"
    as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$p" -U postgres -d postgres -v ON_ERROR_STOP=1 \
      -c "create extension if not exists citus" >/dev/null
  done
  as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "select citus_set_coordinator_host('127.0.0.1', $port)" \
    -c "select citus_add_node('127.0.0.1', $((port + 1)))" \
    -c "select citus_add_node('127.0.0.1', $((port + 2)))" >/dev/null
}
