"""Reading a validation folder (``adaptsim validate --out``), or saying in one line why not.

Three readers take such folders: ``validate --fold-back`` (the real run of another
seed folds back into this one's twin), the scorecard and the re-scoring of saved
runs, and the validation report. Each went straight to pandas and ``json``: a folder
that was not a validation folder, was truncated by a full disk, or was edited by
hand gave a traceback (``--fold-back`` before the real run started, the others at
the end of minutes of re-simulation). The checks here are those of a results
folder (:mod:`adaptsim.report.folder`): every file there and readable, the facts a
JSON object with the scenario, seeds and duration, the records with the columns a
comparison uses, of the types a run writes.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from adaptsim.errors import UserError
from adaptsim.files import load_json
from adaptsim.report.folder import check_records, read_csv_file, read_parquet_file

__all__ = [
    "COMPARED",
    "HOW",
    "REAL_SUMMARY",
    "fold_back_source",
    "host_speed_facts",
    "scored_source",
    "validation_facts",
    "validation_records",
    "validation_table",
]

HOW = "give the --out folder of `adaptsim validate`"  # how to mend a folder a reader refuses


def validation_facts(
    folder: str | Path, needs: tuple[str, ...] = (), incomplete_ok: bool = False
) -> dict:
    """``validation.json`` of ``folder``, checked to hold what its readers take from it:
    the scenario, duration and seeds, and the keys in ``needs``; an incomplete
    validation's refused (``incomplete_ok``: taken, to finish it)."""
    d = Path(folder)
    if not d.is_dir():
        raise UserError(f"{d}: not a validation folder (no such folder); {HOW}")
    path = d / "validation.json"
    if not path.is_file():
        raise UserError(f"{d}: not a validation folder (validation.json missing); {HOW}")
    try:
        facts = load_json(path, "validation facts")
    except UserError as exc:
        raise UserError(f"{exc}; {HOW}") from None
    if not isinstance(facts, dict):
        raise UserError(f"{path}: not written by `adaptsim validate` (not an object); {HOW}")
    if facts.get("incomplete") and not incomplete_ok:  # real runs, no twin compared
        raise UserError(f"{path}: incomplete: {facts['incomplete']}")
    duration = facts.get("duration_s")
    seeds = facts.get("seeds")
    problems = {
        "scenario": not isinstance(facts.get("scenario"), str),
        "duration_s": isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not math.isfinite(duration)
        or duration <= 0,
        "seeds": not isinstance(seeds, list)
        or not seeds
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds),
    }
    problems.update({key: facts.get(key) is None for key in needs})
    wrong = [key for key, bad in problems.items() if bad]
    if wrong:
        raise UserError(
            f"{path}: {wrong[0]} is missing or not what `adaptsim validate` writes "
            f"({facts.get(wrong[0])!r}); {HOW}"
        )
    return facts


