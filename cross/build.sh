#!/usr/bin/env bash
# Build (or test) edgecm for an ARM gateway target without Docker, so nobody has to remember
# flags:
#   cross/build.sh aarch64-unknown-linux-musl --release        # build
#   cross/build.sh armv7-unknown-linux-musleabihf --release
#   cross/build.sh aarch64-unknown-linux-musl test             # run the test suite under qemu
#   cross/bench.sh aarch64-unknown-linux-musl                # the e2e bench, manager under qemu
#   EDGECM_SMALL_STD=1 cross/build.sh aarch64-unknown-linux-musl --release   # std built small
# Extra arguments go to cargo. Binaries land in target/<triple>/ (aarch64) and
# target/build-std/<triple>/ (armv7, and aarch64 with EDGECM_SMALL_STD=1). Needs
# cross/install-deps.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: cross/build.sh TARGET [build|test|bench] [cargo args]}
shift
cmd=build
if [ "${1:-}" = test ] || [ "${1:-}" = build ] || [ "${1:-}" = bench ]; then cmd=$1; shift; fi
# Tests under qemu use the `emulated` profile (Cargo.toml: dev's checks, optimised) unless a
# profile is given: emulated debug code is about 10x slower (CROSS.md).
if [ "$cmd" = test ] && [[ " $* " != *" --release "* && " $* " != *" --profile"* ]]; then
  set -- --profile emulated "$@"
fi
# std built from rust-src without backtrace symbolisation and with its size-optimised
# algorithms: about 270 KB less on aarch64. A panic still logs its message and file:line; what
# goes is naming the frames of a backtrace, which a stripped binary cannot do anyway (README,
# "Size"). Unstable flags, hence RUSTC_BOOTSTRAP, only with build-std and in its own target dir:
# proc-macro2 rebuilds whenever RUSTC_BOOTSTRAP flips (CROSS.md pitfall P7).
small_std=(-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size)
# Its binaries go to target/build-std/ unless a --target-dir is given.
dir=(--target-dir target/build-std)
[[ " $* " == *" --target-dir "* ]] && dir=()
case "$target" in
  aarch64-unknown-linux-musl)
    # ring (TLS) compiles C: musl headers from /opt/musl-arm64 (cross/install-deps.sh). An env
    # variable, not .cargo/config.toml, so cross-rs images keep their own C compiler.
    cc="${CC_aarch64_unknown_linux_musl:-/opt/musl-arm64/bin/aarch64-linux-musl-gcc}"
    if [ "${EDGECM_SMALL_STD:-}" = 1 ]; then
      # Opt-in here (the prebuilt std needs no unstable flag).
      exec env CC_aarch64_unknown_linux_musl="$cc" RUSTC_BOOTSTRAP=1 cargo "$cmd" --locked \
        "${small_std[@]}" --target "$target" "${dir[@]}" "$@"
    fi
    exec env CC_aarch64_unknown_linux_musl="$cc" cargo "$cmd" --locked --target "$target" "$@" ;;
  armv7-unknown-linux-musleabihf)
    # No prebuilt std for this target: std is built from rust-src anyway, the small way.
    exec env RUSTC_BOOTSTRAP=1 cargo --config cross/armv7-musl-host.toml "$cmd" --locked \
      "${small_std[@]}" --target "$target" "${dir[@]}" "$@" ;;
  *)
    echo "cross/build.sh: unknown target '$target'; accepted: aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf" >&2
    exit 2 ;;
esac
