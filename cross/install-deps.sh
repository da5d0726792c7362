#!/usr/bin/env bash
# Installs, idempotently, everything needed to build static aarch64/armv7 binaries and run
# their tests under qemu-user, without Docker, on Debian 12 x86_64 as root (CI and developers).
# Recipe and reasons: design/CROSS.md (verified there). A second run takes well under a second.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=300 -qq)
MUSL_ARMHF=${MUSL_ARMHF:-/opt/musl-armhf}   # private copy of Debian's musl-dev:armhf

# 1. Debian packages (amd64 only; no dpkg multiarch, see step 3). file and time: the static
#    check and the peak-RSS figure in cross/footprint.sh; systemd: systemd-analyze for the unit.
pkgs=(qemu-user qemu-user-binfmt gcc-arm-linux-gnueabihf libc6-dev-armhf-cross file time systemd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  "${APT[@]}" update
  "${APT[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Rust targets. armv7 musl has no downloadable rust-std (404), so it is built from
#    rust-src with -Zbuild-std. Never `rustup update` here: stay on the installed toolchain.
rustup target add aarch64-unknown-linux-musl >/dev/null
rustup component add rust-src >/dev/null

# 3. musl C library for armhf: Debian's musl-dev:armhf fetched with a throw-away apt state and
#    unpacked under $MUSL_ARMHF. (`dpkg --add-architecture armhf` breaks every later plain
#    `apt-get update` on this mirror: CROSS.md pitfall P6.)
if [ ! -f "$MUSL_ARMHF/lib/libc.a" ]; then
  tmp=$(mktemp -d); mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"; : > "$tmp/status"
  A=(-o APT::Architecture=armhf -o APT::Architectures::=armhf -o Dir::State::Lists="$tmp/lists"
     -o Dir::State::status="$tmp/status" -o Dir::Cache="$tmp/cache")
  "${APT[@]}" "${A[@]}" update 2>/dev/null || true        # the main archive is enough
  (cd "$tmp" && "${APT[@]}" "${A[@]}" download musl-dev 2>/dev/null)
  rm -rf "$MUSL_ARMHF.new"; dpkg-deb -x "$tmp"/musl-dev_*_armhf.deb "$MUSL_ARMHF.new"
  r="$MUSL_ARMHF.new"; mkdir -p "$r/bin"
  ln -s usr/lib/arm-linux-musleabihf "$r/lib"
  ln -s usr/include/arm-linux-musleabihf "$r/include"
  # Debian's musl-gcc specs + wrapper, re-pointed at the private prefix
  sed "s#/usr/lib/arm-linux-musleabihf#$MUSL_ARMHF/lib#g; s#/usr/include/arm-linux-musleabihf#$MUSL_ARMHF/include#g" \
      "$r/usr/lib/arm-linux-musleabihf/musl-gcc.specs" > "$r/musl-gcc.specs"
  printf '#!/bin/sh\nexec "${REALGCC:-arm-linux-gnueabihf-gcc}" "$@" -specs "%s/musl-gcc.specs"\n' "$MUSL_ARMHF" > "$r/bin/arm-linux-musleabihf-gcc"
  chmod +x "$r/bin/arm-linux-musleabihf-gcc"
  # std's `unwind` crate links `-l static=unwind`: the cross gcc's libgcc_eh.a provides _Unwind_*
  ln -s "$(arm-linux-gnueabihf-gcc -print-file-name=libgcc_eh.a)" "$r/usr/lib/arm-linux-musleabihf/libunwind.a"
  rm -rf "$MUSL_ARMHF"; mv "$r" "$MUSL_ARMHF"; rm -rf "$tmp"
fi

# 4. binfmt_misc: tests that exec the edgecm binary (CARGO_BIN_EXE_edgecm) need the kernel to
#    run ARM executables through qemu; cargo's `runner` only covers the test binary itself.
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
if [ -w /proc/sys/fs/binfmt_misc/register ]; then
  for a in arm aarch64; do
    [ -e /proc/sys/fs/binfmt_misc/qemu-$a ] || grep -v '^#' /usr/lib/binfmt.d/qemu-$a.conf > /proc/sys/fs/binfmt_misc/register
  done
else
  echo "install-deps: binfmt_misc not writable; ARM binaries run only via qemu-arm/qemu-aarch64" >&2
fi