def validation_records(folder: str | Path, side: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """``real/`` or ``simulated/`` per-frame records of ``folder``, checked, with the
    numeric columns ``extra`` too."""
    path = _present(folder, f"{side}/records.parquet")
    records = read_parquet_file(path, HOW)
    check_records(records, path, HOW)
    for column in ("request", "edge_s", "cloud_s", "uplink_s", *extra):
        if column not in records.columns or not pd.api.types.is_numeric_dtype(records[column]):
            raise UserError(f"{path}: no numeric column {column}; {HOW}")
    return records


# the columns of a comparison table (comparison.csv, comparison_probed.csv, ...) its
# readers take: the policy, then numbers
COMPARED = (
    "policy",
    "frames",
    *(f"{side}_{stat}_s" for stat in ("mean", "p50", "p95") for side in ("measured", "simulated")),
    *(f"{stat}_error_pct" for stat in ("mean", "p50", "p95")),
    "measured_miss_rate",
    "simulated_miss_rate",
    "miss_rate_diff",
)


def validation_table(folder: str | Path, name: str, needs: tuple[str, ...] = ("policy",)):
    """A CSV table of ``folder`` (``comparison.csv``, ``real/summary.csv``, ...), checked:
    the columns ``needs`` there, every one but ``policy`` numbers (or empty)."""
    path = _present(folder, name)
    table = read_csv_file(path, HOW, needs)
    for column in needs:
        if column != "policy" and not pd.api.types.is_numeric_dtype(table[column]):
            raise UserError(f"{path}: column {column} must hold numbers; {HOW}")
    return table


def host_speed_facts(folder: str | Path, facts: dict) -> dict:
    """``host_speed`` of a folder's facts, checked (``{}`` when absent): the probes as
    :func:`~adaptsim.testbed.host_speed.check_host_probes` checks them, and the speeds
    ``validate`` derived beside them numbers or null."""
    from adaptsim.testbed.host_speed import check_host_probes

    path = Path(folder) / "validation.json"
    probes = check_host_probes(facts.get("host_speed"), str(path))
    for key, p in probes.items():
        for field in _DERIVED_SPEEDS:
            v = p.get(field)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise UserError(
                    f"{path}: field host_speed.{key}.{field}: not a number ({v!r}); {HOW}, "
                    "or delete the field (the report then shows n/a)"
                )
    return probes


_DERIVED_SPEEDS = ("edge", "cloud", "edge_median_s", "cloud_median_s", "edge_predicted_s",
                   "cloud_predicted_s")  # fmt: skip


def _present(folder: str | Path, name: str) -> Path:
    if not (Path(folder) / name).is_file():
        raise UserError(f"{folder}: not a validation folder ({name} missing); {HOW}")
    return Path(folder) / name


# the columns of real/summary.csv a comparison takes (compare.compare_policies)
REAL_SUMMARY = ("policy", "requests", "mean_s", "p50_s", "p95_s", "deadline_miss_rate",
                "repartitions")  # fmt: skip


def scored_source(folder: str | Path, incomplete_ok: bool = False) -> dict:
    """Refuse, before any simulation, a folder whose saved real run cannot be scored again
    (re-scoring, the scorecard, the scripts, ``validate --resume`` with ``incomplete_ok``):
    its facts, real records and summary; the facts."""
    facts = validation_facts(folder, incomplete_ok=incomplete_ok)
    host_speed_facts(folder, facts)
    records = validation_records(folder, "real")
    summary = validation_table(folder, "real/summary.csv", REAL_SUMMARY)
    lost = [p for p in summary["policy"] if p not in set(records["policy"])]
    if lost:  # a summary and records of different runs: one of them damaged
        raise UserError(
            f"{Path(folder) / 'real/records.parquet'}: no records of {lost[0]}, which "
            f"real/summary.csv lists; {HOW}"
        )
    return facts


def fold_back_source(folder: str | Path, what: str = "--fold-back") -> None:
    """Refuse, before any real run, a folder a fold-back cannot be fitted on."""
    try:
        facts = scored_source(folder)
        for key in ("applied", "clock"):  # the lag's fit reads them per run
            if not isinstance(facts.get(key, {}), dict):
                raise UserError(
                    f"{Path(folder) / 'validation.json'}: {key} is not an object; {HOW}"
                )
        # the result's way back and the edge's stress level (the cloud's scale per level)
        validation_records(folder, "real", ("return_s", "edge_cpu_pct"))
        validation_records(folder, "simulated")
        summary = validation_table(folder, "real/summary.csv", ("policy", "repartitions"))
        for column in ("repartitions", "switching_s"):
            if column not in summary or not pd.api.types.is_numeric_dtype(summary[column]):
                raise UserError(
                    f"{Path(folder) / 'real/summary.csv'}: no numeric column {column}; {HOW}"
                )
    except UserError as exc:
        raise UserError(f"{what} {folder}: {exc}") from None
