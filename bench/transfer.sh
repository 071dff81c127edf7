#!/bin/bash
# bench/transfer.sh: time and peak memory of moving one machine with
# `turku-storage send | turku-storage receive` against
# `rsync -aH --numeric-ids` of the same machine directory, in one go, for
# N files and for 10N files. Not part of `go test ./...`. See
# docs/benchmarks.md, "Moving a machine: send | receive against rsync -aH".
#
#   bench/transfer.sh [--files N] [--snapshots S] [--rounds R] [--dir DIR]
#
# The machine has S link-dest snapshots of N files (sizes 1-8 KiB, 100
# to a directory); each later snapshot shares the inodes of the one
# before except for 1% of the files. Both copies are made warm (the
# source is read once first), on the filesystem of DIR (default /tmp),
# R times each, alternating; the table gives the fastest run of each and
# the ratio. Peak RSS is /usr/bin/time's maximum resident set size:
# rsync's largest process, and the larger of send and receive.
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=20000
SNAPS=3
ROUNDS=3
DIR=/tmp
while [ $# -gt 0 ]; do
	case "$1" in
	--files) FILES=$2; shift ;;
	--snapshots) SNAPS=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--dir) DIR=$2; shift ;;
	*) echo "usage: $0 [--files N] [--snapshots S] [--rounds R] [--dir DIR]" >&2; exit 2 ;;
	esac
	shift
done
for c in rsync go python3 /usr/bin/time; do
	command -v "$c" >/dev/null || { echo "bench: $c not found" >&2; exit 1; }
done

WORK=$(mktemp -d "$DIR/turku-transfer-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
BIN=$WORK/turku-storage
go build -o "$BIN" ./cmd/turku-storage
UUID=9bef0a75-5a9b-43f7-a66a-7e8c6d7ad91d

# unit NAME: a configuration with its own var_dir, lock_dir and volume.
unit() {
	local u=$WORK/$1
	mkdir -p "$u/etc/config.d" "$u/var" "$u/lock" "$u/volume"
	cat >"$u/etc/config.d/10-main.json" <<JSON
{"name": "$1", "secret": "S", "var_dir": "$u/var", "lock_dir": "$u/lock",
 "volumes": {"v": {"path": "$u/volume", "accept_new_high_water_pct": 100}},
 "ssh_ping_host": "127.0.0.1", "ssh_listen": "127.0.0.1:0",
 "coordinator_listen": "127.0.0.1:0", "control_socket": "$u/var/control.sock"}
JSON
}

# machine N: unit "a" holds the machine with SNAPS snapshots of N files.
machine() {
	rm -rf "$WORK/a"
	unit a
	local m=$WORK/a/volume/$UUID
	mkdir -p "$m/etc.snapshots" "$WORK/a/var/machines"
	ln -s "$m" "$WORK/a/var/machines/$UUID"
	ln -s "$UUID" "$WORK/a/var/machines/web1"
	python3 - "$m/etc.snapshots" "$1" "$SNAPS" <<'PY'
import json, os, random, shutil, subprocess, sys
snaps, n, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(1)
prev = None
for s in range(count):
    name = "etc_202611%02d-030000_%04x" % (s + 1, s)
    d = os.path.join(snaps, name)
    if prev is None:
        for i in range(n):
            sub = os.path.join(d, "d%04d" % (i // 100))
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, "f%06d" % i), "wb") as f:
                f.write(rnd.randbytes(rnd.randint(1024, 8192)))
    else:
        subprocess.run(["cp", "-al", prev, d], check=True)
        for i in rnd.sample(range(n), max(1, n // 100)):
            p = os.path.join(d, "d%04d" % (i // 100), "f%06d" % i)
            os.unlink(p)
            with open(p, "wb") as f:
                f.write(rnd.randbytes(rnd.randint(1024, 8192)))
    with open(d + ".json", "w") as f:
        json.dump({"base": os.path.basename(prev) if prev else None, "name": name,
                   "sync_begin": "2026-11-%02dT03:00:00+00:00" % (s + 1),
                   "sync_finish": "2026-11-%02dT03:00:10+00:00" % (s + 1)}, f, sort_keys=True, indent=4)
    prev = d
os.symlink(os.path.basename(prev), os.path.join(snaps, "latest"))
PY
}

# now: seconds since the epoch with nanoseconds.
now() { date +%s.%N; }

run_rsync() {
	rm -rf "$WORK/rsync-copy"
	local t0 t1
	t0=$(now)
	/usr/bin/time -f %M -o "$WORK/rsync.rss" rsync -aH --numeric-ids "$WORK/a/volume/$UUID/" "$WORK/rsync-copy/"
	t1=$(now)
	echo "$t1 - $t0" | bc
}

run_transfer() {
	rm -rf "$WORK/b"
	unit b
	local t0 t1
	t0=$(now)
	/usr/bin/time -f %M -o "$WORK/send.rss" "$BIN" -c "$WORK/a/etc" --log-level warn send "$UUID" 2>"$WORK/send.err" |
		/usr/bin/time -f %M -o "$WORK/receive.rss" "$BIN" -c "$WORK/b/etc" --log-level warn receive >"$WORK/receive.out"
	t1=$(now)
	echo "$t1 - $t0" | bc
}

printf '%-8s %-6s %10s %12s %8s %14s %14s %14s\n' files snaps rsync_s transfer_s ratio rsync_rss_KiB send_rss_KiB recv_rss_KiB
for n in "$FILES" $((FILES * 10)); do
	machine "$n"
	find "$WORK/a/volume/$UUID" -type f -print0 | xargs -0 cat >/dev/null # warm the cache
	best_r= best_t=
	for _ in $(seq "$ROUNDS"); do
		r=$(run_rsync)
		t=$(run_transfer)
		best_r=$(python3 -c "print(min(float('$r'), float('${best_r:-$r}')))")
		best_t=$(python3 -c "print(min(float('$t'), float('${best_t:-$t}')))")
	done
	# The copies must be the same tree with the same links: compare the
	# hard link classes of both.
	links() { (cd "$1" && find . -type f -printf '%i %p\n' | sort -k2 | awk '{if(!($1 in s)) s[$1]=$2; print $2, s[$1]}'); }
	if ! diff <(links "$WORK/rsync-copy") <(links "$WORK/b/volume/$UUID") >/dev/null; then
		echo "bench: the received copy differs from rsync's" >&2
		exit 1
	fi
	printf '%-8s %-6s %10.2f %12.2f %8.2f %14s %14s %14s\n' "$n" "$SNAPS" "$best_r" "$best_t" \
		"$(python3 -c "print($best_t / $best_r)")" "$(cat "$WORK/rsync.rss")" "$(cat "$WORK/send.rss")" "$(cat "$WORK/receive.rss")"
done
