"""The benchmark scripts run (at toy sizes), so BENCHMARKS.md stays reproducible.
No timing is asserted here."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

BENCH = pathlib.Path(__file__).parent.parent / "benchmarks"


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, timeout=600)
    return done.stdout


def test_step_benchmark_and_report(tmp_path):
    out = tmp_path / "step.json"
    run(
        str(BENCH / "step.py"),
        "--leaves",
        "3",
        "--params",
        "4096",
        "--optimizers",
        "adamw_clip",
        "--rounds",
        "2",
        "--steps",
        "1",
        "--compile-samples",
        "1",
        "--json",
        str(out),
    )
    data = json.loads(out.read_text())
    rows = data["results"]
    assert {r["variant"] for r in rows} == {
        "optax",
        "gradtx",
        "gradtx packed",
        "torch foreach",
        "torch fused",
    }
    assert len(rows) == 2 * 5
    assert {"revision", "versions", "machine", "date", "command"} <= set(data["stamp"])
    for r in rows:
        assert len(r["step_ms_rounds"]) == 2 and r["noise"] >= 0 and r["faults_per_step"] >= 0
        if r["variant"] in ("optax", "gradtx", "gradtx packed"):
            assert r["compile_s"] > 0 and r["trace_s"] > 0  # from a fresh process
    assert rows[0]["bytes_per_step"] == 4 * 8 * rows[0]["params"]  # adamw_clip update: 8 words
    table = run(str(BENCH / "report.py"), str(out))
    assert "| 3 leaves | adamw_clip | train |" in table


def test_zero1_memory_script_measures_a_quarter_on_four_devices(tmp_path):
    out = tmp_path / "zero1.json"
    subprocess.run(
        [
            sys.executable,
            str(BENCH / "zero1_memory.py"),
            "--devices",
            "4",
            "--layers",
            "1",
            "--width",
            "32",
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    data = json.loads(out.read_text())
    rows = data["rows"]
    for replicated, zero in zip(rows[::2], rows[1::2], strict=True):
        assert (replicated["layout"], zero["layout"]) == ("replicated", "ZeRO-1")
        # Adam's two moments: 8 bytes per float32 parameter, an int32 count per stateful block.
        counters = replicated["state_bytes"] - 2 * replicated["params_bytes"]
        assert 0 < counters <= 16
        assert zero["state_bytes"] == 2 * replicated["params_bytes"] // 4 + counters
        assert zero["same_params_as_replicated"] is True
        # one all-gather per new parameter (embedding + 5 leaves per block), no all-reduce
        assert zero["collectives"] == f"{data['leaves']} all-gather" and data["leaves"] == 6
        assert replicated["collectives"] == "none"


@pytest.mark.parametrize("page", ["BENCHMARKS.md", "README.md", "docs/packed.md"])
def test_page_matches_its_results(page):
    """Every figure between report markers is what the committed results give."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "report.py"), "--check", page],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_mutant_still_applies():
    """The standing mutation check (benchmarks/mutants.py) names code that exists."""
    sys.path.insert(0, str(BENCH))
    import mutants  # pyright: ignore[reportMissingImports]

    for m in mutants.MUTANTS:
        text = (mutants.ROOT / m.file).read_text()
        assert text.count(m.old) == 1, f"{m.id}: its code is {'gone' if m.old not in text else 'ambiguous'}"
        assert all((mutants.ROOT / t).exists() for t in m.tests), m.id
    assert f"plants {len(mutants.MUTANTS)} known" in (mutants.ROOT / "README.md").read_text()


def test_state_dtype_benchmark():
    text = run(str(BENCH / "state_dtypes.py"), "--epochs", "1")
    assert "bfloat16 mu and nu" in text


def test_quantized_state_benchmark(tmp_path):
    out = tmp_path / "quantized.json"
    run(
        str(BENCH / "quantized.py"),
        "--parts", "accuracy,seeds,speed,peak", "--seeds", "1",
        "--digits-steps", "3", "--lm-steps", "3", "--layouts", "1", "--rounds", "1", "--steps", "1",
        "--json", str(out),
    )  # fmt: skip
    data = json.loads(out.read_text())
    states = {(r["task"], r["state"]) for r in data["accuracy"]}
    assert ("char-level LM", "4-bit, v map with zero") in states and len(states) == 2 * 7
    # The seeds part's emulated 4-bit state is gradtx's 4-bit state (what BENCHMARKS.md
    # relies on to read its rank-1 rows), and each rank-1 variant changes something.
    seeds = {(r["task"], r["state"]): r for r in data["seeds"]}
    for task in ("digits MLP", "char-level LM"):
        real, emulated = seeds[(task, "4-bit")], seeds[(task, "4-bit emulated")]
        for field in ("final_loss", "held_out_loss"):
            np.testing.assert_allclose(emulated[field], real[field], rtol=1e-5, err_msg=f"{task} {field}")
        for variant in ("rank-1 linear v", "rank-1 dynamic v"):
            assert seeds[(task, f"4-bit emulated, {variant}")]["held_out_loss"] != real["held_out_loss"]
    names = {r["name"] for r in data["speed"] if "seconds" in r}
    expected = {"gradtx 8-bit", "gradtx 4-bit", "gradtx 8-bit, tiled", "optax float32", "torch AdamW fused"}
    assert expected <= names
    # The peak part reads XLA's buffer assignment: the tiled step's temporaries are a
    # gradient's worth (4 bytes a parameter), the whole step's two float32 moments (8).
    peak = {r["name"]: r for r in data["peak"]}
    assert peak["gradtx 8-bit"]["temporaries"] >= 8.0 > 4.2 >= peak["gradtx 8-bit, tiled"]["temporaries"]
    assert peak["gradtx float32"]["peak"] == pytest.approx(16.0, abs=1e-3)  # p, g, m, v; no temporary
    table = run(str(BENCH / "report.py"), "--kind", "quantized", str(out))
    assert "| 1 leaf (4M) | gradtx 8-bit |" in table
    assert "| 1 leaf (4M) | gradtx 8-bit, tiled | 2.031 |" in table
