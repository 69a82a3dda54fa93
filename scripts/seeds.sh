#!/usr/bin/env bash
# Every scenario on N consecutive seeds (default 20, from seed 1): prints a line per failing run
# and a table of passes per scenario; exits 1 when any run failed. Long (seed_builder alone runs
# 90 s a seed); the fast ones run in CI (bindings/tests/fork_rule.rs runs the guide's partition
# example on 20 seeds, bindings/tests/seed_matrix.rs the short scenarios).
#
#   scripts/seeds.sh [N] [SCENARIO...]      e.g. scripts/seeds.sh 20 scenarios/partition_heal.rhai
set -uo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
shift || true
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    # the soak runs 10 minutes: scripts/soak.sh runs it (name it to include it)
    for f in scenarios/*.rhai; do [ "$f" = scenarios/soak.rhai ] || files+=("$f"); done
fi
cargo build --release -q -p nomos-script || exit 3
bin=target/release/nomos-script
failed=0
printf '%-34s %s\n' scenario "passed/$n"
for f in "${files[@]}"; do
    pass=0
    for seed in $(seq 1 "$n"); do
        if out=$("$bin" run "$f" --seed "$seed" 2>&1); then
            pass=$((pass + 1))
        else
            failed=1
            echo "FAIL $f --seed $seed: $(echo "$out" | grep -m1 -E '^(error|FAIL)')" >&2
        fi
    done
    printf '%-34s %d/%d\n' "$(basename "$f")" "$pass" "$n"
done
exit $failed
