#!/usr/bin/env bash
# Mutation testing with mutmut, beside the benchmarks (not part of CI: it runs for long).
#
#   scripts/mutation.sh [--rev REV] [--minutes N] [--sample N] [--seed S] AREA...
#
# AREA: simulator | calibration | importers | analysis. Each area mutates its own source
# and runs only the tests that exercise it (see TESTS below). The work happens in a
# scratch copy (the working tree, or the commit REV: `--rev HEAD` measures the committed
# tests), so the checkout is never touched; mutmut runs under `nice -n 10` with
# --max-children 2, capped at N minutes (default 60). `--sample N` runs a seeded random
# sample of N mutants instead of all (the score is then an estimate: the report gives its
# 95 % Wilson interval). The report (mutants/…/report.txt in the scratch folder, path
# printed at the end) lists the score, the counts, the run time and every survivor.
# The cross-process determinism test is left out: its child processes import the
# installed (unmutated) adaptsim, so under mutmut it would "kill" every mutant that
# changes a record, whatever the other tests say.
# Needs: pip install -e ".[mutation]" (mutmut >= 3.3).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

rev="" minutes=60 sample=0 seed=0
areas=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rev) rev=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --sample) sample=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) areas+=("$1"); shift ;;
  esac
done
[ ${#areas[@]} -gt 0 ] || { echo "mutation.sh: name an area: simulator calibration importers analysis" >&2; exit 2; }

declare -A SOURCES=(
  [simulator]="src/adaptsim/simulator/*"
  [calibration]="src/adaptsim/calibration/*"
  [importers]="src/adaptsim/importers/*"
  [analysis]="src/adaptsim/study/analysis.py"
)
declare -A TESTS=(
  [simulator]="tests/test_simulator.py tests/test_traces.py tests/test_sim_*.py"
  [calibration]="tests/test_calibration.py"
  [importers]="tests/test_importers.py tests/test_importer_flags.py"
  [analysis]="tests/test_study.py"
)

mutmut=$repo/.venv/bin/mutmut
[ -x "$mutmut" ] || { echo "mutation.sh: mutmut missing: .venv/bin/pip install -e '.[mutation]'" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/adaptsim-mutation-$$-XXXX")
if [ -n "$rev" ]; then
  git archive "$rev" | tar -x -C "$work"
else
  git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work"
fi
cd "$work"

only="" tests=""
for a in "${areas[@]}"; do
  [ -n "${SOURCES[$a]:-}" ] || { echo "mutation.sh: unknown area $a" >&2; exit 2; }
  only+="    ${SOURCES[$a]}"$'\n'
  for t in ${TESTS[$a]}; do [ -e "$t" ] && tests+="    $t"$'\n'; done
done
# mutmut reads setup.cfg when pyproject.toml has no [tool.mutmut]: the config lives here only.
cat > setup.cfg <<EOF
[mutmut]
source_paths=src/
only_mutate=
$only
also_copy=
    scenarios
do_not_mutate=
    src/adaptsim/simulator/bench.py
pytest_add_cli_args_test_selection=
$tests
pytest_add_cli_args=
    --deselect=tests/test_sim_random.py::test_same_records_in_other_processes_and_hash_seeds
use_git_change_detection=false
EOF

export PATH="$repo/.venv/bin:$PATH" HYPOTHESIS_PROFILE=default
start=$(date +%s)
selected=()
if [ "$sample" -gt 0 ]; then
  # Generate the mutants and the test map (a run for a name that matches no mutant stops
  # right after), then draw the sample from all mutant names.
  timeout 1800 nice -n 10 "$mutmut" run --max-children 2 "no-such-mutant" >/dev/null 2>&1 || true
  mapfile -t selected < <("$mutmut" results --all true 2>/dev/null | "$repo/.venv/bin/python" -c '
import random, re, sys
names = sorted(m.group(1) for m in map(re.compile(r"\s*(\S+): ").match, sys.stdin) if m)
random.Random(int(sys.argv[2])).shuffle(names)
print("\n".join(sorted(names[: int(sys.argv[1])])))
' "$sample" "$seed")
  echo "mutation.sh: sampled ${#selected[@]} mutants (seed $seed)" >&2
fi
set +e
timeout "$((minutes * 60))" nice -n 10 "$mutmut" run --max-children 2 "${selected[@]}" >run.log 2>&1
rc=$?
set -e
wall=$(( $(date +%s) - start ))
"$mutmut" export-cicd-stats >/dev/null 2>&1 || true
"$mutmut" results --all true >results.txt 2>/dev/null || "$mutmut" results >results.txt 2>/dev/null || true
"$repo/.venv/bin/python" - "$wall" "$rc" "${selected[@]}" <<'PY' | tee report.txt
import math, re, sys
wall, rc, selected = int(sys.argv[1]), int(sys.argv[2]), set(sys.argv[3:])
status = {}
for line in open("results.txt"):
    m = re.match(r"\s*(\S+): (\w[\w ]*)", line)
    if m:
        status[m.group(1)] = m.group(2).strip()
if selected:
    status = {k: v for k, v in status.items() if k in selected}
counts = {}
for v in status.values():
    counts[v] = counts.get(v, 0) + 1
killed = counts.get("killed", 0) + counts.get("timeout", 0)
tested = sum(n for k, n in counts.items() if k not in ("not checked", "skipped"))
score = killed / tested if tested else float("nan")
z = 1.96
if tested:
    c = (score + z * z / (2 * tested)) / (1 + z * z / tested)
    h = z * math.sqrt(score * (1 - score) / tested + z * z / (4 * tested * tested)) / (1 + z * z / tested)
    ci = f" (95 % Wilson {100 * (c - h):.1f}-{100 * (c + h):.1f} %)"
else:
    ci = ""
print(f"mutation score {100 * score:.1f} %{ci}: {killed} killed of {tested} checked; {counts}")
print(f"wall time {wall} s (mutmut exit {rc}{', stopped by the time cap' if rc == 124 else ''})")
for k, v in sorted(status.items()):
    if v not in ("killed", "timeout"):
        print(f"  {v}: {k}")
PY
echo "mutation.sh: scratch folder $work (report.txt, results.txt, run.log; mutmut show NAME there)" >&2
