#!/bin/bash
# bench/run.sh: measure `turku-storage serve` against OpenSSH's sshd with
# `turku-storage ping` as the forced command, on loopback, in one go.
# Not part of `go test ./...` or CI. See docs/benchmarks.md.
#
#   bench/run.sh [--quick] [--only a,b,c,d,e,f,g,h] [--out DIR] [--bin TURKU_STORAGE]
#                [--serve-env 'GOGC=400'] [--hold] [--agents N] [--window D] [--scale N]
#
# (h), the night, runs only when named (--only h): --agents agents
# (1,000; 200 with --quick) arrive over --window (10m; 2m with --quick),
# two nights per side; then the round trip with 1,000 and --scale
# machines registered (100,000; 0 skips it) and the idle memory.
#
# --bin measures a prebuilt turku-storage (e.g. an older commit) instead of
# building ./cmd/turku-storage; --serve-env passes extra environment to
# serve only; --hold sets both servers up and waits (for profiling).
#
# Needs: go, rsync, openssh-client, openssh-server (/usr/sbin/sshd, which is
# run with its own config on a high loopback port; no system sshd is
# touched). Run as the user the agents log in as (root here: sshd is told
# PermitRootLogin forced-commands-only).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=()
HOLD=()
NIGHT=()
SERVE_ENV=
BIN=
ONLY=a,b,c,d,e,f,g
OUT=bench/out
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=(-quick) ;;
	--only) ONLY=$2; shift ;;
	--out) OUT=$2; shift ;;
	--hold) HOLD=(-hold) ;;
	--agents) NIGHT+=(-agents "$2"); shift ;;
	--window) NIGHT+=(-window "$2"); shift ;;
	--scale) NIGHT+=(-scale "$2"); shift ;;
	--serve-env) SERVE_ENV=$2; shift ;;
	--bin) BIN=$(readlink -f "$2"); shift ;;
	*) echo "usage: $0 [--quick] [--only a,b,c,d,e,f,g,h] [--out DIR] [--bin TURKU_STORAGE] [--serve-env 'VAR=VALUE ...'] [--hold] [--agents N] [--window D] [--scale N]" >&2; exit 2 ;;
	esac
	shift
done

for c in rsync ssh /usr/sbin/sshd go; do
	command -v "$c" >/dev/null || { echo "bench: $c not found" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/turkubench.XXXXXX)
MADE_PRIVSEP=
BENCH_PID=
cleanup() {
	# turkubench stops what it started; this catches what a killed
	# turkubench could not (pids it recorded), then removes the data.
	if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
		kill -TERM "$BENCH_PID" 2>/dev/null || true
		wait "$BENCH_PID" 2>/dev/null || true
	fi
	if [ -f "$WORK/pids" ]; then
		while read -r pid; do
			kill -TERM "$pid" 2>/dev/null || true
		done <"$WORK/pids"
		sleep 1
		while read -r pid; do
			kill -KILL "$pid" 2>/dev/null || true
		done <"$WORK/pids"
	fi
	rm -rf "$WORK" "/dev/shm/$(basename "$WORK")"
	if [ -n "$MADE_PRIVSEP" ]; then
		rmdir /run/sshd 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# sshd refuses to start without its privilege separation directory.
if [ ! -d /run/sshd ]; then
	mkdir -m 0755 /run/sshd
	MADE_PRIVSEP=1
fi

mkdir -p "$WORK/bin"
if [ -n "$BIN" ]; then
	cp "$BIN" "$WORK/bin/turku-storage"
else
	go build -o "$WORK/bin/turku-storage" ./cmd/turku-storage
fi
go vet -tags bench ./bench/...
go build -tags bench -o "$WORK/bin/turkubench" ./bench/turkubench

"$WORK/bin/turkubench" -bin "$WORK/bin/turku-storage" -work "$WORK" -out "$OUT" -only "$ONLY" -serve-env "$SERVE_ENV" "${QUICK[@]}" "${HOLD[@]}" "${NIGHT[@]}" &
BENCH_PID=$!
# Not the script's last command: bash then handles a SIGTERM that
# arrives during wait without running the traps.
rc=0
wait "$BENCH_PID" || rc=$?
exit "$rc"
