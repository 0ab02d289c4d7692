#!/usr/bin/env bash
# Instructions per request of the whole server process (parse the request,
# route, middlewares, read the body, handle, answer), counted by callgrind:
# the same on every run, where load.sh's rates move with whatever else the
# machine runs. Each server runs with one worker under callgrind and is
# sent REQUESTS seed callbacks (benches/callback.lua's body, each a new
# report of one of 1000 streams, signed) over 4 keep-alive connections,
# one at a time, after 300 unmeasured ones. Prints one line per server:
# the bare actix-web handler, the exporter, and BEFORE_BIN if set (another
# build, to compare). The exporter's figure less its in-process share
# (`Pipeline::handle`, printed too) less the bare handler's is what its
# HTTP layer adds. Needs valgrind and python3; takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-3000}
BIN=${EXPORTER_BIN:-target/release/css-push-exporter}
BEFORE_BIN=${BEFORE_BIN:-}
PORT=${PORT:-19450}
OUT=${OUT:-$(mktemp -d)}
for tool in valgrind callgrind_control callgrind_annotate python3; do
  command -v "$tool" >/dev/null || { echo "http_callgrind.sh: $tool is not installed" >&2; exit 1; }
done
cargo build --release -q --bin css-push-exporter --example bare_handler

# send PORT N: N callbacks, each answered 200 (else it fails).
send() {
  python3 - "$@" <<'EOF'
import hashlib, random, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
lua = open('benches/callback.lua').read()
template = lua.split("local template = '")[1].split("'\n")[0]
t = str(int(time.time()) + 600)
sign = hashlib.md5(('bench-key' + t).encode()).hexdigest()
offset = random.randrange(10**12)  # every report new: nothing is a duplicate
conns = [socket.create_connection(('127.0.0.1', port)) for _ in range(4)]
left = [b''] * len(conns)
for i in range(n):
    k = i % len(conns)
    body = template.replace('%d', str(1764000000000 + offset + i), 1).replace('%d', str(i % 1000), 1)
    body = body.replace('%s', t, 1).replace('%s', sign, 1).encode()
    conns[k].sendall(b'POST /callback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'
                     b'Content-Length: %d\r\n\r\n%s' % (len(body), body))
    buf = left[k]
    while b'\r\n\r\n' not in buf:
        buf += conns[k].recv(65536)
    head, buf = buf.split(b'\r\n\r\n', 1)
    if not head.startswith(b'HTTP/1.1 200'):
        sys.exit('http_callgrind.sh: answered %r' % head.split(b'\r\n')[0])
    length = next(int(l.split(b':')[1]) for l in head.split(b'\r\n') if l.lower().startswith(b'content-length:'))
    while len(buf) < length:
        buf += conns[k].recv(65536)
    left[k] = buf[length:]
EOF
}

# measure NAME CMD...: prints NAME's instructions per request (and its
# in-process share, if any).
measure() {
  local name=$1 pid i
  shift
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/$name.out" "$@" >"$OUT/$name.log" 2>&1 &
  pid=$!
  for i in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.3
  done
  send "$PORT" 300
  callgrind_control -i on "$pid" >/dev/null 2>&1
  send "$PORT" "$REQUESTS"
  callgrind_control -i off "$pid" >/dev/null 2>&1
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  callgrind_annotate --inclusive=yes "$OUT/$name.out" 2>/dev/null | awk -v n="$REQUESTS" -v name="$name" '
    /PROGRAM TOTALS/ {gsub(",", "", $1); total = $1}
    /Pipeline::handle \[/ {gsub(",", "", $1); handle = $1}
    END {
      printf "%-9s %8.0f instructions per request", name, total / n
      if (handle) printf " (handling the callback in process: %.0f)", handle / n
      printf "\n"
    }'
}

exporter() {
  measure "$1" "$2" --listen-address "127.0.0.1:$PORT" --callback-key bench-key --max-streams 200000 --log-level error --workers 1
}

echo "== instructions per request, $REQUESTS seed callbacks, one worker (callgrind files in $OUT)"
measure bare target/release/examples/bare_handler "127.0.0.1:$PORT" 1
[ -z "$BEFORE_BIN" ] || exporter before "$BEFORE_BIN"
exporter exporter "$BIN"
