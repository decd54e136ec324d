#!/bin/sh
# Compile tools/probe-offsets.c against every pyenv version's headers and print
# the offsets side by side.  Usage: tools/probe-offsets.sh [VERSION...]
set -eu
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || set -- $(ls "$root/versions")
for v in "$@"; do
    inc=$(ls -d "$root/versions/$v"/include/python* | head -n 1)
    if gcc -w -I"$inc" -o "$tmp/probe" "$dir/probe-offsets.c" 2>"$tmp/err"; then
        "$tmp/probe" >"$tmp/out.$v"
    else
        echo "$v: does not compile:" >&2; head -5 "$tmp/err" >&2
    fi
done
cd "$tmp" && for f in out.*; do echo "== $f"; cat "$f"; done
