#!/usr/bin/env bash
# edgecm and rsyslog side by side on the same trades file, each forwarding every line to a
# receiver on 127.0.0.1 with its disk buffering on, each line printing the same figures for
# the forwarding process alone: lines/s, CPU-s per M lines, peak and idle RSS.
#   benches/side-by-side.sh               # 1,000,000 lines (EDGECM_E2E_EVENTS sets it)
# edgecm: `cargo bench --bench e2e` for hash on broker (XML to three stand-in engines, the
# journal fsynced by group commit, every event acknowledged). rsyslog (Debian's 8.2302, apt
# installs it when missing and this runs as root): imfile reads the file, omfwd sends each line
# over TCP, through a disk-assisted action queue (LinkedList with a queue file, sync on),
# the setup the issue quotes. Fluent Bit and Vector are not in Debian's registry here, so
# they are not run; the README quotes their figures.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${EDGECM_E2E_EVENTS:-1000000}
if ! command -v rsyslogd >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsyslog >/dev/null
  else
    echo "side-by-side: rsyslogd not found; install rsyslog (apt-get install rsyslog)" >&2
    exit 1
  fi
fi
command -v python3 >/dev/null || { echo "side-by-side: the receiver needs python3" >&2; exit 1; }

EDGECM_E2E_EVENTS=$events EDGECM_E2E_POLICIES=hash EDGECM_E2E_CALLGRIND=0 EDGECM_E2E_SLOW_MS=0 \
  cargo bench --locked --bench e2e 2>/dev/null | grep '^e2e' | sed 's/^e2e hash      /edgecm /'
trades=$PWD/target/tmp/e2e-bench/trades-$events.csv
lines=$(wc -l < "$trades")

work=$(mktemp -d /tmp/side-by-side.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/spool"
cp "$trades" "$work/trades.csv"

# The receiver: counts lines on every connection, writes the port, then the time the last
# line arrived; gives up after 30 minutes.
python3 - "$work" "$lines" <<'PY' &
import socket, sys, time, selectors
work, want = sys.argv[1], int(sys.argv[2])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8); srv.setblocking(False)
open(work + "/port.tmp", "w").write(str(srv.getsockname()[1]))
import os; os.rename(work + "/port.tmp", work + "/port")
sel = selectors.DefaultSelector(); sel.register(srv, selectors.EVENT_READ)
got, deadline = 0, time.time() + 1800
while got < want and time.time() < deadline:
    for key, _ in sel.select(1.0):
        if key.fileobj is srv:
            c, _ = srv.accept(); c.setblocking(False); sel.register(c, selectors.EVENT_READ)
        else:
            d = key.fileobj.recv(1 << 20)
            if not d:
                sel.unregister(key.fileobj); key.fileobj.close()
            got += d.count(b"\n")
open(work + "/done", "w").write(f"{got} {time.time()}\n")
PY
pids+=($!)
for _ in $(seq 1 500); do [ -e "$work/port" ] && break; sleep 0.01; done
port=$(cat "$work/port")

cat > "$work/rsyslog.conf" <<CONF
global(workDirectory="$work/spool")
module(load="imfile" mode="inotify")
template(name="line" type="string" string="%rawmsg%\n")
ruleset(name="forward") {
  action(type="omfwd" target="127.0.0.1" port="$port" protocol="tcp" template="line"
         queue.type="LinkedList" queue.filename="forward" queue.saveOnShutdown="on"
         queue.syncqueuefiles="on" queue.maxDiskSpace="1g" action.resumeRetryCount="-1")
}
input(type="imfile" file="$work/trades.csv" tag="trades" ruleset="forward")
CONF
start=$(date +%s.%N)
rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslogd.pid" 2> "$work/rsyslog.log" &
rs=$!
pids+=("$rs")
usage() {  # CPU seconds (utime + stime, USER_HZ 100), VmHWM and VmRSS in KiB
  local s; s=$(cut -d')' -f2- "/proc/$1/stat")
  echo "$(echo "$s" | awk '{print ($12 + $13) / 100}') $(awk '/^VmHWM/{print $2}' "/proc/$1/status") $(awk '/^VmRSS/{print $2}' "/proc/$1/status")"
}
for _ in $(seq 1 180000); do
  [ -e "$work/done" ] && break
  kill -0 "$rs" 2>/dev/null || { echo "rsyslogd stopped:"; cat "$work/rsyslog.log"; exit 1; }
  sleep 0.01
done
read -r got end < "$work/done"
read -r cpu hwm _ <<< "$(usage "$rs")"
written=$(awk '/^write_bytes/{print $2}' "/proc/$rs/io")
sleep 1
read -r _ _ idle <<< "$(usage "$rs")"
bytes=$(stat -c %s "$trades")
awk -v n="$lines" -v got="$got" -v w="$written" -v b="$bytes" -v s="$start" -v e="$end" -v cpu="$cpu" -v hwm="$hwm" -v idle="$idle" 'BEGIN {
  printf "rsyslog %d lines (%d received): %9.0f lines/s, %.2f CPU-s per M lines, peak RSS %.1f MiB, idle RSS %.1f MiB, %.3f bytes written per input byte (%.2f s)\n",
    n, got, n / (e - s), cpu / (n / 1e6), hwm / 1024, idle / 1024, w / b, e - s }'
echo "rsyslog version $(rsyslogd -v | head -1 | awk '{print $2}'), imfile -> omfwd TCP, disk-assisted action queue"
