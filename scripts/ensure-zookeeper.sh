#!/usr/bin/env bash
# Makes sure the tests can reach a ZooKeeper: an external ensemble
# (ZKTEST_SERVERS), an unpacked release (ZOOKEEPER_HOME), or Debian's
# zookeeper package, which this script installs with apt-get when missing.
set -euo pipefail

if [[ -n "${ZKTEST_SERVERS:-}" ]]; then
	echo "ensure-zookeeper: using external ensemble ZKTEST_SERVERS=${ZKTEST_SERVERS}"
	exit 0
fi
if [[ -n "${ZOOKEEPER_HOME:-}" ]]; then
	echo "ensure-zookeeper: using ZOOKEEPER_HOME=${ZOOKEEPER_HOME}"
	exit 0
fi
if [[ -f /usr/share/java/zookeeper.jar ]] && command -v java >/dev/null 2>&1; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-zookeeper: no ZooKeeper found and no apt-get here." >&2
	echo "  Set ZOOKEEPER_HOME to an unpacked Apache ZooKeeper release (https://zookeeper.apache.org/releases.html)," >&2
	echo "  or start docker/compose.yaml and set ZKTEST_SERVERS=127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183." >&2
	exit 1
fi

exec "$(dirname "$0")/apt-install.sh" ensure-zookeeper zookeeper
