"""The tour runs end to end, gradtx matches optax on a real training run, and the
figure is written."""

import importlib.util
import pathlib

from conftest import reference_numerics

TOUR = pathlib.Path(__file__).parent.parent / "examples" / "tour.py"


def test_tour_trains_like_optax(tmp_path):
    spec = importlib.util.spec_from_file_location("tour", TOUR)
    assert spec is not None and spec.loader is not None
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    with reference_numerics():  # the tour runs optax too
        results = tour.run(epochs=3, out=str(tmp_path), verbose=False)
    assert [r["name"] for r in results] == ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam"]
    for r in results:
        assert r["max_param_diff"] <= 1e-6, r["name"]
        assert r["accuracy"] > 0.3, r["name"]  # far above chance (0.1) after 3 epochs
        assert len(r["loss"]) == 3 * (1437 // 128)
    assert (tmp_path / "loss_curves.png").stat().st_size > 10_000


def test_schedules_example_plots_every_schedule(tmp_path):
    import subprocess
    import sys

    script = TOUR.parent / "schedules.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert "21 schedules plotted" in done.stdout
    assert (tmp_path / "schedules.png").stat().st_size > 50_000
