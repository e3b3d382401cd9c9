"""Prints how closely every conformance case matches its reference.

For each case of ``tests/cases.py``: the largest difference over 200 steps, relative
to each leaf's scale (the measure the tests bound), and whether it is bit for bit.

Run:  python benchmarks/conformance_report.py
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "tests"))

from cases import CASES, problem

from gradtx.testing import run_updates, scaled_difference


def main() -> None:
    print(f"{'case':40s} {'bound':>7s} {'reached':>9s}  bit-exact")
    exact = 0
    for case in CASES:
        params, grads = problem(case, 200)
        ours, _ = run_updates(case.gradtx(), params, grads)
        theirs, _ = run_updates(case.reference(), params, grads)
        err = scaled_difference(ours, theirs)
        exact += err == 0.0
        print(f"{case.id:40s} {case.rtol:7.0e} {err:9.2e}  {'yes' if err == 0.0 else 'no'}")
    print(f"\n{len(CASES)} cases, {exact} bit for bit.")


if __name__ == "__main__":
    main()
