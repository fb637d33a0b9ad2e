#!/usr/bin/env bash
# A slower edge, end to end (root, 2 cores, nothing else running): the edge emulated as a
# Raspberry-Pi-class device ~5x slower than the 1-core cloud, by a cgroup CPU quota of
# QUOTA cores on CPU 0 (docs/validation.md, "A slower edge"). Three steps:
#   1. profile: a COPY of docs/own_profiles/own.parquet (its cloud vm-cloud1 and its link
#      are kept) gets this host's edge under the quota as host vm-q$QUOTA, only the
#      condition the scenario uses (no stress), into docs/own_profiles/slowedge.parquet;
#   2. calibrate: edge vm-q$QUOTA + cloud vm-cloud1 + the link, with its check, into the
#      shipped src/adaptsim/data/calibration_own_slowedge.json;
#   3. scripts/validate_shipped.sh with --edge-cpu-quota: seed 1, then seed 2 with the
#      fold-back fitted on seed 1, and the scorecard.
# The plan (chosen in the twin, scripts/slowedge_twin.py --factor 5): norway_train_1
# (ResNet50), its trace x2 faster, 5 policies x 36 s, 0.8 frames/s = 29 frames a policy;
# static-best runs all-edge (its edge ~58 % busy), the adaptive policies move between
# all-cloud and all-edge and are 10-15 % faster in the twin; every stage below ~70 % busy.
# Idle, expect ~5-6 min for steps 1-2 and ~8 min for step 3.
# Usage: [QUOTA=0.2] [MODELS=resnet50] [SCENARIOS=norway_train_1] [PLAN="2 36 0.8"]
#        [OUT=results/validation-slowedge] [REPEATS=10] [SKIP_PROFILE=1]
#        scripts/validate_slowedge.sh
set -euo pipefail
cd "$(dirname "$0")/.."
a=.venv/bin/adaptsim
quota=${QUOTA:-0.2}
host=vm-q$quota
models=${MODELS:-resnet50}
store=${STORE:-docs/own_profiles/slowedge.parquet}
cal=${CALIBRATION:-src/adaptsim/data/calibration_own_slowedge.json}
out=${OUT:-results/validation-slowedge}
start=$SECONDS
mkdir -p "$out"
if [ "${SKIP_PROFILE:-0}" != 1 ]; then
  cp docs/own_profiles/own.parquet "$store.tmp" && mv "$store.tmp" "$store"
  echo "== profile: the edge on CPU 0 under a CPU quota of $quota cores ($models, no stress)"
  $a profile --host edge --cpus 0 --cpu-quota "$quota" --cpu-stress 0 --mem-stress 0 \
    -m "$models" --repeats "${REPEATS:-10}" --rounds 1 --host-name "$host" --out "$store"
  echo "== calibrate: edge $host, cloud vm-cloud1"
  $a calibrate "$store" -m "$models" --edge-host "$host" --cloud-host vm-cloud1 --out "$cal" \
    --check --check-out "$out/calibration-check.csv"
  echo "== profile and calibration: $((SECONDS - start)) s wall"
fi
CALIBRATION=$cal EDGE_CPU_QUOTA=$quota PLAN=${PLAN:-2 36 0.8} OUT=$out \
  SCENARIOS=${SCENARIOS:-norway_train_1} scripts/validate_shipped.sh
echo "== validate_slowedge: $((SECONDS - start)) s wall in all"
