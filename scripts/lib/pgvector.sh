# shellcheck shell=bash
# pgvector 0.8.6 for the benchmarks that measure bizos beside it: built from
# ../shared/vendor with its own Makefile (which compiles with -march=native)
# and installed into the system PostgreSQL 15 once. Needs PG_BIN (from
# cluster.sh), ROOT, say and die.

PGVECTOR_VERSION=0.8.6

ensure_pgvector() {
  # BIZOS_VENDOR_DIR: where a git worktree outside /work finds the vendored sources.
  local tarball="${BIZOS_VENDOR_DIR:-$ROOT/../shared/vendor}/pgvector-$PGVECTOR_VERSION.tar.gz" tmp
  grep -qs "default_version = '$PGVECTOR_VERSION'" /usr/share/postgresql/15/extension/vector.control && return 0
  [ -f "$tarball" ] || die "no $tarball"
  is_root || die "pgvector $PGVECTOR_VERSION is not installed (run as root to build it from ../shared/vendor)"
  say "building pgvector $PGVECTOR_VERSION from ../shared/vendor (about 20 s)"
  tmp=$(mktemp -d)
  tar -C "$tmp" -xzf "$tarball"
  make -s -C "$tmp/pgvector-$PGVECTOR_VERSION" PG_CONFIG="$PG_BIN/pg_config" >/dev/null 2>&1 \
    && make -s -C "$tmp/pgvector-$PGVECTOR_VERSION" PG_CONFIG="$PG_BIN/pg_config" install >/dev/null \
    || { rm -rf "$tmp"; die "could not build pgvector"; }
  rm -rf "$tmp"
}
