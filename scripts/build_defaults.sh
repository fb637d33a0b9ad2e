#!/usr/bin/env bash
# Rebuild the data adaptsim ships from the published measurements:
#   src/adaptsim/data/calibration_adaptivednn.json  (the default calibration)
#   docs/calibration_check*.csv                      (its leave-one-level-out check,
#                                                    overall and per held-out factor)
# Usage: scripts/build_defaults.sh [PATH/TO/shared/data] [OUT]
#   (default data: ../shared/data; with OUT, the files go to that folder instead,
#   to compare a rebuild with what is shipped without touching it)
# Only this script reads the shared data; adaptsim itself never does at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
cal=src/adaptsim/data/calibration_adaptivednn.json
check=docs/calibration_check.csv
if [ -n "${2:-}" ]; then
  mkdir -p "$2"
  cal=$2/calibration_adaptivednn.json
  check=$2/calibration_check.csv
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/adaptsim import adaptivednn "$data/adaptivednn/2020-05-27" "$data/adaptivednn/2021-08-20" \
  --out "$tmp/store.parquet"
mkdir -p "$(dirname "$check")"
.venv/bin/adaptsim calibrate "$tmp/store.parquet" --out "$cal" --check --check-out "$check"
rm -f "${check%.csv}-detail.csv"  # 1 MB; rebuilt by this script when wanted
# The provenance names a temporary store path; keep the sources, drop the path.
CAL="$cal" .venv/bin/python - <<'PY'
import json, os, pathlib
p = pathlib.Path(os.environ["CAL"])
doc = json.loads(p.read_text())
doc["provenance"]["store"] = "adaptivednn 2020-05-27 + 2021-08-20 (scripts/build_defaults.sh)"
for src in doc["provenance"]["sources"].values():
    src["paths"] = [s.split("/data/", 1)[-1] for s in src["paths"]]
p.write_text(json.dumps(doc, separators=(",", ":")))
PY
