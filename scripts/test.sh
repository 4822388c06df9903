#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs (the package with its test extras,
# Debian's PostgreSQL and bubblewrap), starts a throwaway PostgreSQL cluster on 127.0.0.1 for the real-database
# tests, runs pytest including the slow end-to-end tests, and stops the cluster.
# npm packages for generated backends and test fixtures are installed by the tests themselves, once
# per run, into a shared cache (BIMPL_NPM_CACHE_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# Debian packages the tests use: PostgreSQL (real-database tests), bubblewrap (--sandbox bwrap).
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing from Debian's packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pgdata=$(mktemp -d /tmp/bimpl-pg.XXXXXX)
pgport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() {  # initdb refuses to run as root
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
[ "$(id -u)" -eq 0 ] && chown postgres "$pgdata"
stop_pg() {
  as_pg "$pgbin/pg_ctl -D $pgdata -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$pgdata"
}
trap stop_pg EXIT
as_pg "$pgbin/initdb -D $pgdata -U postgres --auth=trust -E UTF8 --no-sync" >/dev/null
as_pg "$pgbin/pg_ctl -D $pgdata -w -l $pgdata/server.log -o \"-p $pgport -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start" >/dev/null
export BIMPL_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$pgport/postgres"
echo "PostgreSQL $($pgbin/postgres --version | awk '{print $3}') on 127.0.0.1:$pgport"

export BIMPL_NPM_CACHE_DIR="${BIMPL_NPM_CACHE_DIR:-$HOME/.cache/bimpl-tests/npm}"
ruff check src tests benchmarks
ruff format --check src tests benchmarks
python3 -m pytest "$@"
