#!/usr/bin/env bash
# Every scenario, and every example of the docs (docs/reference, and docs/guide.md with its
# plans run to their verdict: `doc --run-examples --run-guides`), on N consecutive seeds (default
# 20, from seed 1), JOBS runs at a time (default 4): prints a line per failing run and a table of
# passes per scenario; exits 1 when any run failed. DOCS=0 leaves the docs out. BIN=path uses that binary instead of building the release one. The fast cases run in
# CI too (bindings/tests/fork_rule.rs: the guide's partition example on 20 seeds;
# bindings/tests/seed_matrix.rs: partition_heal on 20 seeds).
#
#   scripts/seeds.sh [N] [SCENARIO...]      e.g. JOBS=2 scripts/seeds.sh 20 scenarios/partition_heal.rhai
#   scripts/seeds.sh 20 docs                only the docs' examples
#   (naming scenarios leaves the docs out unless DOCS=1)
set -uo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
shift || true
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    # the soak runs 10 minutes: scripts/soak.sh runs it (name it to include it)
    for f in scenarios/*.rhai; do [ "$f" = scenarios/soak.rhai ] || files+=("$f"); done
    [ "${DOCS:-1}" = 0 ] || files+=(docs)
elif [ "${DOCS:-0}" = 1 ] && [[ ! " ${files[*]} " =~ " docs " ]]; then
    files+=(docs)
fi
if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p nomos-script || exit 3
    BIN=target/release/nomos-script
fi
export BIN
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for f in "${files[@]}"; do
    for seed in $(seq 1 "$n"); do echo "$f $seed"; done
done | xargs -P "${JOBS:-4}" -L 1 sh -c '
    if [ "$0" = docs ]; then
        set -- "$1" doc --run-examples --run-guides --guide docs/guide.md --seed "$1"
    else
        set -- "$1" run "$0" --seed "$1"
    fi
    seed=$1; shift
    if out=$("$BIN" "$@" 2>&1); then echo "PASS $0 $seed"
    else
        # the docs name the failing example on a `failed:` line
        why=$(echo "$out" | grep -m1 "^failed:" || echo "$out" | grep -m1 -E "^(error|FAIL)")
        echo "FAIL $0 $seed $(echo "$why" | cut -c1-300)"
    fi' >"$results"
grep '^FAIL' "$results" >&2
printf '%-34s %s\n' scenario "passed/$n"
for f in "${files[@]}"; do
    printf '%-34s %d/%d\n' "$(basename "$f")" "$(grep -c "^PASS $f " "$results")" "$n"
done
! grep -q '^FAIL' "$results"
