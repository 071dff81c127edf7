#!/bin/bash
# third_party/x-crypto.sh: third_party/x/crypto is the golang.org/x/crypto
# release that go.mod requires plus third_party/x-crypto.patch, and nothing
# else. go.mod's replace directive builds against that copy. Why the patch
# exists, what it changes and how to keep it: docs/x-crypto-patch.md.
#
#   third_party/x-crypto.sh check           verify it (CI runs this)
#   third_party/x-crypto.sh diff            rewrite the patch from the copy,
#                                           after editing the copy
#   third_party/x-crypto.sh update VERSION  re-apply the patch to another
#                                           upstream release, take it, and
#                                           require it in go.mod
#   third_party/x-crypto.sh stock           rewrite third_party/stock/go.mod
#                                           (go.mod without the replace) and
#                                           its go.sum after go.mod changed
#
# third_party/stock/go.mod builds the same code against x/crypto as
# released (go build -modfile=third_party/stock/go.mod), which CI does for
# sshserver and tunnel so that a security release can always be taken
# unpatched.
#
# The release comes from the Go module proxy (or the module cache) with
# `go mod download`, as any module does.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
copy=third_party/x/crypto
patchfile=third_party/x-crypto.patch
stockmod=third_party/stock/go.mod

required() {
	awk '$1 == "golang.org/x/crypto" && $2 ~ /^v/ { print $2; exit }' go.mod
}

# upstream VERSION DIR: a writable copy of the released module in DIR.
upstream() {
	local src
	src=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "golang.org/x/crypto@$1" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$src" ] || [ ! -d "$src" ]; then
		echo "x-crypto: cannot download golang.org/x/crypto@$1" >&2
		exit 1
	fi
	cp -R "$src" "$2"
	chmod -R u+w "$2"
}

# stock_want: go.mod without the replace directive, as the stock go.mod must be.
stock_want() {
	go mod edit -dropreplace=golang.org/x/crypto -print
}

# stock: rewrite the stock go.mod and go.sum from go.mod and go.sum.
stock() {
	stock_want >"$stockmod"
	cp go.sum "${stockmod%.mod}.sum"
	go mod tidy -modfile="$stockmod"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case "${1:-}" in
check)
	v=$(required)
	if ! stock_want | diff - "$stockmod" >"$tmp/out"; then
		echo "x-crypto: $stockmod is not go.mod without the replace; run third_party/x-crypto.sh stock:" >&2
		head -20 "$tmp/out" >&2
		exit 1
	fi
	if ! grep -q '^replace golang.org/x/crypto ' go.mod; then
		# A security release taken as released while the patch is being
		# ported (docs/x-crypto-patch.md): the copy is left as it was.
		echo "x-crypto: NOTE: go.mod builds against golang.org/x/crypto@$v as released; $patchfile is not in use"
		exit 0
	fi
	if ! grep -q "^replace golang.org/x/crypto => ./$copy\$" go.mod; then
		echo "x-crypto: go.mod does not replace golang.org/x/crypto with ./$copy" >&2
		exit 1
	fi
	upstream "$v" "$tmp/want"
	(cd "$tmp/want" && patch -p1 -s --no-backup-if-mismatch <"$root/$patchfile")
	if ! diff -r "$tmp/want" "$copy" >"$tmp/out"; then
		echo "x-crypto: $copy is not golang.org/x/crypto@$v plus $patchfile:" >&2
		head -50 "$tmp/out" >&2
		exit 1
	fi
	echo "x-crypto: $copy is golang.org/x/crypto@$v plus $patchfile; $stockmod is go.mod without the replace"
	;;
diff)
	v=$(required)
	upstream "$v" "$tmp/a"
	cp -R "$copy" "$tmp/b"
	# diff exits 1 when the trees differ, which is the point.
	(cd "$tmp" && diff -ruN a b || [ $? -eq 1 ]) |
		sed -E 's/^((---|\+\+\+) [^\t]+)\t.*$/\1/' >"$patchfile"
	echo "x-crypto: wrote $patchfile against golang.org/x/crypto@$v"
	;;
update)
	v=${2:?usage: $0 update VERSION}
	upstream "$v" "$tmp/new"
	if ! (cd "$tmp/new" && patch -p1 --no-backup-if-mismatch <"$root/$patchfile"); then
		echo "x-crypto: the patch does not apply to $v; port it by hand (edit a copy, then 'diff')" >&2
		exit 1
	fi
	rm -rf "$copy"
	cp -R "$tmp/new" "$copy"
	go mod edit -require="golang.org/x/crypto@$v"
	go mod tidy
	stock
	echo "x-crypto: now golang.org/x/crypto@$v plus $patchfile; run the tests, then commit"
	;;
stock)
	stock
	echo "x-crypto: wrote $stockmod from go.mod, without the replace"
	;;
*)
	echo "usage: $0 check | diff | update VERSION | stock" >&2
	exit 2
	;;
esac
