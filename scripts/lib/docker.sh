# Docker for scripts/dev (the compose stack). Source it after
# cluster.sh (is_root) and with say/die defined:
#
#   ensure_docker            Debian's docker.io, docker-compose (1.29) and
#                            debootstrap installed; the daemon running
#                            (started here when it is not, log in
#                            $DOCKER_LOG)
#   ensure_base_images       the two images the Dockerfile starts from, made
#                            locally when missing (no image registry is
#                            needed): $BIZOS_DEBIAN_IMAGE from debootstrap and
#                            $BIZOS_RUST_IMAGE from the host's Rust toolchain
#   compose ARGS...          $BIZOS_COMPOSE, docker-compose (v1) or
#                            `docker compose` (v2)
#
# The names of the base images are the build arguments DEBIAN_IMAGE and
# RUST_IMAGE of docker/Dockerfile, passed by docker-compose.yml from
# BIZOS_DEBIAN_IMAGE and BIZOS_RUST_IMAGE. With an image registry, leave
# them unset: the defaults are Docker Hub's debian:bookworm-slim and
# rust:1.95-bookworm.

DOCKER_LOG="${DOCKER_LOG:-/var/log/bizos-dockerd.log}"
# Debian's client first: a newer client earlier on the PATH builds through
# buildx, which the 20.10 engine of Debian 12 does not ship.
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker
export BIZOS_DEBIAN_IMAGE="${BIZOS_DEBIAN_IMAGE:-bizos-local/debian:bookworm}"
RUST_TOOLCHAIN_VERSION="$(rustc --version 2>/dev/null | awk '{ print $2 }')"
export BIZOS_RUST_IMAGE="${BIZOS_RUST_IMAGE:-bizos-local/rust:${RUST_TOOLCHAIN_VERSION:-none}}"

