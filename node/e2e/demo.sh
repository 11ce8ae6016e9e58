#!/usr/bin/env bash
# make demo: two meshd daemons with fresh homes on loopback, paired with an
# invite; prints `mesh devices` from both sides and stops them cleanly.
set -euo pipefail
bin=$(cd "${1:-bin}" && pwd)
work=$(mktemp -d /tmp/meshwork-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start() { # name
  mkdir -p "$work/$1"
  "$bin/meshd" --home "$work/$1" --no-mdns --log-level warn \
    --listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/udp/0/quic-v1 \
    2> "$work/$1.log" &
  pids+=($!)
  for _ in $(seq 100); do
    "$bin/mesh" --home "$work/$1" status --json >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "demo: meshd $1 did not start:"; cat "$work/$1.log"; exit 1
}
mesh() { local h=$1; shift; "$bin/mesh" --home "$work/$h" "$@"; }

echo "== starting two daemons (homes under $work)"
start laptop
start desktop
echo "== laptop creates a mesh"
mesh laptop init --name laptop
echo "== laptop invites desktop"
code=$(mesh laptop invite --role member --ttl 10m | tail -n 1)
echo "code: $code"
echo "== desktop joins with the code"
mesh desktop join "$code" --name desktop

# Wait (at most 15 s) until each side sees the other online.
for _ in $(seq 150); do
  a=$(mesh laptop devices --json); b=$(mesh desktop devices --json)
  if [ "$(grep -o '"online":true' <<<"$a" | wc -l)" = 2 ] && [ "$(grep -o '"online":true' <<<"$b" | wc -l)" = 2 ]; then
    break
  fi
  sleep 0.1
done
echo; echo "== mesh devices on laptop"; mesh laptop devices
echo; echo "== mesh devices on desktop"; mesh desktop devices
echo
for h in laptop desktop; do
  if [ "$(mesh $h devices --json | grep -o '"connection":"direct"' | wc -l)" != 1 ]; then
    echo "demo: FAILED: $h does not see the other device online over a direct connection"; exit 1
  fi
done
echo "== both devices online, direct connection; stopping the daemons"
