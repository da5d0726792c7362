#!/usr/bin/env bash
# Size and footprint budget for the gateway binaries; CI runs it after the release builds.
# Prints, per target: stripped size, whether it is static, and the peak RSS of a run under
# qemu-user. Fails if a binary is not static or is larger than the hard limit.
#   Goals (issue 7): <= 1 MiB without TLS, <= 2 MiB with; hard limit 3 MiB; RSS goal <= 8 MiB.
# The RSS figure is the manager's own VmHWM at the end of `edgecm demo -trades 20000` (the
# stand-in engines are other processes). Under qemu-user that is the emulator process, so it
# includes qemu's own memory: the peak RSS of `edgecm check` under the same qemu is printed
# beside it as the emulator's baseline, and the native x86_64 line for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=$((3 * 1024 * 1024))
declare -A BIN=(
  [aarch64-unknown-linux-musl]=target/aarch64-unknown-linux-musl/release/edgecm
  [armv7-unknown-linux-musleabihf]=target/build-std/armv7-unknown-linux-musleabihf/release/edgecm
)
declare -A RUN=([aarch64-unknown-linux-musl]="qemu-aarch64 -cpu cortex-a53" [armv7-unknown-linux-musleabihf]="qemu-arm -cpu cortex-a7")
# A config that checks (its input files exist): the baseline is a run that exits 0.
CMD=(check -cluster-manager file://../shared/corpus/cm/broker-local.xml)

demo_rss_kib() { # runs `edgecm demo` with "$@" as the command prefix, prints the manager's VmHWM
  local out
  out=$("$@" demo -trades 20000 2>/dev/null) || { echo "footprint: edgecm demo failed: $*" >&2; echo 0; return; }
  sed -n 's/^manager peak RSS \([0-9]*\) KiB.*/\1/p' <<<"$out"
}

peak_rss_kib() { # runs "$@", prints its peak RSS in KiB (GNU time, package `time`)
  local out; out=$(mktemp)
  # GNU time writes "Command exited with non-zero status N" first when it fails: the last line.
  /usr/bin/time -f '%M' -o "$out" "$@" >/dev/null 2>&1 || echo "footprint: $* failed" >&2
  tail -n 1 "$out"; rm -f "$out"
}

fail=0
for t in aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf; do
  b=${BIN[$t]}
  [ -x "$b" ] || { echo "footprint: $b missing; build it with cross/build.sh $t --release" >&2; exit 1; }
  size=$(stat -c %s "$b")
  static=no; file "$b" | grep -q 'statically linked' && static=yes
  # shellcheck disable=SC2086
  base=$(peak_rss_kib ${RUN[$t]} "$b" "${CMD[@]}")
  # shellcheck disable=SC2086
  rss=$(demo_rss_kib ${RUN[$t]} "$b")
  printf 'footprint %-32s size %8d B (%4d KiB)  static %-3s  under qemu: edgecm demo peak RSS %6d KiB, edgecm check %6d KiB\n' \
    "$t" "$size" $((size / 1024)) "$static" "${rss:-0}" "$base"
  [ "${rss:-0}" -gt 0 ] || { echo "footprint: edgecm demo did not run under qemu for $t" >&2; fail=1; }
  [ "$static" = yes ] || { echo "footprint: $b is not statically linked" >&2; fail=1; }
  [ "$size" -le "$LIMIT" ] || { echo "footprint: $b is $size B, over the 3 MiB limit" >&2; fail=1; }
done
notls=target/notls/aarch64-unknown-linux-musl/release/edgecm
if [ -x "$notls" ]; then
  size=$(stat -c %s "$notls")
  printf 'footprint %-32s size %8d B (%4d KiB)  without TLS (--no-default-features)\n' \
    aarch64-unknown-linux-musl "$size" $((size / 1024))
  [ "$size" -le "$LIMIT" ] || { echo "footprint: $notls is $size B, over the 3 MiB limit" >&2; fail=1; }
fi
for small in target/build-std/aarch64-unknown-linux-musl/release/edgecm \
             target/build-std-notls/aarch64-unknown-linux-musl/release/edgecm; do
  [ -x "$small" ] || continue
  size=$(stat -c %s "$small")
  printf 'footprint %-32s size %8d B (%4d KiB)  std built small (EDGECM_SMALL_STD=1)%s\n' \
    aarch64-unknown-linux-musl "$size" $((size / 1024)) "$(case $small in *notls*) echo ', without TLS';; esac)"
  [ "$size" -le "$LIMIT" ] || { echo "footprint: $small is $size B, over the 3 MiB limit" >&2; fail=1; }
done
if [ -x target/release/edgecm ]; then
  printf 'footprint %-32s size %8d B (%4d KiB)  native: edgecm demo peak RSS %6d KiB, edgecm check %6d KiB\n' x86_64-host \
    "$(stat -c %s target/release/edgecm)" $(($(stat -c %s target/release/edgecm) / 1024)) \
    "$(demo_rss_kib target/release/edgecm)" "$(peak_rss_kib target/release/edgecm "${CMD[@]}")"
fi
exit $fail
