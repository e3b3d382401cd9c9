"""Eight simulated CPU devices, in their own process (the device count is fixed when JAX
starts): parameters sharded data-parallel (replicated) and model-parallel
(``P(None, 'x')``), under an explicit-sharding mesh (``jax.set_mesh``) and under the
classic one. ``init`` gives the state the parameters' sharding (also abstractly, from
``jax.eval_shape`` over ``ShapeDtypeStruct``s); the jitted update keeps every sharding
and its compiled HLO gathers nothing (global-norm clipping all-reduces its partial sums
of squares); a ZeRO-1 layout shards the state over the data axis with replicated
parameters, at an eighth of the state's bytes per device."""

import json
import os
import pathlib
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def report() -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    script = pathlib.Path(__file__).with_name("eight_devices.py")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "layout", ["classic-replicated", "classic-model", "explicit-replicated", "explicit-model"]
)
def test_sharded_update_keeps_shardings_and_gathers_nothing(report: dict, layout: str):
    ops = report[layout]["ops"]
    assert ops["all-gather"] == 0 and ops["all-to-all"] == 0 and ops["collective-permute"] == 0, ops
    # Replicated: every device computes the whole norm, nothing to reduce. Model-parallel:
    # the global norm's partial sums of squares (a scalar per leaf) meet in one all-reduce.
    if layout.endswith("replicated"):
        assert ops["all-reduce"] == 0, ops
    else:
        assert ops["all-reduce"] == 1, ops
        scalars = ops["all-reduce types"][0].strip("()").split(", ")
        assert set(scalars) == {"f32[]"} and len(scalars) <= 2, ops  # one per parameter leaf


def test_zero1_state_takes_an_eighth_per_device(report: dict):
    zero = report["zero1"]
    counts = 3 * 4  # adam's three int32 step counts, replicated
    assert zero["state_bytes_replicated"] == 2 * zero["params_bytes"] + counts, zero  # mu and nu
    assert (zero["state_bytes_zero1"] - counts) * 8 == zero["state_bytes_replicated"] - counts, zero
    # Each device updates its eighth; the new parameters are gathered, one per leaf.
    assert zero["ops"]["all-gather"] == 2 and zero["ops"]["all-reduce"] == 0, zero


def test_zero1_shards_8_bit_state_by_whole_blocks(report: dict):
    """8-bit moments under ZeRO-1: the same numbers as unsharded (asserted in the
    script), an eighth of the quantized state per device; each device holds whole blocks
    (codes and their scale), so decoding and re-encoding need no communication."""
    zero = report["zero1_8bit"]
    counts = 3 * 4
    w_bytes = 2 * (64 * 32 + 4 * 64 * 32 // 256)  # mu and nu: codes and a scale per block
    b_bytes = 2 * (256 + 4)  # b: 64 values padded to one block, which stays whole (replicated)
    assert zero["state_bytes_replicated"] == w_bytes + b_bytes + counts, zero
    assert zero["state_bytes_zero1"] == w_bytes // 8 + b_bytes + counts, zero
    assert zero["ops"]["all-to-all"] == 0 and zero["ops"]["collective-permute"] == 0, zero


@pytest.mark.parametrize("mesh", ["classic", "explicit"])
@pytest.mark.parametrize("axis", ["rows", "last"])
def test_sharded_8_bit_state_keeps_blocks_on_their_device(report: dict, mesh: str, axis: str):
    """8-bit AdamW on sharded parameters (three steps, the same numbers as unsharded:
    asserted in the script). ``init`` puts each block on the device holding its values and
    the update keeps it there: an eighth of w's codes per device, sharded like w (FSDP
    over rows; tensor parallel over the last axis, where w's rows hold whole blocks), and
    nothing gathered but v's moments, whose 4-value shards would cut a block."""
    r = report["sharded_8bit"][f"{mesh}-{axis}"]
    w_spec = ["x", "None", "None"] if axis == "rows" else ["None", "x", "None"]
    assert r["init_codes_spec"]["w"] == r["codes_spec"]["w"] == w_spec, r
    assert r["scales_spec"] == w_spec[:-1], r
    assert r["w_codes_bytes_on_device_0"] * 8 == r["w_codes_bytes"], r
    ops = r["ops"]
    assert ops["all-to-all"] == 0 and ops["collective-permute"] == 0 and ops["all-reduce"] == 0, ops
    if axis == "rows":  # v: 8 rows of 32 a device, one whole block
        assert r["codes_spec"]["v"] == ["x", "None"] and ops["all-gather"] == 0, r
    else:  # v's blocks replicated: its two moments gathered, nothing of w
        assert r["codes_spec"]["v"] == ["None", "None"], r
        gathered = ops["all-gather types"]
        assert ops["all-gather"] == 2 and all(t.startswith("f32[64,32]") for t in gathered), ops


@pytest.mark.parametrize("mesh", ["classic", "explicit"])
@pytest.mark.parametrize("bits", ["8bit", "4bit"])
@pytest.mark.parametrize("layout", ["blocks", "segments", "segments-odd"])
def test_packed_quantized_state_shards_like_its_buffer(report: dict, mesh: str, bits: str, layout: str):
    """Quantized AdamW on a packed buffer sharded over 8 devices (three steps, the same
    numbers as unsharded: asserted in the script). The codes follow the buffer, an eighth
    on each device: in the plain block layout with their scales and no collective; with
    blocks restarting at every leaf, the per-block scales replicated and their maxima
    reduced across devices (one all-reduce a moment, or both combined). A buffer whose
    4-bit codes would end a device's shard in half a byte is encoded replicated (its
    values gathered) rather than failing."""
    r = report["packed_quantized"][f"{layout}-{bits}-{mesh}"]
    ops = r["ops"]
    assert ops["all-to-all"] == 0 and ops["collective-permute"] == 0, ops
    if layout == "blocks":
        assert r["init_codes_spec"] == r["codes_spec"] == ["x", "None"], r
        assert r["scales_spec"] == ["x"], r
        assert r["codes_bytes_on_device_0"] * 8 == r["codes_bytes"], r
        assert ops["all-gather"] == 0 and ops["all-reduce"] == 0, ops
    elif layout == "segments" or bits == "8bit":
        assert r["init_codes_spec"] == r["codes_spec"] == ["None", "x"], r
        assert r["scales_spec"] == ["None"], r
        assert r["codes_bytes_on_device_0"] * 8 == r["codes_bytes"], r
        assert ops["all-gather"] == 0 and 1 <= ops["all-reduce"] <= 2, ops
        assert all(t.startswith(("f32[", "(f32[")) for t in ops["all-reduce types"]), ops
    else:
        assert r["init_codes_spec"] == r["codes_spec"] == ["None", "None"], r
        assert r["codes_bytes_on_device_0"] == r["codes_bytes"], r
