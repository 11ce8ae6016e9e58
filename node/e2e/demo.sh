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
echo "== both devices online, direct connection"

echo; echo "== laptop shares a folder of sample files"
mkdir -p "$work/laptop-docs/photos"
echo "Meshwork demo: this file was written on the laptop." > "$work/laptop-docs/README.txt"
head -c 5000000 /dev/urandom > "$work/laptop-docs/photos/img001.raw"
mesh laptop folder add "$work/laptop-docs" --name docs
# The new folder reaches the desktop with the mesh's catalog, pushed a
# moment later: wait (at most 15 s) until the desktop lists it.
for _ in $(seq 150); do
  mesh desktop folder list | grep -qw docs && break
  sleep 0.1
done
echo "== desktop joins the folder and waits until it is in sync"
mesh desktop folder join docs "$work/desktop-docs"
mesh desktop wait docs --timeout 30s
diff -r "$work/laptop-docs" "$work/desktop-docs" >/dev/null && echo "desktop-docs is identical to laptop-docs"

echo; echo "== a change on the desktop propagates to the laptop"
echo "edited on the desktop at $(date +%T)" >> "$work/desktop-docs/README.txt"
start=$(date +%s%N)
for _ in $(seq 100); do
  cmp -s "$work/desktop-docs/README.txt" "$work/laptop-docs/README.txt" && break
  sleep 0.05
done
if ! cmp -s "$work/desktop-docs/README.txt" "$work/laptop-docs/README.txt"; then
  echo "demo: FAILED: the change did not reach the laptop"; exit 1
fi
echo "laptop has the edit after $(( ($(date +%s%N) - start) / 1000000 )) ms:"
tail -n 1 "$work/laptop-docs/README.txt"
mesh laptop wait docs --timeout 30s >/dev/null # the round that brought the edit completes
echo; echo "== mesh status on laptop"; mesh laptop status
echo; echo "== mesh news on laptop"; mesh laptop news
echo; echo "== stopping the daemons"
