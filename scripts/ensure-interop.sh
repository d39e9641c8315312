#!/usr/bin/env bash
# Makes sure the interoperability tests (internal/interop) can run the
# foreign clients: Debian's python3 with python3-kazoo, and Apache Curator's
# jars with a JDK to compile the Curator worker; installs what is missing
# with apt-get.
set -euo pipefail

need=()
/usr/bin/python3 -c "import kazoo" >/dev/null 2>&1 || need+=(python3-kazoo)
for p in curator-client curator-framework curator-recipes; do
	[[ -f /usr/share/java/$p.jar ]] || need+=("lib$p-java")
done
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
if ((${#need[@]} == 0)); then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-interop: missing ${need[*]} and no apt-get here; the interop tests skip without ZKTEST_REQUIRE=1." >&2
	exit 1
fi
exec "$(dirname "$0")/apt-install.sh" ensure-interop "${need[@]}"
