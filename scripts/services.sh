# shellcheck shell=bash
# Sourced by scripts/test.sh and .ci/run: the Redis and PostgreSQL the tests need. A server named
# by KADR_TEST_REDIS / KADR_TEST_PG is used as it is; otherwise a private one is started on a
# free port in a temporary directory (Debian's package installed first when missing and we are
# root) and exported in that variable, and an EXIT trap stops it and removes the directory.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # runuser and useradd, when a bare PATH lacks them

SERVICES_DIR=""
services_stop() {
  [ -n "$SERVICES_DIR" ] || return 0
  if [ -f "$SERVICES_DIR/redis.pid" ]; then
    kill "$(cat "$SERVICES_DIR/redis.pid")" 2>/dev/null || true
  fi
  if [ -f "$SERVICES_DIR/pg/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$SERVICES_DIR/pg" -m immediate -s stop || true
  fi
  rm -rf "$SERVICES_DIR"
}
trap services_stop EXIT
trap 'exit 130' INT  # so that Ctrl-C runs the EXIT trap too
trap 'exit 143' TERM

need_package() {  # need_package PACKAGE VARIABLE: apt-get it as root, else say what to do and stop
  if [ "$(id -u)" != 0 ]; then
    echo "the tests need $1: install it (apt-get install $1) or set $2 to a running server" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null
}

# A server that forks away must not lose its starter to Ctrl-C before its pid file is written, or
# nothing could stop it: the start runs deaf to signals, and the INT trap acts right after it.
uninterrupted() { (trap '' INT TERM; "$@"); }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# initdb refuses to run as root: then the cluster belongs to Debian's postgres user (made by the
# postgresql package; made here if the binaries came another way).
as_pg() {
  # From /: the postgres user may not enter the caller's directory.
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

latest_pg_bin() {  # the newest installed server version's binaries, or nothing
  find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
    | sort -V | tail -n 1 | xargs -r dirname
}

if [ -z "${KADR_TEST_REDIS:-}" ]; then
  command -v redis-server >/dev/null || need_package redis-server KADR_TEST_REDIS
  SERVICES_DIR=${SERVICES_DIR:-$(mktemp -d -t kadr-services-XXXXXX)}
  port=$(free_port)
  uninterrupted redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --dir "$SERVICES_DIR" --pidfile "$SERVICES_DIR/redis.pid" --logfile "$SERVICES_DIR/redis.log"
  for _ in $(seq 50); do  # --daemonize returns before the server listens
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$port" ping >/dev/null || { tail -n 3 "$SERVICES_DIR/redis.log" >&2; exit 1; }
  export KADR_TEST_REDIS="redis://127.0.0.1:$port"
fi

if [ -z "${KADR_TEST_PG:-}" ]; then
  PG_BIN=$(latest_pg_bin)
  [ -n "$PG_BIN" ] || { need_package postgresql KADR_TEST_PG; PG_BIN=$(latest_pg_bin); }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  fi
  SERVICES_DIR=${SERVICES_DIR:-$(mktemp -d -t kadr-services-XXXXXX)}
  mkdir "$SERVICES_DIR/pg"
  [ "$(id -u)" != 0 ] || chown postgres "$SERVICES_DIR" "$SERVICES_DIR/pg"
  port=$(free_port)
  as_pg "$PG_BIN/initdb" -D "$SERVICES_DIR/pg" -U postgres --auth=trust -E UTF8 >/dev/null
  # fsync=off: the cluster is thrown away after the run, and a killed server still recovers
  # every commit from the WAL in the page cache (only a crash of the machine would lose them).
  # It takes a third off the ledger's race tests on PostgreSQL (tests/core/domain/test_credits.py).
  uninterrupted as_pg "$PG_BIN/pg_ctl" -D "$SERVICES_DIR/pg" -l "$SERVICES_DIR/pg.log" -w -s start \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$SERVICES_DIR -c fsync=off"
  as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  export KADR_TEST_PG="postgresql://postgres@127.0.0.1:$port/test"
fi

