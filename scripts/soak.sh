#!/usr/bin/env bash
# Soak: builds the release binary, runs scenarios/soak.rhai (5 nodes; graceful restarts, SIGKILL
# restarts and partitions under transaction load, then a quiet tail) for DURATION, and prints:
#   - transactions included (of those submitted),
#   - transactions lost after being in a final block (must be 0),
#   - faults applied and reverted,
#   - leftovers after the run: processes, files in the run's temp dir, containers (must be 0).
#
#   scripts/soak.sh [DURATION] [SEED]      # default 10m, seed 1
#
# The run gets a fresh TMPDIR, so its run dir is the only thing that may appear there: what is
# left in it after the run, and any process whose command line names it, is a leftover. The JSON
# report is kept in $SOAK_OUT (default: <target dir>/soak). Exit 0 only when the run passed, no
# final transaction was lost and nothing was left over.
set -euo pipefail

duration="${1:-10m}"
seed="${2:-1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="${SOAK_OUT:-$target/soak}"
bin="$target/release/nomos-script"

echo "soak: building the release binary ($bin)"
(cd "$root" && cargo build --release -p nomos-script --quiet)

mkdir -p "$out"
report="$out/soak-$seed.json"
rm -f "$report"
soak_tmp="$(mktemp -d "${TMPDIR:-/tmp}/nomos-soak.XXXXXX")"

echo "soak: $duration, seed $seed, TMPDIR $soak_tmp, report $report"
set +e
TMPDIR="$soak_tmp" "$bin" run "$root/scenarios/soak.rhai" --seed "$seed" \
    --set "duration=$duration" --json "$report"
code=$?

# Leftovers, counted right after the runner exited. Paths go through the environment, so no
# process counted here names the temp dir on its own command line.
SOAK_TMP="$soak_tmp" SOAK_REPORT="$report" SOAK_CODE="$code" SOAK_DURATION="$duration" \
    python3 - <<'EOF'
import json, os, re, shutil, subprocess, sys

tmp = os.environ["SOAK_TMP"]
code = int(os.environ["SOAK_CODE"])
try:
    doc = json.load(open(os.environ["SOAK_REPORT"]))
except (OSError, ValueError) as e:
    print(f"soak: no JSON report ({e}); nomos-script exited {code}")
    sys.exit(code or 1)
runs = doc.get("runs") or []
if not runs:
    print(f"soak: the report holds no run ({doc.get('error')}); nomos-script exited {code}")
    sys.exit(code or 1)
r = runs[0]

# processes whose command line names the temp dir (or the run id)
me = {os.getpid(), os.getppid()}
procs = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) in me:
        continue
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        continue
    if tmp in cmd or r["run_id"] in cmd:
        procs.append(f"{pid} {cmd.strip()}")
files = sorted(os.listdir(tmp))
containers = None
if shutil.which("docker"):
    try:
        ps = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=nomos-script.run-id={r['run_id']}"],
                            capture_output=True, text=True, timeout=30)
        if ps.returncode == 0:
            containers = len(ps.stdout.split())
    except (OSError, subprocess.TimeoutExpired):
        pass

# faults: network faults from the fault log (one id per fault), node faults from the chaos notes
applied = {rec["id"] for rec in r["fault_log"] if not rec["reverted"]}
reverted = {rec["id"] for rec in r["fault_log"] if rec["reverted"]}
notes = []
for e in r["timeline"]:
    try:
        ev = json.loads(e["what"])
    except ValueError:
        continue
    if ev.get("event") == "note" and ev.get("message", "").startswith("soak: "):
        notes.append(ev["message"])
def count(verb):
    ok = sum(1 for m in notes if re.match(rf"soak: {verb} node-\d+ \(", m) and " failed: " not in m)
    bad = sum(1 for m in notes if re.match(rf"soak: {verb} node-\d+ \(", m) and " failed: " in m)
    return ok, bad
restarts, restarts_failed = count("restart")
kills, kills_failed = count("kill")
starts, starts_failed = count("start")
caught_up = sum(1 for m in notes if " caught up in " in m)

verdicts = {v["name"]: v["verdict"] for v in r["verdicts"]}
final = verdicts.get("no final tx lost")
ev = (final or {}).get("evidence") or {}

print()
outcome = r["outcome"].get("kind") if isinstance(r["outcome"], dict) else r["outcome"]
print(f"== soak {os.environ['SOAK_DURATION']}, seed {r['seed']}, {r['nodes']} nodes: {outcome} (exit {code})")
for name, v in verdicts.items():
    print(f"   {'pass' if v['passed'] else 'FAIL'}  {name}: {v['message']}")
for w in r["workload_errors"]:
    print(f"   FAIL  workload {w['name']}: {w['error']}")
print(f"transactions included:            {r['txs_included']} of {r['txs_submitted']} submitted")
if final is None:
    print("transactions lost after final:    unknown (no 'no final tx lost' verdict)")
else:
    print(f"transactions lost after final:    {ev.get('lost')} "
          f"(of {ev.get('final_txs')} seen in {ev.get('final_blocks')} final blocks; "
          f"final blocks reverted {ev.get('reverted_blocks')})")
total_applied = len(applied) + kills + restarts
total_reverted = len(reverted) + starts + restarts
print(f"faults applied / reverted:        {total_applied} / {total_reverted} "
      f"(partitions {len(applied)}/{len(reverted)} by the fault log; "
      f"SIGKILLs {kills} / starts after them {starts}; "
      f"graceful restarts {restarts}, each a stop and a start, counted on both sides; "
      f"failed actions {restarts_failed + kills_failed + starts_failed}; catch-ups {caught_up})")
left = len(procs) + len(files) + (containers or 0)
print(f"leftovers after the run:          {left} "
      f"(processes {len(procs)}, files in the temp dir {len(files)}, "
      f"containers {containers if containers is not None else 'n/a (no docker)'})")
for p in procs:
    print(f"   process {p}")
for f in files:
    print(f"   file {os.path.join(tmp, f)}")

bad = code != 0 or final is None or ev.get("lost") != 0 or left != 0
sys.exit(1 if bad else 0)
EOF
status=$?
if [ "$status" -eq 0 ]; then rmdir "$soak_tmp"; fi
exit "$status"
