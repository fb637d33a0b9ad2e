#!/usr/bin/env bash
# Profile this machine as edge (pinned to CPU 0: a 1-core edge, its stress on the same
# core), cloud (all cores) and link, then calibrate and check: how docs/own_profiles was
# made. Needs root (tc, netns) and stress-ng. Keep the machine otherwise idle meanwhile.
# Usage: [REPEATS=30] [ROUNDS=3] [TESTBED=1] scripts/profile_here.sh [OUT_DIR] [MODELS]
# (MODELS comma-separated; REPEATS timings per point and condition, split over ROUNDS
# fresh stress-ng runs per condition; TESTBED=1 profiles the cloud as `adaptsim validate`
# places it: pinned to CPU 1 with one TensorFlow thread)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/own_profiles}
models=${2:-lenet,alexnet,mobilenet,resnet50}
a=.venv/bin/adaptsim
reps=(--repeats "${REPEATS:-30}" --rounds "${ROUNDS:-3}")
mkdir -p "$out"
store="$out/own.parquet"
$a profile --host edge --cpus 0 --cpu-stress 0,25,50,75,100 -m "$models" "${reps[@]}" \
  --out "$store"
cloud=()
[ "${TESTBED:-0}" = 1 ] && cloud=(--cpus 1 --threads 1)
$a profile --host cloud "${cloud[@]}" -m "$models" "${reps[@]}" --out "$store"
$a profile --host link --out "$store"
$a calibrate "$store" --out "$out/own_calibration.json" --check --check-out "$out/check.csv"
