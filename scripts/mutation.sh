#!/usr/bin/env bash
# Mutation testing with mutmut, beside the benchmarks (not part of CI: it runs for long).
#
#   scripts/mutation.sh [--rev REV] [--minutes N] [--until TIME] [--sample N] [--seed S]
#                       [--out FILE] AREA...
#
# AREA: simulator | calibration | importers | analysis | all (the four), or one of the
# narrower areas of newer code: persistence (persistent service noise: draws, the
# forecasts' RecentService and Outlook, calibration.persistence and its checks), params
# (policy parameter bounds and names), emulation (check_rate, add_peer, the yielding
# memory stressor), testbed (the edge's clock sync, check_cloud's wait, reach_hint),
# policies (the policy protocol, the adaptive built-ins and their shared forecast code:
# policies, reactive, neurosurgeon, mpc, changepoint, forecast),
# foldterms (the fold-back's condition lag and cloud per edge CPU level: fits, apply,
# Trace.delayed, the engines' cloud factor, the monitor's traces as written; and
# spread.by_point's borrowing), probe (the host-speed probe: host_speed's arithmetic, the
# probed twin, the fold-back relative to the host's speed and its re-scoring),
# sweep (the sweep: spec, plan, execute, runner, store, summary, outputs, report; Dask),
# store (the measurement store: schema, io, catalog, select, choice, flags),
# report (the run report: build, tables, verdict, folder, figures, page; not the
# browser driver nor the matplotlib PNGs),
# wire (the testbed's wire protocol: frames, sizes, HMAC, replay refusal; the cloud
# server's connections, error frames, probe frames, queue and replies; the edge's
# client; not the TensorFlow tail builder nor the server process's main),
# compare (the validation's numbers: measured vs simulated errors, the ranking and
# Kendall's tau, per-stage errors, the twin's draws, the scorecard and its targets,
# re-scoring, the validation report).
# Each area mutates its own source and runs every test that exercises it (see TESTS
# below), nothing slow it does not need; it counts only the mutants whose names match its
# MATCH pattern (a narrower area leaves the older code of its files out; name an area and
# a narrower one inside it in separate runs). Several areas run in one mutmut session (one
# test map) and the report
# gives a line per area and one combined line. The work happens in a scratch copy (the
# working tree, or the commit REV: `--rev HEAD` measures the committed tests), so the
# checkout is never touched; mutmut runs under `nice -n 10` with --max-children 2, capped
# at N minutes (default 60); `--until TIME` (a time date -d reads, e.g. 21:55) also
# stops each phase by then, so a run on a shared machine ends when promised (a test map
# not ready by then: exit 3). `--sample N` runs a seeded random sample of N mutants PER
# AREA instead of all (the score is then an estimate with its 95 % Wilson interval; the
# combined line weights each area by its number of mutants). The same --seed and --sample
# on the same sources draw the same mutants, so a before/after pair is paired. The report
# (report.txt in the scratch folder, path printed at the end; --out copies it) lists the
# scores, the counts, the run time, the load average and every survivor.
# The cross-process determinism test is left out: its child processes import the
# installed (unmutated) adaptsim, so under mutmut it would "kill" every mutant that
# changes a record, whatever the other tests say; so is the test of
# scripts/foldback_terms.py's refusals (a child process too, of a script not copied).
# wire and compare leave out the real runs (tests/test_testbed_run.py, _remote.py,
# _twohost.py, _slowedge.py, the probe file's real validation: root or a separate
# `adaptsim serve` process, 30-60 s per mutant, whose server and client are the
# unmutated installed package in their child processes); the in-process server's tests
# over real sockets (test_testbed_server.py) and the validation folders written by
# the real writer from simulated stand-ins cover the same code in seconds.
# Needs: pip install -e ".[mutation]" (mutmut >= 3.3).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

rev="" minutes=60 until="" sample=0 seed=0 out=""
areas=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rev) rev=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --until) until=$2; shift 2 ;;
    --sample) sample=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --out) out=$(realpath -m "$2"); shift 2 ;;
    -h|--help) sed -n "2,/^# Needs:/p" "$0"; exit 0 ;;
    all) areas+=(simulator calibration importers analysis); shift ;;
    *) areas+=("$1"); shift ;;
  esac
