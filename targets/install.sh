#!/usr/bin/env bash
# Provisions a gateway with edgecm in one command: the binary, the systemd unit, an example
# config (kept if one is there), then enables and starts the service when systemd runs.
#   sudo bash targets/install.sh [--binary PATH] [--root DIR] [--no-start]
# --binary: the edgecm to install (default: the aarch64 or armv7 static build matching this
#           machine, else target/release/edgecm). --root: install under DIR (an image being
#           prepared; implies --no-start). The state dir /var/lib/edgecm is created by systemd
#           (StateDirectory=edgecm) owned by the service's dynamic user on first start.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
root="" bin="" start=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) bin="$2"; shift 2 ;;
    --root) root="$2"; start=no; shift 2 ;;
    --no-start) start=no; shift ;;
    *) echo "install.sh: unknown argument '$1'; accepted: --binary PATH, --root DIR, --no-start" >&2; exit 2 ;;
  esac
done
if [ -z "$bin" ]; then
  case "$(uname -m)" in
    aarch64|arm64) bin="$repo/target/aarch64-unknown-linux-musl/release/edgecm" ;;
    armv7l|armv7*) bin="$repo/target/build-std/armv7-unknown-linux-musleabihf/release/edgecm" ;;
    *) bin="$repo/target/release/edgecm" ;;
  esac
fi
[ -x "$bin" ] || { echo "install.sh: no binary at $bin; build it (cross/build.sh TARGET --release) or pass --binary" >&2; exit 1; }

install -D -m 0755 "$bin" "$root/usr/local/bin/edgecm"
install -D -m 0644 "$here/systemd/edgecm.service" "$root/etc/systemd/system/edgecm.service"
install -d -m 0755 "$root/etc/edgecm"
if [ ! -e "$root/etc/default/edgecm" ]; then
  install -D -m 0644 "$here/default/edgecm" "$root/etc/default/edgecm"
fi
if [ ! -e "$root/etc/edgecm/cluster.xml" ]; then
  install -m 0644 "$here/examples/cluster.xml" "$root/etc/edgecm/cluster.xml"
  install -m 0644 "$here/examples/sensors-project.xml" "$root/etc/edgecm/sensors-project.xml"
  echo "installed the example config in $root/etc/edgecm: replace the engine hosts with yours"
else
  echo "kept the existing $root/etc/edgecm/cluster.xml"
fi
# The config is checked when the binary runs on this machine (not when preparing a foreign image):
# its input files must exist, its dateformats parse, its orchestration can finish.
checks=unknown
if "$root/usr/local/bin/edgecm" --help >/dev/null 2>&1; then
  if "$root/usr/local/bin/edgecm" check -cluster-manager "$root/etc/edgecm/cluster.xml" >/dev/null; then
    checks=yes
    echo "config $root/etc/edgecm/cluster.xml checks"
  else
    checks=no
    echo "config $root/etc/edgecm/cluster.xml does not check yet (above: what and where); edit it, then: edgecm check -cluster-manager /etc/edgecm/cluster.xml"
  fi
fi
echo "installed $root/usr/local/bin/edgecm and $root/etc/systemd/system/edgecm.service"
example=no
if grep -q 'example\.com' "$root/etc/edgecm/cluster.xml" 2>/dev/null; then
  example=yes
  echo "the config still names the example hosts (*.example.com): put your engines in $root/etc/edgecm/cluster.xml"
fi
if [ "$start" = yes ] && { [ "$checks" = no ] || [ "$example" = yes ]; }; then
  echo "not started; once the config checks and names your engines: systemctl daemon-reload && systemctl enable --now edgecm"
elif [ "$start" = yes ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now edgecm
  systemctl --no-pager status edgecm | head -5
else
  echo "start it with: systemctl daemon-reload && systemctl enable --now edgecm"
fi
