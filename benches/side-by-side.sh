#!/usr/bin/env bash
# edgecm, Fluent Bit and rsyslog side by side on the same generated trades file, each
# forwarding every line to a receiver on 127.0.0.1 with its disk buffering on. One line per
# program, the same figures for the forwarding process alone: events/s until the receiver has
# the last one, CPU-s per M events (utime + stime), peak and idle RSS, bytes written per input
# byte (its own journal or queue), binary size.
#   benches/side-by-side.sh                 # 1,000,000 lines (EDGECM_E2E_EVENTS sets it)
#   FLUENT_BIT_BIN=/path/fluent-bit benches/side-by-side.sh
#   FLUENT_BIT_SRC=/work/.mirror/fluent+fluent-bit/repo benches/side-by-side.sh
#
# edgecm: `cargo bench --bench e2e` for hash on broker (13 typed fields parsed, routed, ESP XML
# to stand-in engines that record every event, the journal fsynced by group commit, every
# event acknowledged), to one engine and to three.
# Fluent Bit: FLUENT_BIT_BIN, else /tmp/peers/bin/fluent-bit, else built from FLUENT_BIT_SRC (an
# extracted source tree or a bare git snapshot of fluent/fluent-bit, e.g. what the workplace's
# `fetch github:fluent/fluent-bit` gives) with ../shared/tools/build_fluentbit.sh; skipped with
# a line saying so when none is there. tail reads the file, filesystem storage with
# storage.sync full and storage.checksum on, http out (json_lines) to the receiver. It wraps
# each line as JSON; it parses nothing.
# rsyslog (Debian's, apt installs it when missing and this runs as root): imfile reads the
# file, omfwd sends each line over TCP, through a disk-assisted action queue (LinkedList with a
# queue file, sync on).
set -euo pipefail
cd "$(dirname "$0")/.."
events=${EDGECM_E2E_EVENTS:-1000000}
command -v python3 >/dev/null || { echo "side-by-side: the receiver needs python3" >&2; exit 1; }

# edgecm: the e2e bench's line, in this script's form.
edgecm_line() {  # engines
  local out
  out=$(EDGECM_E2E_EVENTS=$events EDGECM_E2E_POLICIES=hash EDGECM_E2E_ENGINES=$1 \
    EDGECM_E2E_CALLGRIND=0 EDGECM_E2E_SLOW_MS=0 cargo bench --locked --bench e2e 2>/dev/null)
  python3 - "$1" "$out" <<'PY'
import re, sys
engines, out = sys.argv[1], sys.argv[2]
line = next(l for l in out.splitlines() if l.startswith("e2e hash"))
size = next(l for l in out.splitlines() if l.startswith("binary "))
num = lambda pat, s=line: float(re.search(pat, s).group(1))
print("%-30s %9.0f events/s, %5.2f CPU-s per M events, peak RSS %6.1f MiB, idle RSS %5.1f MiB, %.3f bytes written per input byte, binary %d B" % (
    "edgecm -> %s engine%s" % (engines, "" if engines == "1" else "s"),
    num(r"(\d+) events/s"), num(r"([\d.]+) manager CPU-s"), num(r"peak RSS ([\d.]+)"),
    num(r"idle RSS ([\d.]+)"), num(r"([\d.]+) bytes written"), int(num(r": (\d+) bytes", size))))
PY
}
edgecm_line 1
edgecm_line 3
trades=$PWD/target/tmp/e2e-bench/trades-$events.csv
lines=$(wc -l < "$trades")
bytes=$(stat -c %s "$trades")

