#!/usr/bin/env bash
# Size and footprint budget for the gateway binaries; CI runs it after the release builds.
# Prints, per target: stripped size, whether it is static, and the peak RSS of a run under
# qemu-user. Fails if a binary is not static or is larger than the hard limit.
#   Goals (issue 7): <= 1 MiB without TLS, <= 2 MiB with; hard limit 3 MiB; RSS goal <= 8 MiB.
# The RSS run is `edgecm check` on our own example config until `edgecm demo` exists. Under
# qemu-user the figure is the emulator process's peak RSS, so it includes qemu's own memory;
# the native x86_64 line is given beside it for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=$((3 * 1024 * 1024))
declare -A BIN=(
  [aarch64-unknown-linux-musl]=target/aarch64-unknown-linux-musl/release/edgecm
  [armv7-unknown-linux-musleabihf]=target/build-std/armv7-unknown-linux-musleabihf/release/edgecm
)
declare -A RUN=([aarch64-unknown-linux-musl]="qemu-aarch64 -cpu cortex-a53" [armv7-unknown-linux-musleabihf]="qemu-arm -cpu cortex-a7")
CMD=(check -cluster-manager file://tests/data/valid.xml)

peak_rss_kib() { # runs "$@", prints its peak RSS in KiB (GNU time, package `time`)
  local out; out=$(mktemp)
  /usr/bin/time -f '%M' -o "$out" "$@" >/dev/null 2>&1
  cat "$out"; rm -f "$out"
}

fail=0
for t in aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf; do
  b=${BIN[$t]}
  [ -x "$b" ] || { echo "footprint: $b missing; build it with cross/build.sh $t --release" >&2; exit 1; }
  size=$(stat -c %s "$b")
  static=no; file "$b" | grep -q 'statically linked' && static=yes
  # shellcheck disable=SC2086
  rss=$(peak_rss_kib ${RUN[$t]} "$b" "${CMD[@]}")
  printf 'footprint %-32s size %8d B (%4d KiB)  static %-3s  peak RSS under qemu (edgecm check) %6d KiB\n' \
    "$t" "$size" $((size / 1024)) "$static" "$rss"
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
if [ -x target/release/edgecm ]; then
  printf 'footprint %-32s size %8d B (%4d KiB)  native peak RSS (edgecm check) %6d KiB\n' x86_64-host \
    "$(stat -c %s target/release/edgecm)" $(($(stat -c %s target/release/edgecm) / 1024)) \
    "$(peak_rss_kib target/release/edgecm "${CMD[@]}")"
fi
exit $fail
