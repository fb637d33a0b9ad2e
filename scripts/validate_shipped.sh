#!/usr/bin/env bash
# The measurement protocol for the shipped scenarios on this machine (root, 2 cores,
# stress-ng; keep the machine otherwise idle). Per scenario:
#   1. a real run with seed 1 beside its twin;
#   2. a real run with seed 2 beside its twin, and the fold-back fitted on run 1
#      scored on it (the twin re-simulated with it: no third real run);
#   3. the tables: both seeds, seed 2 before/after, targets, rankings, per stage.
# Every policy of the scenario (the oracle cannot run for real) plus neurosurgeon, mpc
# and changepoint run in one real run, every split compiled once before the clock.
# Real time per run = policies x --duration (after --time-scale), at most 3 minutes;
# the rates keep every stage of every policy below ~70 % busy in the twin (more queueing
# where the twin is wrong would compound its error; see docs/validation.md);
# the compile before the clock and the drain after each policy are not counted.
# Usage: [OUT=results/validation-shipped] [SCENARIOS="vehicle_trace busy_edge"] (or any of
#        norway_ferry_20 norway_train_1 norway_bus_1 norway_metro_2 norway_car_3
#        fcc_amazon_797466 user_policy combined)
#        [CALIBRATION=CAL (default: validate's choice for this host, docs/validation.md)]
#        [EDGE_CPU_QUOTA=Q (a slower edge; CALIBRATION's edge profiled so, see
#        scripts/validate_slowedge.sh)] [PLAN="SCALE SECONDS RATE" (replaces the plan below)]
#        [DURATION=S (seconds per policy, for a quick check)]
#        [PROBE_FRAMES=N (host-speed probe frames per role before and after each policy
#        run, default 5; 0: off; the fold-back is then fitted relative to seed 1's host
#        speed and applied at seed 2's: docs/validation.md, "host speed probe")]
#        [PROBE_EVERY=S (a probe in the edge's idle gaps every S s of the run, default 2;
#        0: off) PROBE_POOL=run|seed|ends (default run): docs/validation.md, "Probes
#        during the run"; with PROBE_EVERY > 0 the seed pair is also scored with the
#        probes before/after alone (-scorecard-ends.md) and pooled per seed
#        (-scorecard-seed.md), the same real runs]
#        scripts/validate_shipped.sh
set -euo pipefail
cd "$(dirname "$0")/.."
a=.venv/bin/adaptsim
# CALIBRATION unset: validate's own choice, the shipped calibration of this host's kind of CPU
calopt=()
[ -n "${CALIBRATION:-}" ] && calopt=(--calibration "$CALIBRATION")
out=${OUT:-results/validation-shipped}
policies=all,neurosurgeon,mpc,changepoint
quota=()
[ -n "${EDGE_CPU_QUOTA:-}" ] && quota=(--edge-cpu-quota "$EDGE_CPU_QUOTA")
# per scenario: traces this many times faster, real seconds per policy, frames a second.
#  vehicle_trace (ResNet50, 7 policies x 25 s = 175 s): the car trace x4 faster (100 s of
#    it, ~4 tc changes a second); 1.5 frames/s = 38 frames a policy (0.2 in the YAML).
#  busy_edge (ResNet50V2, 6 policies x 30 s = 180 s): the 600 s stress ramp x20 faster
#    (a step every 5-7.5 s); 1 frame/s = 30 frames a policy (0.5 in the YAML).
#  The four Norway HSDPA scenarios (5 policies x 36 s = 180 s each): the trace x5 faster,
#    so each policy sees its first 180 s of 600 (89-266 bandwidth steps, 2.5-48 Mbit/s):
#  norway_ferry_20, norway_train_1 (ResNet50), norway_bus_1 (ResNet50V2): 1.5 frames/s =
#    54 frames a policy (0.2 / 0.5 / 0.5 in the YAML); norway_metro_2 (AlexNet): its own
#    2 frames/s = 72 frames a policy. In the twin every stage of every policy is at most
#    ~22 % busy on average (all run all-edge there: the edge's ResNet50 takes ~0.19 s).
#  Idle, expect ~7.5 min per ResNet scenario and ~6.5 min for AlexNet (~29 min for the four).
#  The four VGG scenarios (this machine's VGG rows: 3 CPU x 3 memory levels, 7 repeats):
#  norway_car_3, fcc_amazon_797466 (VGG16, 5 policies x 36 s, trace x5): 1 frame/s = 36
#    frames a policy (0.25 / 0.2 in the YAML); every policy runs all-edge in the twin
#    (the 1-core cloud is no faster than the edge, the input 150 kB), the edge ~54 % busy.
#  user_policy (VGG19, 6 policies x 30 s, car_3 x10 trace x5): 0.8 frames/s = 24 frames
#    (0.2 in the YAML); bandwidth-rule's uplink is the busiest stage, ~64 % in the twin.
#  combined (VGG19, 6 policies x 30 s, the 600 s of stress episodes x20 faster): 0.6
#    frames/s = 18 frames (0.15 in the YAML); static-best's edge ~59 % busy under stress.
declare -A plan=(
  [vehicle_trace]="4 25 1.5"
  [busy_edge]="20 30 1"
  [norway_ferry_20]="5 36 1.5"
  [norway_train_1]="5 36 1.5"
  [norway_bus_1]="5 36 1.5"
  [norway_metro_2]="5 36 2"
  [norway_car_3]="5 36 1"
  [fcc_amazon_797466]="5 36 1"
  [user_policy]="5 30 0.8"
  [combined]="20 30 0.6"
)
start=$SECONDS
mkdir -p "$out"
for name in ${SCENARIOS:-vehicle_trace busy_edge}; do
  [ -n "${plan[$name]:-}" ] || { echo "validate_shipped: no plan for $name" >&2; exit 2; }
  read -r scale duration rate <<<"${PLAN:-${plan[$name]}}"
  duration=${DURATION:-$duration}
  common=(scenarios/$name.yaml "${calopt[@]}" --time-scale "$scale" --duration "$duration"
          --rate-hz "$rate" --policies "$policies" --probe-frames "${PROBE_FRAMES:-5}"
          --probe-every "${PROBE_EVERY:-2}" --probe-pool "${PROBE_POOL:-run}" "${quota[@]}")
  t0=$SECONDS
  echo "== $name: seed 1 (traces x$scale, $duration s per policy, $rate frames/s)"
  $a validate "${common[@]}" --seed 1 --out "$out/$name-seed1"
  echo "== $name: seed 2, and the fold-back fitted on seed 1"
  $a validate "${common[@]}" --seed 2 --fold-back "$out/$name-seed1" --out "$out/$name-seed2"
  .venv/bin/python -m adaptsim.testbed.scorecard "$out/$name-seed1" "$out/$name-seed2" \
    | tee "$out/$name-scorecard.md"
  if [ "${PROBE_EVERY:-2}" != 0 ]; then  # the same runs, the probes during them ignored / pooled
    for pool in ends seed; do
      .venv/bin/python -m adaptsim.testbed.scorecard --probe-pool "$pool" \
        "$out/$name-seed1" "$out/$name-seed2" > "$out/$name-scorecard-$pool.md"
    done
    echo "== $name: also $out/$name-scorecard-ends.md (probes before/after alone) and -seed.md"
  fi
  echo "== $name: $((SECONDS - t0)) s wall (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
done
echo "== validate_shipped: $((SECONDS - start)) s wall in all; tables in $out/*-scorecard.md"
