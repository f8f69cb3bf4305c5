"""Search latency over a full-size index: ``python -m benchmarks.bench_search [--names N] [--record]``.

The index holds the package data (43 CytoSig signatures, ~27,000 genes with ~67,000 NCBI aliases, the
common cell types with the shipped crosswalk labels) padded with synthetic entities (diseases, organs,
cancer types, cell-type labels: seeded random names of 4-14 letters and digits) up to ``--names``
names and aliases. Queries (seeded, 200 of each kind): an exact name, an alias, a 3-character
prefix, an inner substring, a one-transposition typo, and a random string that matches nothing.
Each query is timed alone (``time.perf_counter``, after one warm-up pass); the table gives the median
and the 99th percentile per kind and overall. Reference: a brute-force rapidfuzz scan of every key
(``process.extract`` with the OSA distance, score_cutoff 2), the work the index's structures avoid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import string
import time
from pathlib import Path

import numpy as np
import psutil

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def padded_index(n_names: int, seed: int = 0):
    from cytodask.search import SearchIndex
    from cytodask.search.entities import Entities, package_entities

    ent = package_entities(Entities())
    base = SearchIndex(ent.frame()).n_names
    rng = np.random.default_rng(seed)
    alphabet = np.array(list(string.ascii_uppercase + string.digits))
    kinds = ["disease", "organ", "cancer_type", "cell_type"]
    for i in range(max(0, n_names - base)):
        name = "".join(rng.choice(alphabet, size=int(rng.integers(4, 15))))
        ent.add(f"{name}{i}", kinds[i % 4], appears=["bench:synthetic"])
    return SearchIndex(ent.frame())


def queries(index, n: int = 200, seed: int = 1) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    names = index.entities["name"].to_numpy(object)
    genes = index.entities[index.entities["type"] == "gene"]
    aliases = [a for lst in genes["aliases"] for a in lst]
    pick = lambda pool: [pool[i] for i in rng.integers(0, len(pool), n)]  # noqa: E731
    long = [x for x in names if len(x) >= 6]

    def typo(s: str) -> str:
        i = int(rng.integers(0, len(s) - 1))
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]

    return {"exact": pick(names), "alias": pick(aliases), "prefix": [x[:3] for x in pick(long)],
            "contains": [x[2:6] for x in pick(long)], "typo": [typo(x) for x in pick(long)],
            "miss": ["".join(rng.choice(list("qxzjvw"), 7)) for _ in range(n)]}


def time_queries(index, qs: dict[str, list[str]]) -> dict[str, list[float]]:
    from cytodask.search import search

    out: dict[str, list[float]] = {}
    for kind, items in qs.items():
        for q in items:  # warm-up
            search(index, q)
        times = []
        for q in items:
            t0 = time.perf_counter()
            search(index, q)
            times.append(time.perf_counter() - t0)
        out[kind] = times
    return out


def brute_force(index, qs: list[str]) -> list[float]:
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    from cytodask.search.index import fold

    keys = index.sorted_keys
    times = []
    for q in qs:
        t0 = time.perf_counter()
        process.extract(fold(q), keys, scorer=OSA.distance, score_cutoff=2, limit=20)
        times.append(time.perf_counter() - t0)
    return times


def p99(xs: list[float]) -> float:
    return float(np.percentile(xs, 99))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=300_000, help="names and aliases in the index (default 300,000)")
    ap.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    index = padded_index(args.names)
    build = time.perf_counter() - t0
    qs = queries(index)
    times = time_queries(index, qs)
    every = [t for ts in times.values() for t in ts]
    ref = brute_force(index, qs["typo"][:50])
    mem = psutil.virtual_memory().total / 2**30
    rows = [f"| search | {kind} ({len(ts)} queries), {index.n_names:,} names | {statistics.median(ts) * 1e3:.3g} ms "
            f"| {p99(ts) * 1e3:.3g} ms |" for kind, ts in times.items()]
    rows.append(f"| search | all kinds ({len(every)} queries), {index.n_names:,} names | "
                f"{statistics.median(every) * 1e3:.3g} ms | {p99(every) * 1e3:.3g} ms |")
    rows.append(f"| reference | brute-force rapidfuzz OSA scan of every key (50 typo queries) | "
                f"{statistics.median(ref) * 1e3:.3g} ms | {p99(ref) * 1e3:.3g} ms |")
    text = "\n".join([
        f"### {dt.date.today()} — `python -m benchmarks.bench_search --names {args.names}`", "",
        f"Machine: {platform.machine()} {psutil.cpu_count()} CPUs, {mem:.0f} GiB, Python {platform.python_version()}; "
        f"load average {' '.join(f'{x:.1f}' for x in psutil.getloadavg())}. Index: {len(index.entities):,} entities, "
        f"{index.n_names:,} names and aliases, built in {build:.1f} s. One query at a time, after a warm-up pass.",
        "", "| family | queries | median | p99 |", "|---|---|---|---|", *rows, ""])
    print(text)
    if args.record:
        with RESULTS.open("a") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