done
[ ${#areas[@]} -gt 0 ] || { echo "mutation.sh: name an area: simulator calibration importers analysis (or all)" >&2; exit 2; }
deadline=0
if [ -n "$until" ]; then
  deadline=$(date -d "$until" +%s 2>/dev/null) || { echo "mutation.sh: --until $until: not a time date(1) reads" >&2; exit 2; }
  [ "$deadline" -gt "$(date +%s)" ] || { echo "mutation.sh: --until $until is already past" >&2; exit 2; }
fi
# cap SECONDS: the seconds a phase may run, SECONDS or fewer to end by --until
cap() {
  local left=$1
  [ "$deadline" -eq 0 ] || left=$(( deadline - $(date +%s) < $1 ? deadline - $(date +%s) : $1 ))
  echo $(( left > 1 ? left : 1 ))
}

declare -A SOURCES=(
  [simulator]="src/adaptsim/simulator/*"
  [calibration]="src/adaptsim/calibration/*"
  [importers]="src/adaptsim/importers/*"
  [analysis]="src/adaptsim/study/analysis.py"
  [persistence]="src/adaptsim/simulator/draws.py src/adaptsim/simulator/forecast.py
    src/adaptsim/calibration/persistence.py src/adaptsim/calibration/io.py
    src/adaptsim/calibration/build.py"
  [params]="src/adaptsim/simulator/params.py"
  [emulation]="src/adaptsim/emulation/netns.py src/adaptsim/emulation/stress.py"
  [testbed]="src/adaptsim/testbed/client.py src/adaptsim/testbed/run.py
    src/adaptsim/testbed/server.py"
  [policies]="src/adaptsim/simulator/policies.py src/adaptsim/simulator/reactive.py
    src/adaptsim/simulator/neurosurgeon.py src/adaptsim/simulator/mpc.py
    src/adaptsim/simulator/changepoint.py src/adaptsim/simulator/forecast.py"
  [foldterms]="src/adaptsim/testbed/foldback.py src/adaptsim/simulator/traces.py
    src/adaptsim/simulator/engine.py src/adaptsim/simulator/naive.py
    src/adaptsim/simulator/scenario.py src/adaptsim/simulator/monitor.py
    src/adaptsim/simulator/results.py src/adaptsim/calibration/spread.py"
  [probe]="src/adaptsim/testbed/host_speed.py src/adaptsim/testbed/foldback.py
    src/adaptsim/testbed/rescore.py"
  [sweep]="src/adaptsim/sweep/*"
  [store]="src/adaptsim/store/*"
  [report]="src/adaptsim/report/build.py src/adaptsim/report/tables.py
    src/adaptsim/report/verdict.py src/adaptsim/report/folder.py
    src/adaptsim/report/figures.py src/adaptsim/report/page.py"
  [wire]="src/adaptsim/testbed/protocol.py src/adaptsim/testbed/server.py
    src/adaptsim/testbed/client.py"
  [compare]="src/adaptsim/testbed/compare.py src/adaptsim/testbed/scorecard.py
    src/adaptsim/testbed/twin.py src/adaptsim/testbed/rescore.py
    src/adaptsim/testbed/report.py"
)
# The profiler tests that build calibrations and studies from a hand-made profile store
# (no TensorFlow, no root); the rest of test_profiler.py times real models.
profiles="tests/test_profiler.py::test_link_law_recovers_overhead_and_rate
tests/test_profiler.py::test_compose_adds_edge_cloud_and_link_per_condition
tests/test_profiler.py::test_compose_summarises_repeats_by_trimmed_mean_or_median
tests/test_profiler.py::test_calibrate_rejects_an_unknown_summary
tests/test_profiler.py::test_calibrating_profiles_reproduces_the_composed_times
tests/test_profiler.py::test_split_half_floor_is_zero_for_identical_halves
tests/test_profiler.py::test_calibrate_names_the_missing_profile
tests/test_profiler.py::test_study_runs_on_a_profile_store"
# The odd-input tests of policy parameters and names (through the real CLI, no root)
odd_policies="tests/test_odd_cli.py::test_policy_parameters_out_of_range_are_one_line_naming_the_range
tests/test_odd_cli.py::test_parameters_at_their_bounds_run_in_bounded_time
tests/test_odd_cli.py::test_a_policy_name_that_breaks_a_table_or_a_path_is_refused_alike
tests/test_odd_cli.py::test_a_built_in_is_named_by_its_label_not_a_name_parameter"
# tc's own bounds, against check_rate (root) and the link profile's refusals (none)
odd_link="tests/test_odd_cli.py::test_tc_takes_the_bounds_it_is_checked_against
tests/test_odd_cli.py::test_a_link_profile_tc_cannot_make_is_refused_before_any_namespace"
# The sweep's refusals through the real CLI (policy names and labels, input refused
# before a Dask cluster starts, a scheduler address checked first, a key given twice)
odd_sweep="tests/test_odd_cli.py::test_a_policy_name_that_breaks_a_table_or_a_path_is_refused_alike
tests/test_odd_cli.py::test_a_built_in_is_named_by_its_label_not_a_name_parameter
tests/test_odd_cli.py::test_a_policy_file_in_a_folder_is_named_by_its_file_not_its_path
tests/test_odd_cli.py::test_input_is_refused_before_the_work_it_would_spoil
tests/test_odd_inputs.py::test_a_key_given_twice_in_a_flow_mapping_and_in_a_sweep_is_refused
tests/test_odd_inputs.py::test_command_line_addresses_seeds_and_lists_are_checked_first"
declare -A TESTS=(
  [simulator]="tests/test_simulator*.py tests/test_traces.py tests/test_sim_*.py tests/test_policies.py
    tests/test_policy_*.py tests/test_horizon.py tests/test_spread_by_point.py tests/test_robust_runs.py
    tests/test_persistent_noise.py $odd_policies"
  [calibration]="tests/test_calibration*.py tests/test_importers.py tests/test_study*.py $profiles
    tests/test_spread_by_point.py tests/test_near_repeat_spread.py tests/test_mutants_more.py
    tests/test_noise_persistence_method.py tests/test_persistent_noise.py"
  [importers]="tests/test_importer*.py tests/test_atomic.py tests/test_calibration*.py
    tests/test_study*.py tests/test_mutants_more.py"
  [analysis]="tests/test_study*.py tests/test_calibration_build.py tests/test_calibration_file.py
    tests/test_profiler.py::test_study_runs_on_a_profile_store"
  [persistence]="tests/test_persistent_noise.py tests/test_noise_persistence_method.py
    tests/test_spread_by_point.py tests/test_testbed_twin.py
    tests/test_persistence_mutants.py"
  [params]="$odd_policies tests/test_policies.py tests/test_policy_risk.py tests/test_params.py"
  [emulation]="tests/test_emulation.py tests/test_emulation_checks.py $odd_link"
  [testbed]="tests/test_testbed_client.py tests/test_testbed_clock.py
    tests/test_testbed_server.py::test_the_serve_line_says_who_can_reach_an_unspecified_or_loopback_address"
  [policies]="tests/test_simulator*.py tests/test_traces.py tests/test_sim_*.py tests/test_policies.py
    tests/test_policy_*.py tests/test_horizon.py tests/test_spread_by_point.py tests/test_robust_runs.py
    tests/test_persistent_noise.py tests/test_persistence_mutants.py tests/test_params.py
    tests/test_scoring.py $odd_policies"
  [foldterms]="tests/test_foldback_terms.py tests/test_traces.py tests/test_spread_by_point.py
    tests/test_simulator.py::test_engines_agree_on_random_traces_rates_and_servers
    tests/test_belief.py tests/test_testbed_twin.py tests/test_testbed_report.py
    tests/test_testbed_run.py::test_fold_back_scales_what_the_simulator_charges"
  [probe]="tests/test_testbed_probe.py tests/test_foldback_terms.py"
  [sweep]="tests/test_sweep.py tests/test_sweep_outputs.py
    tests/test_sweep_scheduler.py::test_unreachable_scheduler_is_one_line_exit_2 $odd_sweep"
  [store]="tests/test_store.py tests/test_atomic.py tests/test_robust_stores.py tests/test_importer*.py
    tests/test_importers.py tests/test_calibration_pieces.py tests/test_calibration_build.py
    tests/test_mutants_more.py $profiles
    tests/test_odd_inputs.py::test_a_store_output_that_is_not_a_store_is_refused_before_any_work"
  [report]="tests/test_report.py tests/test_report_pieces.py tests/test_records_points.py
    tests/test_robust_report.py
    tests/test_robust_results.py tests/test_sim_saturation.py tests/test_testbed_report.py
    tests/test_odd_cli.py::test_report_escapes_the_names_an_older_results_folder_holds"
  [wire]="tests/test_testbed_server.py tests/test_testbed_client.py tests/test_testbed_clock.py
    tests/test_testbed_wire.py"
  [compare]="tests/test_testbed_report.py tests/test_testbed_twin.py tests/test_testbed_probe.py
    tests/test_rescore_world.py tests/test_robust_validation_folders.py
    tests/test_testbed_scores.py"
)
# Which mutants an area counts: a regular expression matched at the start of the name
# (mutmut names a function's mutants module.x_function__mutmut_N, a method's
# module.xǁClassǁmethod__mutmut_N).
# (stress._start_child runs in the forked child before exec, where mutmut records no
# call: its mutants show as "no tests"; docs/testing.md checks them by hand.)
declare -A MATCH=(
  [simulator]='adaptsim\.simulator\.'
  [calibration]='adaptsim\.calibration\.'
  [importers]='adaptsim\.importers\.'
  [analysis]='adaptsim\.study\.analysis\.'
  [persistence]='adaptsim\.simulator\.draws\.|adaptsim\.simulator\.forecast\.xǁ(RecentService|Outlook)ǁ|adaptsim\.calibration\.persistence\.|adaptsim\.calibration\.io\.xǁ_Readerǁpersistence_|adaptsim\.calibration\.build\.x__with_persistence_'
  [params]='adaptsim\.simulator\.params\.'
  [emulation]='adaptsim\.emulation\.netns\.(x_check_rate_|xǁNetnsPairǁadd_peer_)|adaptsim\.emulation\.stress\.(x__start_child_|xǁStressǁ__enter___)'
  [testbed]='adaptsim\.testbed\.client\.xǁCloudClientǁ(sync_clock_|__init___)|adaptsim\.testbed\.run\.x_check_cloud_|adaptsim\.testbed\.server\.x_reach_hint_'
  [policies]='adaptsim\.simulator\.(policies|reactive|neurosurgeon|mpc|changepoint|forecast)\.'
  [sweep]='adaptsim\.sweep\.'
  [store]='adaptsim\.store\.'
  [report]='adaptsim\.report\.(build|tables|verdict|folder|figures|page)\.'
  [foldterms]='adaptsim\.testbed\.foldback\.(x_step_lags_|x_fit_lags_|x__applied_cpu_at_|x__facts_|x__by_level_|x__level_factor_|x__late_|x_apply_foldback_|x_fit_foldback_|xǁFoldBackǁfrom_dict_)|adaptsim\.simulator\.traces\.xǁTraceǁdelayed_|adaptsim\.simulator\.engine\.xǁ_Runǁ(cloud_factor_|_deployed_)|adaptsim\.simulator\.naive\.xǁ_Naiveǁwritten_|adaptsim\.simulator\.scenario\.xǁScenarioǁ(cloud_factor_|seen_traces_)|adaptsim\.simulator\.monitor\.x_seen_conditions_|adaptsim\.simulator\.results\.x_add_conditions_|adaptsim\.calibration\.spread\.x_by_point_'
  [wire]='adaptsim\.testbed\.protocol\.|adaptsim\.testbed\.client\.|adaptsim\.testbed\.server\.(xǁCloudServerǁ|x_bind_)'
  [compare]='adaptsim\.testbed\.(compare|scorecard|twin|rescore|report)\.'
  [probe]='adaptsim\.testbed\.host_speed\.|adaptsim\.testbed\.foldback\.(xǁFoldBackǁat_host_|x_folded_twin_|x__scenario_of_|x_fit_foldback_)|adaptsim\.testbed\.rescore\.(x_folder_speeds_|x_rescore_folder_|x_rescore_probed_)'
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

only="" tests="" prefixes="" narrow=0 isolation=fork timeout_constant=1
declare -A seen=()
for a in "${areas[@]}"; do
  [ -n "${SOURCES[$a]:-}" ] || { echo "mutation.sh: unknown area $a (simulator calibration importers analysis persistence params emulation testbed policies foldterms probe sweep store report wire compare all)" >&2; exit 2; }
  set -f; for s in ${SOURCES[$a]}; do only+="    $s"$'\n'; done; set +f  # globs kept for mutmut
  prefixes+="$a=${MATCH[$a]} "
  # an area narrower than its files: its mutants are named to mutmut, the others not run
  case $a in persistence|emulation|testbed|foldterms|probe|wire) narrow=1 ;; esac
  # The sweep's tests start Dask clusters: mutmut's default runner forks each mutant
  # from the process that ran the test map, whose Dask threads are gone in the fork (a
  # new cluster then hangs until the timeout: every mutant a "timeout"). A fork server
  # forks the mutants from a process that never ran a test.
  # The wire area's tests load TensorFlow (the LeNet tails) and run server threads: a
  # forked mutant of that process spins until its CPU limit (every mutant a "timeout").
  # Its module fixture builds the tails inside whichever test runs first, which mutmut's
  # estimate of that test's time does not include: the CPU limit gets 10 s more.
  case $a in sweep|wire) isolation=forkserver ;; esac
  [ "$a" != wire ] || timeout_constant=10
  for t in ${TESTS[$a]}; do
    # a test (file or node id) missing at REV is left out, once each
    if [ -e "${t%%::*}" ] && [ -z "${seen[$t]:-}" ]; then seen[$t]=1; tests+="    $t"$'\n'; fi
  done
done
# mutmut reads setup.cfg when pyproject.toml has no [tool.mutmut]: the config lives here only.
cat > setup.cfg <<CFG
[mutmut]
source_paths=src/
only_mutate=
$only
also_copy=
    scenarios
    docs
    scripts
do_not_mutate=
    src/adaptsim/simulator/bench.py
pytest_add_cli_args_test_selection=
$tests
pytest_add_cli_args=
    --deselect=tests/test_sim_random.py::test_same_records_in_other_processes_and_hash_seeds
    --deselect=tests/test_foldback_terms.py::test_the_foldback_terms_script_refuses_bad_input_in_one_line
    --deselect=tests/test_testbed_probe.py::test_a_real_validation_probes_the_host_around_every_policy_run
use_git_change_detection=false
process_isolation=$isolation
timeout_constant=$timeout_constant
CFG

export PATH="$repo/.venv/bin:$PATH" HYPOTHESIS_PROFILE=default
start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
selected=()
if [ "$sample" -gt 0 ] || [ "$narrow" -eq 1 ]; then
  # Generate the mutants and the test map (a run for a name that matches no mutant stops
  # right after), then draw each area's sample from its mutant names (every one of its
  # mutants without --sample).
  set +e
  timeout "$(cap 1800)" nice -n 10 "$mutmut" run --max-children 2 "no-such-mutant" >stats.log 2>&1
  [ $? -ne 124 ] || { echo "mutation.sh: --until $until came before the mutants and the test map were ready ($work)" >&2; exit 3; }
  set -e
  "$mutmut" results --all true >all.txt 2>/dev/null || true
  mapfile -t selected < <("$repo/.venv/bin/python" -c '
import random, re, sys
n, seed, prefixes = int(sys.argv[1]), int(sys.argv[2]), dict(p.split("=", 1) for p in sys.argv[3].split())
names = sorted(m.group(1) for m in map(re.compile(r"\s*(\S+): ").match, open("all.txt")) if m)
for area, prefix in prefixes.items():
    mine = [x for x in names if re.match(prefix, x)]
    random.Random(seed).shuffle(mine)
    if mine:
        print("\n".join(sorted(mine[: n or None])))
' "$sample" "$seed" "$prefixes")
  echo "mutation.sh: selected ${#selected[@]} mutants (--sample $sample per area, seed $seed; 0: all)" >&2
  [ ${#selected[@]} -gt 0 ] || { echo "mutation.sh: no mutant matches the areas named ($work/all.txt)" >&2; exit 3; }
fi
# A mutant of the emulation area can start stress-ng without its death-with-parent and
# process group (Stress.__enter__'s preexec_fn replaced): it outlives its test at full
# load (two did so for 22 minutes once). reap: stop the stress-ng started from this
# scratch folder (its environment says so) that lost their parent; reap all: every one.
reap() {
  local p
  for p in $(pgrep -x stress-ng || true); do
    [ "${1:-}" = all ] || [ "$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null)" = 1 ] || continue
    if tr "\0" "\n" <"/proc/$p/environ" 2>/dev/null | grep -q "^PWD=$work"; then
      kill "$p" 2>/dev/null || true
    fi
  done
}
( while sleep 10; do reap; done ) &
reaper=$!
set +e
timeout "$(cap $((minutes * 60)))" nice -n 10 "$mutmut" run --max-children 2 "${selected[@]}" >run.log 2>&1
rc=$?
set -e
kill "$reaper" 2>/dev/null || true
reap all
wall=$(( $(date +%s) - start ))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
"$mutmut" results --all true >results.txt 2>/dev/null || "$mutmut" results >results.txt 2>/dev/null || true
"$repo/.venv/bin/python" - "$wall" "$rc" "$prefixes" "$sample" "$seed" "${rev:-working tree}" \
  "$load_start" "$load_end" "${selected[@]}" <<'PY' | tee report.txt
import math, re, sys

wall, rc, prefixes = int(sys.argv[1]), int(sys.argv[2]), dict(p.split("=", 1) for p in sys.argv[3].split())
sample, seed, rev, load0, load1 = int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8]
selected = set(sys.argv[9:])
status = {}
for line in open("results.txt"):
    m = re.match(r"\s*(\S+): (\w[\w ]*)", line)
    if m:
        status[m.group(1)] = m.group(2).strip()
DONE = ("killed", "timeout", "survived", "suspicious", "no tests", "segfault")


def area_of(name):
    return next((a for a, p in prefixes.items() if re.match(p, name)), None)


def wilson(k, n, z=1.96):
    if not n:
        return float("nan"), float("nan")
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


how = f"--sample {sample} per area, seed {seed}" if sample else "every mutant"
print(f"mutmut on {rev} ({how}); areas: {' '.join(prefixes)}")
strata = []
for area in prefixes:
    population = [k for k in status if area_of(k) == area]
    mine = {k: status[k] for k in population if not selected or k in selected}
    counts = {}
    for v in mine.values():
        counts[v] = counts.get(v, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    tested = sum(n for k, n in counts.items() if k in DONE)
    lo, hi = wilson(killed, tested)
    score = killed / tested if tested else float("nan")
    strata.append((len(population), killed, tested))
    print(
        f"{area:12s} score {100 * score:5.1f} % (95 % Wilson {100 * lo:.1f}-{100 * hi:.1f} %): "
        f"{killed} killed of {tested} checked, {len(mine) - tested} unchecked, "
        f"of {len(population)} mutants; {counts}"
    )
if len(strata) > 1:
    big_n = sum(n for n, _, t in strata if t)
    tot_k, tot_t = sum(k for _, k, _ in strata), sum(t for *_, t in strata)
    if sample and big_n:
        # stratified: each area's score weighted by its share of the mutants
        p = sum(n / big_n * k / t for n, k, t in strata if t)
        var = sum((n / big_n) ** 2 * (k / t) * (1 - k / t) / t for n, k, t in strata if t)
        h = 1.96 * math.sqrt(var)
        print(
            f"{'combined':12s} score {100 * p:5.1f} % (95 % normal {100 * (p - h):.1f}-"
            f"{100 * (p + h):.1f} %, areas weighted by their {big_n} mutants); "
            f"pooled sample {tot_k}/{tot_t} = {100 * tot_k / max(tot_t, 1):.1f} %"
        )
    else:
        lo, hi = wilson(tot_k, tot_t)
        print(
            f"{'combined':12s} score {100 * tot_k / max(tot_t, 1):5.1f} % (95 % Wilson "
            f"{100 * lo:.1f}-{100 * hi:.1f} %): {tot_k} killed of {tot_t} checked"
        )
print(
    f"wall time {wall} s (mutmut exit {rc}{', stopped by the time cap' if rc == 124 else ''}); "
    f"load average {load0} at the start, {load1} at the end; nice -n 10, 2 workers"
)
for k, v in sorted(status.items()):
    if (not selected or k in selected) and v not in ("killed", "timeout"):
        print(f"  {v}: {k}")
PY
[ -z "$out" ] || cp report.txt "$out"
echo "mutation.sh: scratch folder $work (report.txt, results.txt, run.log; mutmut show NAME there)" >&2
