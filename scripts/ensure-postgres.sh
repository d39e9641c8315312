#!/usr/bin/env bash
# Makes sure the fence tests can run PostgreSQL: an external server
# (FENCE_PG_DSN), or Debian's postgresql package binaries, which this script
# installs with apt-get when missing. No service is started: the tests start
# their own throwaway server from /usr/lib/postgresql/<version>/bin.
set -euo pipefail

if [[ -n "${FENCE_PG_DSN:-}" ]]; then
	echo "ensure-postgres: using external server FENCE_PG_DSN"
	exit 0
fi
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
	exit 0
fi
if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-postgres: no PostgreSQL found and no apt-get here." >&2
	echo "  Install PostgreSQL (initdb and postgres on PATH)," >&2
	echo "  or set FENCE_PG_DSN to a server's DSN, e.g. postgres://user:pass@127.0.0.1:5432/db." >&2
	exit 1
fi

exec "$(dirname "$0")/apt-install.sh" ensure-postgres postgresql
