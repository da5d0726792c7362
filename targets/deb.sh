#!/usr/bin/env bash
# Builds a Debian package of edgecm for a gateway, with dpkg-deb alone (no cargo-deb, no
# debhelper): the static binary as /usr/bin/edgecm, the systemd unit, the example config as
# conffiles (an edited /etc/edgecm/cluster.xml survives upgrades), and maintainer scripts that
# reload systemd and stop the service on removal. Provision a gateway with:
#   dpkg -i edgecm_VERSION_arm64.deb && systemctl enable --now edgecm
# Usage:
#   targets/deb.sh aarch64-unknown-linux-musl [--out DIR]       # -> DIR/edgecm_V_arm64.deb
#   targets/deb.sh armv7-unknown-linux-musleabihf [--out DIR]   # -> DIR/edgecm_V_armhf.deb
#   targets/deb.sh --binary PATH --arch ARCH [--out DIR]        # any binary (tests use amd64)
# Build the binary first (cross/build.sh TARGET --release). DIR defaults to target/deb.
# EDGECM_DEB_COMPRESSION: xz (default), gzip, zstd or none (the test uses none: faster).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin="" arch="" out="$repo/target/deb"
while [ $# -gt 0 ]; do
  case "$1" in
    aarch64-unknown-linux-musl) bin="$repo/target/aarch64-unknown-linux-musl/release/edgecm"; arch=arm64; shift ;;
    armv7-unknown-linux-musleabihf) bin="$repo/target/build-std/armv7-unknown-linux-musleabihf/release/edgecm"; arch=armhf; shift ;;
    --binary) bin="$2"; shift 2 ;;
    --arch) arch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "deb.sh: unknown argument '$1'; accepted: aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf, --binary PATH, --arch ARCH, --out DIR" >&2; exit 2 ;;
  esac
done
[ -n "$bin" ] && [ -n "$arch" ] || { echo "deb.sh: name a target, or --binary and --arch" >&2; exit 2; }
[ -x "$bin" ] || { echo "deb.sh: no binary at $bin; build it with cross/build.sh TARGET --release" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)

root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$bin" "$root/usr/bin/edgecm"
install -d "$root/lib/systemd/system"
sed 's|/usr/local/bin/edgecm|/usr/bin/edgecm|g' "$here/systemd/edgecm.service" > "$root/lib/systemd/system/edgecm.service"
chmod 0644 "$root/lib/systemd/system/edgecm.service"
install -D -m 0644 "$here/examples/cluster.xml" "$root/etc/edgecm/cluster.xml"
install -D -m 0644 "$here/examples/sensors-project.xml" "$root/etc/edgecm/sensors-project.xml"
install -D -m 0644 "$here/default/edgecm" "$root/etc/default/edgecm"
install -d "$root/usr/share/doc/edgecm"
cat > "$root/usr/share/doc/edgecm/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: edgecm
Files: *
Copyright: the edgecm developers
License: see the edgecm source; the static binary links Rust crates under
 MIT and/or Apache-2.0 (README, "Dependencies").
COPYRIGHT
printf 'edgecm (%s) stable; urgency=medium\n\n  * Release %s; what changed is in the project history.\n\n -- edgecm developers <edgecm@localhost>  %s\n' \
  "$version" "$version" "$(date -R -u -d @"${SOURCE_DATE_EPOCH:-0}")" | gzip -9n > "$root/usr/share/doc/edgecm/changelog.gz"
chmod 0644 "$root/usr/share/doc/edgecm/copyright" "$root/usr/share/doc/edgecm/changelog.gz"
install -d "$root/DEBIAN"
size_kib=$(du -k -s --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: edgecm
Version: $version
Architecture: $arch
Maintainer: edgecm developers <edgecm@localhost>
Installed-Size: $size_kib
Section: net
Priority: optional
Description: edge Cluster Manager for SAS Event Stream Processing
 Reads local file and socket sources, routes their events to a grid of ESP
 engines, and keeps every accepted event on flash until an engine has
 acknowledged it. One static binary, so nothing in Depends: it needs no
 shared library; the state lives in /var/lib/edgecm.
EOF
printf '/etc/edgecm/cluster.xml\n/etc/edgecm/sensors-project.xml\n/etc/default/edgecm\n' > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  if systemctl is-active --quiet edgecm; then systemctl restart edgecm || true; fi
fi
if [ "$1" = configure ]; then
  # As targets/install.sh: check the config, say what is missing; never start it here.
  if /usr/bin/edgecm check -cluster-manager /etc/edgecm/cluster.xml >/dev/null; then
    if grep -q 'example\.com' /etc/edgecm/cluster.xml; then
      echo "edgecm: /etc/edgecm/cluster.xml still names the example hosts; put your engines in it, then: systemctl enable --now edgecm"
    else
      echo "edgecm: the config checks; start it with: systemctl enable --now edgecm"
    fi
  else
    echo "edgecm: /etc/edgecm/cluster.xml does not check yet (above: what and where); fix it, then: systemctl enable --now edgecm"
  fi
fi
EOF
cat > "$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl disable --now edgecm || true
fi
EOF
cat > "$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
# The journal in /var/lib/edgecm may hold events not yet delivered: kept, also on purge.
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
mkdir -p "$out"
deb="$out/edgecm_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${EDGECM_DEB_COMPRESSION:-xz}" --build "$root" "$deb" >/dev/null
echo "deb $deb $(stat -c %s "$deb") bytes"
