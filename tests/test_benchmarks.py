"""The benchmark scripts run (at toy sizes), so BENCHMARKS.md stays reproducible.
No timing is asserted here."""

import json
import pathlib
import subprocess
import sys

BENCH = pathlib.Path(__file__).parent.parent / "benchmarks"


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, timeout=600)
    return done.stdout


def test_step_benchmark_and_report(tmp_path):
    out = tmp_path / "step.json"
    run(
        str(BENCH / "step.py"),
        "--leaves",
        "1,3",
        "--params",
        "4096",
        "--optimizers",
        "adam,adamw_clip",
        "--rounds",
        "1",
        "--steps",
        "1",
        "--json",
        str(out),
    )
    rows = json.loads(out.read_text())["results"]
    variants = {r["variant"] for r in rows}
    assert variants == {"optax", "gradtx", "gradtx packed", "torch foreach", "torch fused"}
    assert len(rows) == 2 * 2 * 2 * 5
    table = run(str(BENCH / "report.py"), str(out))
    assert "| 3 leaves | adamw_clip | train |" in table


def test_state_dtype_benchmark():
    text = run(str(BENCH / "state_dtypes.py"), "--epochs", "1")
    assert "bfloat16 mu and nu" in text
