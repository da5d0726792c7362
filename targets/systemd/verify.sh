#!/usr/bin/env bash
# Checks targets/systemd/edgecm.service with `systemd-analyze verify` in a scratch root
# (CROSS.md §7): the unit tree of this machine, the unit, and a binary at ExecStart.
# Any output on stderr fails, since verify reports unknown keys and bad values as warnings.
# Usage: bash targets/systemd/verify.sh [BINARY]   (default: target/release/edgecm)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../target/release/edgecm}"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found (apt-get install systemd)" >&2; exit 1; }
test -x "$bin" || { echo "no binary at $bin; build it first" >&2; exit 1; }
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/usr/local/bin" "$root/bin"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$here/edgecm.service" "$root/etc/systemd/system/"
cp "$bin" "$root/usr/local/bin/edgecm"
cp /bin/kill "$root/bin/kill"
rc=0
systemd-analyze verify --man=no --root="$root" edgecm.service 2>"$root/err.txt" || rc=$?
if [ "$rc" -ne 0 ] || [ -s "$root/err.txt" ]; then
  cat "$root/err.txt" >&2
  echo "systemd-analyze verify: edgecm.service is not clean (rc $rc)" >&2
  exit 1
fi
echo "systemd-analyze verify: edgecm.service clean"
systemd-analyze security --offline=yes "$here/edgecm.service" 2>/dev/null | tail -1 || true