work=$(mktemp -d /tmp/side-by-side.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The receiver: `tcp` counts lines on every connection, `http` answers every POST with 200 and
# counts the non-empty lines of its body (one record each); writes the port, then the count
# and the time the last line arrived; gives up after 30 minutes.
receiver() {  # mode dir; the port ends up in dir/port
  python3 - "$1" "$2" "$lines" > "$2/receiver.log" 2>&1 <<'PY' &
import os, selectors, socket, sys, time
mode, work, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(16); srv.setblocking(False)
open(work + "/port.tmp", "w").write(str(srv.getsockname()[1]))
os.rename(work + "/port.tmp", work + "/port")
sel = selectors.DefaultSelector(); sel.register(srv, selectors.EVENT_READ)
bufs, got, deadline = {}, 0, time.time() + 1800
def http_requests(c, buf):
    global got
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return buf
        head = buf[:head_end].decode("latin-1").lower()
        n = 0
        for h in head.split("\r\n"):
            if h.startswith("content-length:"):
                n = int(h.split(":", 1)[1])
        if len(buf) < head_end + 4 + n:
            return buf
        body = buf[head_end + 4:head_end + 4 + n]
        got += sum(1 for l in body.split(b"\n") if l.strip())
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        buf = buf[head_end + 4 + n:]
while got < want and time.time() < deadline:
    for key, _ in sel.select(1.0):
        if key.fileobj is srv:
            c, _ = srv.accept(); c.setblocking(True); c.settimeout(30)
            sel.register(c, selectors.EVENT_READ); bufs[c] = b""
            continue
        c = key.fileobj
        d = c.recv(1 << 20)
        if not d:
            sel.unregister(c); c.close(); bufs.pop(c, None)
            continue
        if mode == "tcp":
            got += d.count(b"\n")
        else:
            bufs[c] = http_requests(c, bufs[c] + d)
open(work + "/done", "w").write(f"{got} {time.time()}\n")
PY
  pids+=($!)
  for _ in $(seq 1 500); do [ -e "$2/port" ] && break; sleep 0.01; done
}

usage() {  # pid: CPU seconds (utime + stime, USER_HZ 100), VmHWM and VmRSS in KiB
  local s; s=$(cut -d')' -f2- "/proc/$1/stat")
  echo "$(echo "$s" | awk '{print ($12 + $13) / 100}') $(awk '/^VmHWM/{print $2}' "/proc/$1/status") $(awk '/^VmRSS/{print $2}' "/proc/$1/status")"
}

# Waits for the receiver to have every line, then prints the program's line.
measure() {  # name pid dir start size log
  local name=$1 pid=$2 dir=$3 start=$4 size=$5 log=$6 got end cpu hwm idle written
  for _ in $(seq 1 180000); do
    [ -e "$dir/done" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "$name stopped:"; tail -20 "$log"; return 1; }
    sleep 0.01
  done
  read -r got end < "$dir/done"
  read -r cpu hwm _ <<< "$(usage "$pid")"
  written=$(awk '/^write_bytes/{print $2}' "/proc/$pid/io")
  sleep 1
  read -r _ _ idle <<< "$(usage "$pid")"
  awk -v name="$name" -v n="$lines" -v got="$got" -v w="$written" -v b="$bytes" -v s="$start" \
      -v e="$end" -v cpu="$cpu" -v hwm="$hwm" -v idle="$idle" -v size="$size" 'BEGIN {
    printf "%-30s %9.0f events/s, %5.2f CPU-s per M events, peak RSS %6.1f MiB, idle RSS %5.1f MiB, %.3f bytes written per input byte, binary %d B (%d of %d lines received)\n",
      name, n / (e - s), cpu / (n / 1e6), hwm / 1024, idle / 1024, w / b, size, got, n }'
}

# Fluent Bit.
fb=${FLUENT_BIT_BIN:-}
if [ -z "$fb" ] && [ -x /tmp/peers/bin/fluent-bit ]; then fb=/tmp/peers/bin/fluent-bit; fi
if [ -z "$fb" ] && [ -n "${FLUENT_BIT_SRC:-}" ]; then
  fb=$(bash ../shared/tools/build_fluentbit.sh "$FLUENT_BIT_SRC" | tail -1)
fi
if [ -n "$fb" ]; then
  d=$work/fluent-bit; mkdir -p "$d/storage"
  cp "$trades" "$d/trades.csv"
  receiver http "$d"
  port=$(cat "$d/port")
  cat > "$d/fluent-bit.conf" <<CONF
[SERVICE]
    flush             1
    log_level         warn
    storage.path      $d/storage
    storage.sync      full
    storage.checksum  on
[INPUT]
    name              tail
    path              $d/trades.csv
    read_from_head    true
    db                $d/tail.db
    storage.type      filesystem
[OUTPUT]
    name              http
    match             *
    host              127.0.0.1
    port              $port
    uri               /
    format            json_lines
    retry_limit       false
CONF
  start=$(date +%s.%N)
  "$fb" -c "$d/fluent-bit.conf" > "$d/fluent-bit.log" 2>&1 &
  p=$!; pids+=("$p")
  stripped=$fb.stripped; [ -e "$stripped" ] || stripped=$fb
  measure "fluent-bit $("$fb" --version 2>/dev/null | head -1 | awk '{print $3}')" "$p" "$d" "$start" \
    "$(stat -c %s "$stripped")" "$d/fluent-bit.log"
  kill "$p" 2>/dev/null || true
else
  echo "fluent-bit: not run (set FLUENT_BIT_BIN, or FLUENT_BIT_SRC to a fluent/fluent-bit snapshot to build it)"
fi

# rsyslog.
if ! command -v rsyslogd >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsyslog >/dev/null 2>&1
  fi
fi
if command -v rsyslogd >/dev/null; then
  d=$work/rsyslog; mkdir -p "$d/spool"
  cp "$trades" "$d/trades.csv"
  receiver tcp "$d"
  port=$(cat "$d/port")
  cat > "$d/rsyslog.conf" <<CONF
global(workDirectory="$d/spool")
module(load="imfile" mode="inotify")
template(name="line" type="string" string="%rawmsg%\n")
ruleset(name="forward") {
  action(type="omfwd" target="127.0.0.1" port="$port" protocol="tcp" template="line"
         queue.type="LinkedList" queue.filename="forward" queue.saveOnShutdown="on"
         queue.syncqueuefiles="on" queue.maxDiskSpace="1g" action.resumeRetryCount="-1")
}
input(type="imfile" file="$d/trades.csv" tag="trades" ruleset="forward")
CONF
  start=$(date +%s.%N)
  rsyslogd -n -f "$d/rsyslog.conf" -i "$d/rsyslogd.pid" 2> "$d/rsyslog.log" &
  p=$!; pids+=("$p")
  measure "rsyslog $(rsyslogd -v | head -1 | awk '{print $2}')" "$p" "$d" "$start" \
    "$(stat -c %s "$(command -v rsyslogd)")" "$d/rsyslog.log"
  kill "$p" 2>/dev/null || true
else
  echo "rsyslog: not run (rsyslogd not found; apt-get install rsyslog)"
fi
echo "on $(nproc) cores of $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
