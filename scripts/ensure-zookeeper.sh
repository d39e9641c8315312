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

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "ensure-zookeeper: need root (or sudo) to apt-get install zookeeper" >&2
		exit 1
	fi
fi
echo "ensure-zookeeper: installing Debian's zookeeper package"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q zookeeper
