"""The tour runs end to end, gradtx matches optax on a real training run, and the
figure is written."""

import importlib.util
import pathlib

import numpy as np
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
        assert r["max_loss_diff"] <= 1e-6, r["name"]
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


def test_optimizer_paths_example_draws_the_seeds_figure(tmp_path):
    import subprocess
    import sys

    script = TOUR.parent / "optimizer_paths.py"
    done = subprocess.run(
        [sys.executable, str(script), "--steps", "5", "--grid", "20", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "8 optimizer paths plotted" in done.stdout
    assert (tmp_path / "optimizer_paths.png").stat().st_size > 20_000


def test_optimizer_paths_sgd_zig_zags_as_the_notes_show():
    """SGD at 0.95 on x^2/20 + y^2: x <- 0.905 x and y <- -0.9 y, a zig-zag along y."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("optimizer_paths", TOUR.parent / "optimizer_paths.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    points = module.path(module.OPTIMIZERS[0][1], 10)
    t = np.arange(11)
    np.testing.assert_allclose(points[:, 0], -7.0 * 0.905**t, rtol=1e-5)
    np.testing.assert_allclose(points[:, 1], 2.0 * (-0.9) ** t, rtol=1e-5)


def test_modern_example_trains_each_optimizer_and_draws_the_figure(tmp_path):
    """examples/modern.py: the five optimizers learn (schedule-free evaluated at its
    average), the figure is written, SAM and Sophia take their extra arguments."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("modern", TOUR.parent / "modern.py")
    assert spec is not None and spec.loader is not None
    modern = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(modern)
    results = modern.run(epochs=3, verbose=False)
    assert [r["name"] for r in results] == ["AdamW", "Muon", "schedule-free AdamW", "SOAP", "Prodigy"]
    for r in results:
        assert r["losses"][-1] < r["losses"][0], r["name"]
        assert r["accuracy"] > 0.5, (r["name"], r["accuracy"])
    assert modern.plot(results, tmp_path).stat().st_size > 20_000
    found = modern.sam_and_sophia(steps=30, verbose=False)
    assert found["SAM"] < 1.0 and found["Sophia"] < 1.0
