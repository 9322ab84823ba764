# Sourced by script/*: a private PostgreSQL cluster for development and tests.
#
# saga_pg_start: when DATABASE_URL is set, uses it as it is. Otherwise initialises a
#   cluster under .local/pg (as the `postgres` OS user when run as root: PostgreSQL refuses
#   to run as root), listening on 127.0.0.1 on a free port, creates the `saga` database and
#   exports DATABASE_URL. Reuses the cluster when it is already running.
#   Sets SAGA_PG_STARTED=1 when this call started the server.
# saga_pg_stop: stops the private cluster (no-op for an external DATABASE_URL).

SAGA_PG_DB=${SAGA_PG_DB:-saga}

saga_pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { echo "pg: PostgreSQL server binaries not found (run script/setup)" >&2; return 1; }
  echo "$d"
}

# Runs a command as the cluster's owner.
saga_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

saga_pg_root() {
  local root
  root="$(pwd)/.local/pg"
  mkdir -p "$root"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$root"
    # The postgres user must be able to reach the folder; when the checkout lives in a
    # private home directory it cannot, so fall back to a folder of its own under /var/tmp.
    if ! runuser -u postgres -- test -w "$root"; then
      root="/var/tmp/saga-pg-$(pwd | md5sum | cut -c1-12)"
      mkdir -p "$root" && chown postgres:postgres "$root"
    fi
  fi
  echo "$root"
}

saga_pg_free_port() {
  local p
  for p in $(seq 54330 54430); do
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "pg: no free port in 54330-54430" >&2
  return 1
}

saga_pg_start() {
  SAGA_PG_STARTED=0
  if [ -n "${DATABASE_URL:-}" ] && [ -z "${SAGA_PG_DATA:-}" ]; then
    echo "pg: using DATABASE_URL from the environment"
    return 0
  fi
  local bin root data port
  bin=$(saga_pg_bindir) || return 1
  root=$(saga_pg_root)
  data="$root/data"
  if [ ! -s "$data/PG_VERSION" ]; then
    echo "pg: initialising a private cluster in $data"
    saga_pg_as_owner "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-locale \
      >"$root/initdb.log" 2>&1 || { cat "$root/initdb.log" >&2; return 1; }
  fi
  if saga_pg_as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 && [ -s "$root/port" ]; then
    port=$(cat "$root/port")
  else
    port=$(saga_pg_free_port) || return 1
    saga_pg_as_owner "$bin/pg_ctl" -D "$data" -w -t 60 -l "$root/server.log" \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $root -c max_connections=300 -c shared_buffers=256MB" \
      start >/dev/null || { tail -n 20 "$root/server.log" >&2; return 1; }
    echo "$port" | saga_pg_as_owner tee "$root/port" >/dev/null
    SAGA_PG_STARTED=1
    echo "pg: started on 127.0.0.1:$port"
  fi
  if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$SAGA_PG_DB'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$SAGA_PG_DB"
  fi
  export DATABASE_URL="postgresql://postgres@127.0.0.1:$port/$SAGA_PG_DB"
  export SAGA_PG_DATA="$data"
}

saga_pg_stop() {
  [ -n "${SAGA_PG_DATA:-}" ] || return 0
  local bin
  bin=$(saga_pg_bindir) || return 0
  saga_pg_as_owner "$bin/pg_ctl" -D "$SAGA_PG_DATA" -w -m fast stop >/dev/null 2>&1 || true
  unset DATABASE_URL SAGA_PG_DATA
}
