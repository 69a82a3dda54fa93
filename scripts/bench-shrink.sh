#!/usr/bin/env bash
# `nomos-script shrink` on the planted bug (bindings/tests/fixtures/planted_crash.rhai: a node
# restarted while a partition isolates it exits) on failing seeds: prints, per seed, the events
# planned and left, the nodes and run duration before and after, the runs the search made and
# its wall time, then checks that the written file fails when run.
#
#   scripts/bench-shrink.sh [RUNS] [SEED...]     (default: RUNS 3, seeds 1 2)
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
shift || true
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(1 2)
cargo build --release -q -p nomos-script || exit 3
bin="$PWD/target/release/nomos-script"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for seed in "${seeds[@]}"; do
    out="$tmp/shrunk-$seed.rhai"
    log="$tmp/shrink-$seed.log"
    start=$(date +%s)
    TMPDIR="$tmp" "$bin" shrink bindings/tests/fixtures/planted_crash.rhai --seed "$seed" \
        --runs "$runs" --out "$out" >"$log" 2>&1
    code=$?
    took=$(( $(date +%s) - start ))
    summary=$(grep -m1 '^shrunk:' "$log" || grep -m1 'nothing to shrink' "$log" || tail -1 "$log")
    echo "seed $seed (--runs $runs): exit $code, wall ${took}s"
    echo "  $summary"
    if [ -f "$out" ]; then
        TMPDIR="$tmp" "$bin" run "$out" >"$tmp/again-$seed.log" 2>&1
        again=$?
        echo "  the written file: exit $again ($( [ "$again" -eq 1 ] && echo fails as it should || echo 'DOES NOT FAIL'))"
        grep -E '^\s+\.at' "$out" | sed 's/^/  /'
    fi
done
