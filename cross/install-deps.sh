#!/usr/bin/env bash
# Installs, idempotently, everything needed to build static aarch64/armv7 binaries and run
# their tests under qemu-user, without Docker, on Debian 12 x86_64 as root (CI and developers).
# Recipe and reasons: design/CROSS.md (verified there). A second run takes well under a second.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=300 -qq)
MUSL_ARMHF=${MUSL_ARMHF:-/opt/musl-armhf}   # private copy of Debian's musl-dev:armhf
MUSL_ARM64=${MUSL_ARM64:-/opt/musl-arm64}   # private copy of Debian's musl-dev:arm64 (headers for ring)

# 1. Debian packages (amd64 only; no dpkg multiarch, see step 3). file and time: the static
#    check and the peak-RSS figure in cross/footprint.sh; systemd: systemd-analyze for the unit.
pkgs=(qemu-user qemu-user-binfmt gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu libc6-dev-armhf-cross file time systemd)
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

# 3. musl C libraries: Debian's musl-dev for armhf and arm64 fetched with a throw-away apt state
#    and unpacked under $MUSL_ARMHF / $MUSL_ARM64, each with a musl-gcc wrapper around Debian's
#    cross gcc. armhf: the C library, crt objects and linker for the build-std armv7 binary.
#    arm64: only C headers for the C that ring (TLS) compiles; Rust links aarch64 with rust-lld.
#    (`dpkg --add-architecture` breaks every later plain `apt-get update` on this mirror:
#    CROSS.md pitfall P6.)
musl_dev() { # ARCH DEBIAN-TRIPLE PREFIX WRAPPER-NAME GCC
  local arch=$1 triple=$2 prefix=$3 wrapper=$4 gcc=$5
  [ -f "$prefix/lib/libc.a" ] && return 0
  local tmp; tmp=$(mktemp -d); mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"; : > "$tmp/status"
  local A=(-o APT::Architecture=$arch -o APT::Architectures::=$arch -o Dir::State::Lists="$tmp/lists"
     -o Dir::State::status="$tmp/status" -o Dir::Cache="$tmp/cache")
  "${APT[@]}" "${A[@]}" update 2>/dev/null || true        # the main archive is enough
  (cd "$tmp" && "${APT[@]}" "${A[@]}" download musl-dev 2>/dev/null)
  rm -rf "$prefix.new"; dpkg-deb -x "$tmp"/musl-dev_*_$arch.deb "$prefix.new"
  local r="$prefix.new"; mkdir -p "$r/bin"
  ln -s usr/lib/$triple "$r/lib"
  ln -s usr/include/$triple "$r/include"
  # Debian's musl-gcc specs + wrapper, re-pointed at the private prefix
  sed "s#/usr/lib/$triple#$prefix/lib#g; s#/usr/include/$triple#$prefix/include#g" \
      "$r/usr/lib/$triple/musl-gcc.specs" > "$r/musl-gcc.specs"
  printf '#!/bin/sh\nexec "${REALGCC:-%s}" "$@" -specs "%s/musl-gcc.specs"\n' "$gcc" "$prefix" > "$r/bin/$wrapper"
  chmod +x "$r/bin/$wrapper"
  # std's `unwind` crate links `-l static=unwind`: the cross gcc's libgcc_eh.a provides _Unwind_*
  ln -s "$($gcc -print-file-name=libgcc_eh.a)" "$r/usr/lib/$triple/libunwind.a"
  rm -rf "$prefix"; mv "$r" "$prefix"; rm -rf "$tmp"
}
musl_dev armhf arm-linux-musleabihf "$MUSL_ARMHF" arm-linux-musleabihf-gcc arm-linux-gnueabihf-gcc
musl_dev arm64 aarch64-linux-musl "$MUSL_ARM64" aarch64-linux-musl-gcc aarch64-linux-gnu-gcc

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
