#!/usr/bin/env bash
# The end-to-end bench (benches/e2e.rs) with the manager built for an ARM target and run
# under qemu-user; the bench harness and the stand-in engines stay native (their CPU does
# not count). Instructions per event come from cross/qemu-insn.c, a qemu plugin built here
# with the host's cc (valgrind cannot run ARM code).
#   cross/bench.sh aarch64-unknown-linux-musl            # 20,000 trades, every policy
#   EDGECM_E2E_EVENTS=50000 EDGECM_E2E_POLICIES=hash cross/bench.sh armv7-unknown-linux-musleabihf
# Other EDGECM_E2E_* variables as for `cargo bench --bench e2e`. qemu speed is not a target:
# this is for catching 32-bit and alignment surprises, and for instructions per event on ARM.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: cross/bench.sh TARGET; accepted: aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf}
case "$target" in
  aarch64-unknown-linux-musl) qemu="qemu-aarch64 -cpu cortex-a53"; bin=target/$target/release/edgecm ;;
  armv7-unknown-linux-musleabihf) qemu="qemu-arm -cpu cortex-a7"; bin=target/build-std/$target/release/edgecm ;;
  *) echo "cross/bench.sh: unknown target '$target'; accepted: aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf" >&2
     exit 2 ;;
esac
cross/build.sh "$target" --release
mkdir -p target/qemu-insn
plugin=target/qemu-insn/libqemu-insn.so
if [ ! -e "$plugin" ] || [ cross/qemu-insn.c -nt "$plugin" ]; then
  cc -shared -fPIC -O2 -Wall -Werror -o "$plugin" cross/qemu-insn.c
fi
EDGECM_E2E_EVENTS=${EDGECM_E2E_EVENTS:-20000} \
EDGECM_E2E_CALLGRIND=${EDGECM_E2E_CALLGRIND:-20000} \
EDGECM_E2E_MANAGER="$PWD/$bin" EDGECM_E2E_QEMU="$qemu" EDGECM_E2E_QEMU_PLUGIN="$PWD/$plugin" \
  exec cargo bench --locked --bench e2e
