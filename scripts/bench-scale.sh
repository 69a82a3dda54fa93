#!/usr/bin/env bash
# N reference nodes (default 500) on this machine: a passing run and one whose nodes all halt at
# height 3. Prints the time to ready, the verdict, how many bytes the run printed, and the size
# of the kept run dir of the failed run (budget 100 MiB).
#
#   scripts/bench-scale.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
n="${1:-500}"
cargo build --release -q -p nomos-script || exit 3
bin="$PWD/target/release/nomos-script"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for s in nodes nodes_halted; do
    out="$tmp/$s.out"
    start=$(date +%s)
    TMPDIR="$tmp" "$bin" run "scripts/scale/$s.rhai" --set "n=$n" >"$out" 2>&1
    code=$?
    took=$(( $(date +%s) - start ))
    deploy=$(grep -oE 'deploy [0-9.]+s' "$out" | head -1)
    verdict=$(grep -m1 -oE '── run [^ ]+ [A-Z]+' "$out" | awk '{print $4}')
    printf '%-13s nodes %s · exit %s · %s · %s · total %ss · printed %s bytes\n' \
        "$s" "$n" "$code" "${verdict:-?}" "${deploy:-deploy ?}" "$took" "$(wc -c <"$out")"
done
kept=$(ls -d "$tmp"/nomos-script-* 2>/dev/null | head -1)
if [ -n "$kept" ]; then
    echo "kept run dir of the failed run: $(du -sm "$kept" | cut -f1) MiB (budget 100 MiB)"
    [ -f "$kept/TRIMMED" ] && echo "  $(cat "$kept/TRIMMED")"
fi
