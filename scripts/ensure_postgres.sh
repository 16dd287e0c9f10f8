#!/usr/bin/env bash
# A private, throw-away PostgreSQL server for the end-to-end tests (Meltano + target-postgres).
#
#   scripts/ensure_postgres.sh start DATA_DIR PORT   # server on 127.0.0.1:PORT, user postgres, trust
#   scripts/ensure_postgres.sh stop DATA_DIR
#
# `start` installs Debian's postgresql when no server is on the machine (root: apt-get), creates
# a new cluster in DATA_DIR (new or empty; as root, its parent must be world-traversable, like
# a fresh `mktemp -d` directory itself: it is handed to the postgres user) and starts it, on
# 127.0.0.1 only, with durability off (test data). Nothing else on the machine is touched: the
# distribution's own cluster, if any, is left as it is. Exit 0 when the server accepts queries.
set -euo pipefail

action=${1:?usage: ensure_postgres.sh start DATA_DIR PORT | stop DATA_DIR}
data_dir=${2:?DATA_DIR missing}

bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then
        echo "$dir"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

# Run a server binary as a user PostgreSQL accepts (it refuses to run as root).
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_server() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "PostgreSQL is not installed and this is not root: cannot apt-get install it." >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "Installing Debian's postgresql (apt-get)..." >&2
    apt-get install -y -q --no-install-recommends postgresql >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends postgresql >&2; }
}

case "$action" in
start)
    port=${3:?PORT missing}
    bin=$(bindir)
    if [[ -z "$bin" ]] || { [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; }; then
        install_server
        bin=$(bindir)
    fi
    [[ -n "$bin" ]] || { echo "No PostgreSQL server binaries found after installing." >&2; exit 1; }
    mkdir -p "$data_dir"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres "$data_dir"
        chmod 700 "$data_dir"
    fi
    if [[ ! -f "$data_dir/PG_VERSION" ]]; then
        if ! out=$(as_owner "$bin/initdb" -D "$data_dir" -U postgres -A trust -E UTF8 \
            --no-locale --no-sync 2>&1); then
            echo "$out" >&2
            exit 1
        fi
    fi
    as_owner "$bin/pg_ctl" -D "$data_dir" -l "$data_dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $data_dir -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off" start >/dev/null \
        || { cat "$data_dir/server.log" >&2; exit 1; }
    ;;
stop)
    bin=$(bindir)
    if [[ -n "$bin" && -f "$data_dir/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" -D "$data_dir" -m fast -w stop >/dev/null || true
    fi
    ;;
*)
    echo "unknown action $action (start or stop)" >&2
    exit 2
    ;;
esac
