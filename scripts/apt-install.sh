#!/usr/bin/env bash
# apt-install.sh WHAT PACKAGE...: installs Debian packages with apt-get (via
# sudo when not root), for the ensure-* scripts. WHAT names the caller in
# its messages.
set -euo pipefail

what="$1"
shift
if ! command -v apt-get >/dev/null 2>&1; then
	echo "$what: no apt-get here to install $*." >&2
	exit 1
fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "$what: need root (or sudo) to apt-get install $*" >&2
		exit 1
	fi
fi
echo "$what: installing Debian's $*"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
