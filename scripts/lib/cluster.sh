# Throw-away (and dev) PostgreSQL 15 clusters on loopback, for scripts/dev,
# scripts/bench and bench/*/run. Source it:
#
#   . "$ROOT/scripts/lib/cluster.sh"
#   cluster_fresh "$DATA" "$PORT" "$DATA" "$DATA/server.log" "shared_buffers = 512MB"
#   trap 'cluster_stop "$DATA" || true' EXIT
#
#   cluster_fresh DATA PORT SOCKDIR LOG [SETTING...]
#       a new, empty cluster: stops the one in DATA, refuses when another
#       server listens on 127.0.0.1:PORT, removes DATA, then cluster_init
#       (trust on loopback) and cluster_start; CLUSTER_PORT_VAR names the
#       variable that chooses the port, for the message
#   cluster_init DATA PORT SOCKDIR AUTH_HOST [SETTING...]
#       initdb into DATA unless it holds a cluster already (local trust,
#       AUTH_HOST for TCP, UTF8, C.UTF-8), then (re)writes
#       postgresql.auto.conf: the port, listen on 127.0.0.1 only, the socket
#       in SOCKDIR, then each SETTING line ("name = value")
#   cluster_start DATA LOG     start (or reload, when running), logging to LOG
#                              (its directory must be writable by postgres)
#   cluster_stop DATA          fast shutdown, when running
#   cluster_running DATA
#
# PostgreSQL refuses to run as root: as root, server commands run as the
# postgres OS user (as_pg) and the directories are given to it.

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

is_root() { [ "$(id -u)" = 0 ]; }
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_owned_dir() { if is_root; then install -d -m 0700 -o postgres -g postgres "$@"; else install -d -m 0700 "$@"; fi; }

cluster_fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

cluster_running() {
  [ -s "$1/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

cluster_stop() {
  cluster_running "$1" || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null
}

cluster_init() {
  local data="$1" port="$2" sock="$3" auth="$4"; shift 4
  [ "$sock" = "$data" ] || pg_owned_dir "$sock"
  if [ ! -s "$data/PG_VERSION" ]; then
    pg_owned_dir "$data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host="$auth" \
      -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  {
    echo "# written by $(basename "$(dirname "$0")")/$(basename "$0") (scripts/lib/cluster.sh)"
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$sock'"
    printf '%s\n' "$@"
  } | as_pg tee "$data/postgresql.auto.conf" >/dev/null
}

# The tests' and benchmarks' servers listen on fixed ports in the kernel's
# ephemeral range (32768-60999 on Debian): a client socket that was given
# one of them as its local port makes the server's bind fail ("Address
# already in use": once in a full run, the S3 stand-in on 54340).
# reserve_ports keeps new client sockets off 54300-54470 (root only, best
# effort: elsewhere it does nothing); port_wait_free waits for a socket
# already holding the port to go (a connection's TIME_WAIT lasts 60 s),
# and fails at once on a real listener.
reserve_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports range=54300-54470 cur
  [ -w "$f" ] || return 0
  cur=$(cat "$f" 2>/dev/null) || return 0
  case ",$cur," in *",$range,"*) return 0 ;; esac
  echo "${cur:+$cur,}$range" >"$f" 2>/dev/null || true
}

port_wait_free() {
  local port="$1" what="$2"
  if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    cluster_fail "another program listens on 127.0.0.1:$port; stop it or give $what another port"
  fi
  for _ in $(seq 120); do
    ss -Htan "sport = :$port" 2>/dev/null | grep -q . || return 0
    sleep 1
  done
  cluster_fail "a connection still holds 127.0.0.1:$port after 2 minutes; $what cannot listen there"
}

cluster_start() {
  local data="$1" log="$2"
  if cluster_running "$data"; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" reload >/dev/null
  else
    port_wait_free "$(sed -n "s/^port = //p" "$data/postgresql.auto.conf" 2>/dev/null | tail -1)" "PostgreSQL ($data)"
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null \
      || { tail -20 "$log" >&2; cluster_fail "PostgreSQL did not start ($data)"; }
  fi
}

cluster_fresh() {
  local data="$1" port="$2" sock="$3" log="$4"; shift 4
  # Only ever remove what is a cluster (or nothing yet).
  if [ -e "$data" ] && [ ! -s "$data/PG_VERSION" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
    cluster_fail "$data is not a PostgreSQL data directory; not removing it"
  fi
  cluster_stop "$data" || true
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    cluster_fail "another server listens on 127.0.0.1:$port (not $data); stop it or set ${CLUSTER_PORT_VAR:-another port}"
  fi
  rm -rf "$data"
  cluster_init "$data" "$port" "$sock" trust "$@"
  cluster_start "$data" "$log"
}
