"""Prints how closely every conformance case matches its reference.

For each case of ``tests/cases.py``: the largest difference over 200 steps relative to
the scale of each leaf's step (the measure the tests bound, see
`gradtx.testing.scaled_difference`), the same relative to the run's largest value, the
bound, and whether it is bit for bit. Each row is printed (and flushed) as its case finishes,
numbered, so a run piped to a file or a terminal shows its progress (182 cases in 129 s
on 2 CPU cores).

Run:  python benchmarks/conformance_report.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _stamp import stamp
from cases import CASES, problem

from gradtx.testing import run_updates, scaled_difference


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(f"{'':9s} {'case':40s} {'bound':>7s} {'per step':>9s} {'per run':>9s}  bit-exact", flush=True)
    rows = []
    start = time.perf_counter()
    for i, case in enumerate(CASES, start=1):
        params, grads = problem(case, 200)
        ours, _ = run_updates(case.gradtx(), params, grads)
        theirs, _ = run_updates(case.reference(), params, grads)
        per_step = scaled_difference(ours, theirs, step_axis=0)
        per_run = scaled_difference(ours, theirs)
        bound = case.rtol if case.step_rtol is None else case.step_rtol
        rows.append(
            {
                "id": case.id,
                "bound": bound,
                "per_step": per_step,
                "per_run": per_run,
                "bf16": case.step_rtol is not None,
            }
        )
        exact = "yes" if per_step == 0.0 else "no"
        print(
            f"[{i:3d}/{len(CASES)}] {case.id:40s} {bound:7.0e} {per_step:9.2e} {per_run:9.2e}  {exact}",
            flush=True,
        )
    exact_count = sum(r["per_step"] == 0.0 for r in rows)
    print(f"\n{len(CASES)} cases, {exact_count} bit for bit, in {time.perf_counter() - start:.0f} s.")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"stamp": stamp(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
