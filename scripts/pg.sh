#!/usr/bin/env bash
# A private PostgreSQL 15 for apps/tfb, its tests and its benchmark: the
# TechEmpower Framework Benchmarks database in a directory of its own.
#
#   bash scripts/pg.sh start DIR [--tcp]   initdb DIR/data (first time only, with
#                                          the World and Fortune tables), start
#                                          the server, print the conninfo
#   bash scripts/pg.sh stop DIR            stop it (fast shutdown; waits)
#   bash scripts/pg.sh status DIR          exit 0 if running
#   bash scripts/pg.sh psql DIR [args...]  psql on the benchmark database
#   bash scripts/pg.sh pids DIR            the server's process ids (postmaster
#                                          first, then its children), one a line
#
# DIR is created if missing and may be removed after `stop`; as root, its
# parent directories must be searchable by others (chmod o+x; /tmp is).  The server
# listens on a unix socket in DIR (.s.PGSQL.5432) and, with --tcp, also on
# 127.0.0.1 at a free port (the port is kept in DIR/port for later starts).
# The database is hello_world, owned by benchmarkdbuser (password
# benchmarkdbpass), as in the benchmark; local connections are trusted (the
# socket directory is private), TCP needs the password.  DIR/conninfo holds
# the libpq connection string; `start` prints it.
#
# Tables, as the benchmark's create-postgres.sql: World(id 1..10000,
# randomNumber random in 1..10000) and Fortune (the benchmark's 12 rows).
# Unquoted names, so PostgreSQL folds them to world, fortune, randomnumber.
#
# Durability is off (fsync, synchronous_commit, full_page_writes): a throwaway
# database.  Run as root, the server runs as the unprivileged system user
# `postgres` (Debian's package creates it; created here if missing) and DIR is
# handed to it.  Binaries: $PG_BIN, else /usr/lib/postgresql/15/bin.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PORT_DEFAULT=5432

usage() { sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() {
  echo "pg.sh: $*" >&2
  exit 1
}

(($# >= 1)) || {
  usage >&2
  exit 2
}
cmd=$1
shift
case $cmd in -h | --help)
  usage
  exit 0
  ;;
esac
(($# >= 1)) || die "$cmd needs a directory"
mkdir -p "$1"
dir=$(cd "$1" && pwd)
shift

[[ -x $PG_BIN/pg_ctl ]] || die "no PostgreSQL in $PG_BIN (bash scripts/setup.sh test installs it)"

# As root, everything PostgreSQL runs as `postgres`.
as_pg=()
if ((EUID == 0)); then
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres ||
      die "cannot create the postgres user"
  fi
  as_pg=(runuser -u postgres --)
fi
pg() { (cd "$dir" && "${as_pg[@]}" "$@"); }

port() { cat "$dir/port" 2>/dev/null || echo $PORT_DEFAULT; }

running() { pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

schema() {
  cat <<'EOF'
CREATE ROLE benchmarkdbuser LOGIN PASSWORD 'benchmarkdbpass';
CREATE DATABASE hello_world OWNER benchmarkdbuser ENCODING 'UTF8' TEMPLATE template0;
\connect hello_world benchmarkdbuser
BEGIN;
CREATE TABLE World (
  id integer NOT NULL,
  randomNumber integer NOT NULL default 0,
  PRIMARY KEY (id)
);
INSERT INTO World (id, randomNumber)
SELECT x.id, least(floor(random() * 10000 + 1), 10000) FROM generate_series(1, 10000) AS x(id);
CREATE TABLE Fortune (
  id integer NOT NULL,
  message varchar(2048) NOT NULL,
  PRIMARY KEY (id)
);
INSERT INTO Fortune (id, message) VALUES
  (1, 'fortune: No such file or directory'),
  (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
  (3, 'After enough decimal places, nobody gives a damn.'),
  (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
  (5, 'A computer program does what you tell it to do, not what you want it to do.'),
  (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
  (7, 'Any program that runs right is obsolete.'),
  (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
  (9, 'Feature: A bug with seniority.'),
  (10, 'Computers make very fast, very accurate mistakes.'),
  (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
  (12, 'フレームワークのベンチマーク');
COMMIT;
ANALYZE;
EOF
}

init() {
  local tcp=$1
  chmod 755 "$dir"
  if ((EUID == 0)); then
    chown postgres: "$dir"
    runuser -u postgres -- test -w "$dir" ||
      die "user postgres cannot reach $dir: make its parent directories searchable (chmod o+x)"
  fi
  local p=$PORT_DEFAULT listen=''
  if [[ $tcp == 1 ]]; then
    p=$(free_port)
    listen=127.0.0.1
  fi
  pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -n 5 "$dir/initdb.log")"
  cat >>"$dir/data/postgresql.conf" <<EOF
# scripts/pg.sh
port = $p
listen_addresses = '$listen'
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_min_messages = warning
EOF
  echo "$p" >"$dir/port"
}

start() {
  local tcp=0
  while (($#)); do
    case $1 in
      --tcp) tcp=1 ;;
      *) die "start: unknown option '$1'" ;;
    esac
    shift
  done
  local fresh=0
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    init "$tcp"
    fresh=1
  fi
  if ! running; then
    pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null ||
      die "pg_ctl start failed: $(tail -n 5 "$dir/server.log" 2>/dev/null)"
  fi
  if ((fresh)); then
    schema | pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$(port)" -U postgres \
      -d postgres >"$dir/schema.log" 2>&1 || die "schema failed: $(tail -n 5 "$dir/schema.log")"
  fi
  local ci
  ci="host=$dir port=$(port) dbname=hello_world user=benchmarkdbuser"
  echo "$ci" >"$dir/conninfo"
  echo "$ci"
}

stop() {
  if running; then
    pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null ||
      die "pg_ctl stop failed"
  fi
}

case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  status) running ;;
  psql) exec "$PG_BIN/psql" -X -h "$dir" -p "$(port)" -U benchmarkdbuser -d hello_world "$@" ;;
  pids)
    running || die "not running"
    pm=$(head -n 1 "$dir/data/postmaster.pid")
    echo "$pm"
    # Its children, from /proc (no procps needed): field 4 of stat, counted
    # after the command name's closing parenthesis.
    for f in /proc/[0-9]*/stat; do
      line=$(cat "$f" 2>/dev/null) || continue
      read -r _state ppid _ <<<"${line##*) }"
      [[ $ppid == "$pm" ]] && { p=${f#/proc/}; echo "${p%/stat}"; }
    done
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