ensure_docker() {
  local pkgs=(docker.io docker-compose debootstrap) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    is_root || die "missing packages: ${missing[*]} (run as root, or install them)"
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  "$DOCKER" info >/dev/null 2>&1 && return 0
  is_root || die "the Docker daemon is not running (start it, or run as root)"
  say "starting the Docker daemon (log: $DOCKER_LOG)"
  nohup dockerd >>"$DOCKER_LOG" 2>&1 </dev/null &
  for _ in $(seq 150); do
    "$DOCKER" info >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  tail -20 "$DOCKER_LOG" >&2
  die "the Docker daemon did not start"
}

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# A minimal Debian 12 root file system from the machine's own apt mirror,
# imported as $BIZOS_DEBIAN_IMAGE (about 130 MB, under a minute).
make_debian_image() {
  local tmp mirror
  mirror=$(sed -n 's|^URIs: *\(http[^ ]*/debian\)/*$|\1|p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  say "making the base image $BIZOS_DEBIAN_IMAGE (debootstrap from $mirror; once, about a minute)"
  tmp=$(mktemp -d)
  if ! debootstrap --variant=minbase bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
    tail -20 "$tmp/debootstrap.log" >&2
    rm -rf "$tmp"
    die "debootstrap failed"
  fi
  # The machine's package sources (mirrors, security updates), not
  # debootstrap's one line.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    rm -f "$tmp/root/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/debian.sources "$tmp/root/etc/apt/sources.list.d/"
  fi
  rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
  tar -C "$tmp/root" -c . | "$DOCKER" import - "$BIZOS_DEBIAN_IMAGE" >/dev/null
  rm -rf "$tmp"
}

# The host's Rust toolchain (rustc, cargo; no documentation), its
# cargo-pgrx when there is one, and its extra
# CA certificates (package registries behind a TLS-inspecting proxy) on the
# local Debian image, with a C toolchain: what the official rust image
# gives, as $BIZOS_RUST_IMAGE.
make_rust_image() {
  local sysroot tmp
  sysroot=$(rustc --print sysroot) || die "no Rust toolchain on this machine"
  say "making the build image $BIZOS_RUST_IMAGE from $sysroot (once, a few minutes)"
  tmp=$(mktemp -d)
  mkdir -p "$tmp/rust" "$tmp/ca"
  cp -a "$sysroot/bin" "$sysroot/lib" "$sysroot/libexec" "$tmp/rust/" 2>/dev/null || cp -a "$sysroot/bin" "$sysroot/lib" "$tmp/rust/"
  cp /usr/local/share/ca-certificates/*.crt "$tmp/ca/" 2>/dev/null || true
  # The host's cargo-pgrx (scripts/dev installs the pinned version): the
  # Dockerfile keeps it when its version is the pin, instead of building
  # it again (about 5 minutes on 2 cores).
  mkdir -p "$tmp/cargo-bin"
  if command -v cargo-pgrx >/dev/null 2>&1; then cp "$(command -v cargo-pgrx)" "$tmp/cargo-bin/"; fi
  cat >"$tmp/Dockerfile" <<EOF
FROM $BIZOS_DEBIAN_IMAGE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make git \\
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
COPY rust/ /usr/local/rust/
COPY cargo-bin/ /usr/local/cargo/bin/
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN rustc --version && cargo --version
EOF
  "$DOCKER" build -q -t "$BIZOS_RUST_IMAGE" "$tmp" >/dev/null || { rm -rf "$tmp"; die "could not make $BIZOS_RUST_IMAGE"; }
  rm -rf "$tmp"
}

ensure_base_images() {
  image_exists "$BIZOS_DEBIAN_IMAGE" || make_debian_image
  image_exists "$BIZOS_RUST_IMAGE" || make_rust_image
}

# BIZOS_COMPOSE: another compose command (e.g. a Compose v2 binary).
compose() {
  if [ -n "${BIZOS_COMPOSE:-}" ]; then
    $BIZOS_COMPOSE "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose "$@"
  else
    "$DOCKER" compose "$@"
  fi
}

# --- the stack's end-to-end check (scripts/dev test) -----------------------
#
# docker_stack_check LOG: builds the images (the layer cache stays between
# runs; the stack's containers and volumes do not), starts the stack under
# its own project name and host ports, and checks it as a user would:
# health of every service, /readyz, the optional demo data, a token's
# /api/me, a document uploaded through the API and ingested by the worker
# (files volume, embedding model, job queue), an analyst's login through
# the published port, and the data kept across `stop` and `up`. Each check
# prints "docker check: NAME ... ok (N s)" or "... FAILED (N s)" to LOG
# too; the stack is torn down (volumes included) whatever happens.
DOCKER_TEST_PROJECT="${BIZOS_TEST_DOCKER_PROJECT:-bizostest}"
DOCKER_TEST_HTTP_PORT="${BIZOS_TEST_DOCKER_HTTP_PORT:-54360}"
DOCKER_TEST_PG_PORT="${BIZOS_TEST_DOCKER_PG_PORT:-54361}"

docker_test_compose() {
  compose -p "$DOCKER_TEST_PROJECT" --env-file "$DOCKER_TEST_ENV" -f "$ROOT/docker-compose.yml" "$@"
}

docker_test_down() {
  [ -n "${DOCKER_TEST_ENV:-}" ] && [ -f "$DOCKER_TEST_ENV" ] || return 0
  docker_test_compose --profile demo down -v --remove-orphans >/dev/null 2>&1 || true
}

# prune_stale_images: a rebuild after an edit leaves the previous image of
# every rebuilt stage untagged, 0.3-5 GB each (the build stages hold cargo's
# target directory), so a disk fills after a few dozen runs. Docker's own
# prune cannot tell them from the layer cache of the next build. By the label
# docker/Dockerfile gives every stage: keep the newest untagged image of a
# build stage (the cache: an unchanged stage reuses it, however old) and
# remove the others; a stage with a tagged image (db, bff) keeps none.
# Removing an image removes only the layers no other image uses.
prune_stale_images() {
  local stage stale removed=0
  for stage in $(sed -n 's/^LABEL org\.bizos\.stage=//p' "$ROOT/docker/Dockerfile"); do
    # Newest first, as `docker images` lists them.
    stale=$("$DOCKER" images -q -f dangling=true -f "label=org.bizos.stage=$stage")
    [ -n "$("$DOCKER" images -q -f dangling=false -f "label=org.bizos.stage=$stage")" ] \
      || stale=$(tail -n +2 <<<"$stale")
    [ -n "$stale" ] || continue
    # shellcheck disable=SC2086 # one image ID a word
    "$DOCKER" rmi $stale >/dev/null && removed=$(( removed + $(wc -l <<<"$stale") ))
  done
  [ "$removed" -eq 0 ] || say "removed $removed stale image(s) of earlier builds"
}

# docker_check NAME COMMAND...: one check, its result in the log.
docker_check() {
  local name="$1" t0; shift
  t0=$(date +%s)
  if "$@" >"$DOCKER_TEST_DIR/check.out" 2>&1; then
    echo "docker check: $name ... ok ($(( $(date +%s) - t0 )) s)" | tee -a "$DOCKER_TEST_LOG"
    tail -2 "$DOCKER_TEST_DIR/check.out" | sed 's/^/    /' | cut -c1-160
  else
    echo "docker check: $name ... FAILED ($(( $(date +%s) - t0 )) s)" | tee -a "$DOCKER_TEST_LOG"
    sed 's/^/    /' "$DOCKER_TEST_DIR/check.out" | tail -30 | tee -a "$DOCKER_TEST_LOG" >&2
    DOCKER_TEST_FAILED=1
  fi
}

# The health status Docker reports for SERVICE's container.
docker_health() {
  local id; id=$(docker_test_compose ps -q "$1")
  [ -n "$id" ] && "$DOCKER" inspect -f '{{.State.Health.Status}}' "$id"
}

wait_healthy() {
  local svc status
  for svc in "$@"; do
    for _ in $(seq 180); do
      status=$(docker_health "$svc" 2>/dev/null || true)
      [ "$status" = healthy ] && break
      sleep 1
    done
    [ "$status" = healthy ] || { echo "$svc is ${status:-not running}"; docker_test_compose logs --no-color --tail 30 "$svc"; return 1; }
  done
}

docker_api() { curl -fsS --max-time 10 "$@"; }
# json_field KEY...: a field of the JSON on stdin (a number indexes an array).
json_field() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[int(k)] if k.isdigit() else v[k]
print(v)' "$@"
}

check_readyz() { docker_api "http://127.0.0.1:$DOCKER_TEST_HTTP_PORT/readyz"; }

check_demo() {
  docker_test_compose --profile demo run --rm -e BIZOS_DEMO_SCALE=0.02 demo
}

# The owner's bizos command inside the bff image (no port of its own).
docker_bizos() {
  docker_test_compose run --rm --no-deps -T --entrypoint bizos \
    -e BIZOS_DATABASE_URL="postgres://bizos_owner:$T_OWNER@db:5432/bizos" \
    -e BIZOS_JWT_SECRET="$T_JWT" migrate "$@"
}

check_token_me() {
  DOCKER_TEST_TOKEN=$(docker_bizos token --role sales_manager | tail -1)
  local me
  me=$(docker_api -H "Authorization: Bearer $DOCKER_TEST_TOKEN" "http://127.0.0.1:$DOCKER_TEST_HTTP_PORT/api/me")
  echo "$me"
  [ "$(json_field app_role <<<"$me")" = sales_manager ]
}

# Upload (BFF, files volume) → kb.ingest job (worker, the same volume, the
# model) → ready, then found by /api/kb/search.
check_document_ingested() {
  local doc id status found
  printf 'Kebijakan retur barang: pelanggan dapat mengembalikan barang dalam 30 hari dengan nota pembelian.\n' >"$DOCKER_TEST_DIR/retur.txt"
  doc=$(docker_api -H "Authorization: Bearer $DOCKER_TEST_TOKEN" \
    -F title="Kebijakan Retur" -F "file=@$DOCKER_TEST_DIR/retur.txt;type=text/plain" \
    "http://127.0.0.1:$DOCKER_TEST_HTTP_PORT/api/kb/documents")
  id=$(json_field document_id <<<"$doc")
  for _ in $(seq 120); do
    status=$(docker_api -H "Authorization: Bearer $DOCKER_TEST_TOKEN" \
      "http://127.0.0.1:$DOCKER_TEST_HTTP_PORT/api/kb/documents/$id" | json_field status)
    case "$status" in ready|failed) break ;; esac
    sleep 1
  done
  echo "document $id: $status"
  [ "$status" = ready ] || return 1
  found=$(docker_api -H "Authorization: Bearer $DOCKER_TEST_TOKEN" -H 'content-type: application/json' \
    -d '{"query": "berapa hari untuk mengembalikan barang", "k": 3}' \
    "http://127.0.0.1:$DOCKER_TEST_HTTP_PORT/api/kb/search")
  [ "$(json_field items 0 document_id <<<"$found")" = "$id" ]
}

# An analyst through the published port: masked views of the demo tenant,
# never a base table.
check_analyst() {
  local url="postgres://bizos_analyst:$T_ANALYST@127.0.0.1:$DOCKER_TEST_PG_PORT/bizos"
  local n
  n=$(psql "$url" -X -At -v ON_ERROR_STOP=1 -c "select count(*) from analytics.customers")
  echo "analytics.customers: $n rows"
  [ "$n" -gt 0 ] || return 1
  if psql "$url" -X -At -c "select count(*) from public.customers" 2>&1; then
    echo "the analyst read public.customers"; return 1
  fi
}

check_restart_keeps_data() {
  docker_test_compose stop >/dev/null 2>&1
  docker_test_compose up -d >/dev/null 2>&1
  wait_healthy db bff worker || return 1
  check_token_me
}

docker_stack_check() {
  DOCKER_TEST_LOG="$1"
  DOCKER_TEST_FAILED=""
  DOCKER_TEST_DIR=$(mktemp -d)
  DOCKER_TEST_ENV="$DOCKER_TEST_DIR/env"
  local started
  # 32 hex digits; no pipe that closes early (pipefail).
  rand() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
  T_OWNER=$(rand); T_ANALYST=$(rand); T_JWT=$(rand)
  (umask 077; cat >"$DOCKER_TEST_ENV" <<ENV
POSTGRES_PASSWORD=$(rand)
BIZOS_OWNER_PASSWORD=$T_OWNER
BIZOS_APP_PASSWORD=$(rand)
BIZOS_WORKER_PASSWORD=$(rand)
BIZOS_ANALYST_PASSWORD=$T_ANALYST
BIZOS_BI_PASSWORD=$(rand)
BIZOS_JWT_SECRET=$T_JWT
BIZOS_HTTP_PORT=$DOCKER_TEST_HTTP_PORT
BIZOS_PG_PORT=$DOCKER_TEST_PG_PORT
BIZOS_RUST_IMAGE=$BIZOS_RUST_IMAGE
BIZOS_DEBIAN_IMAGE=$BIZOS_DEBIAN_IMAGE
BIZOS_IMAGE_PREFIX=bizos-test
ENV
  )
  # What a crashed run left behind.
  docker_test_down
  started=$(date +%s)
  say "building the images (docker-compose build; the layer cache is kept between runs)"
  docker_check "images build" docker_test_compose build
  say "images built in $(( $(date +%s) - started ))s"
  prune_stale_images
  if [ -z "$DOCKER_TEST_FAILED" ]; then
    docker_check "stack starts, every service healthy" \
      eval 'docker_test_compose up -d && wait_healthy db bff worker'
    docker_check "/readyz on the published port" check_readyz
    docker_check "demo data (profile demo, scale 0.02)" check_demo
    docker_check "a token's /api/me" check_token_me
    docker_check "a document uploaded, ingested by the worker, found" check_document_ingested
    docker_check "an analyst through the published port" check_analyst
    docker_check "data kept across stop and up" check_restart_keeps_data
    [ -z "$DOCKER_TEST_FAILED" ] || docker_test_compose logs --no-color --tail 20 >>"$DOCKER_TEST_LOG" 2>&1 || true
  fi
  docker_test_down
  rm -rf "$DOCKER_TEST_DIR"
  [ -z "$DOCKER_TEST_FAILED" ]
}
