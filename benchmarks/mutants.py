"""Plants known bugs in a copy of gradtx, one at a time, and reports which tests catch them.

Each mutant below is one textual change to one file (it must match exactly once: a
mutant that no longer applies is reported as stale, not silently skipped) and the test
files that should catch it. For each, the script copies the revision's ``gradtx/``,
``tests/``, README and pyproject into a temporary folder, applies the change, runs
pytest there (``-x``, stopping at the first failure) and records the first failing test.
A mutant that no test fails on *survives*: a claim without a guard.

``--rev REV`` runs the same mutants against an older revision (its own code and tests,
from ``git archive``), which is how the table's column for revision e8c8918 was made.
``--full`` runs the whole test suite per mutant instead of the listed files (about
14 minutes each on 2 cores); ``--baseline`` first checks that the listed tests pass
unmutated (CI checks that for the whole suite). Not part of CI's default run: about
15 minutes in all on 2 cores.

Run:  python benchmarks/mutants.py [--rev REV] [--only ID,ID] [--full] [--baseline] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Mutant:
    id: str
    what: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    # A pytest -k expression narrowing the listed files to the tests that can see the
    # mutant (the whole conformance file takes minutes); --full ignores it.
    k: str = ""


BF16 = ("tests/test_bf16_values.py", "tests/test_conformance.py", "tests/test_readme.py")
SCHEDULED = ("tests/test_scheduled_hyperparameters.py", "tests/test_schedules.py")
CONFORMANCE = ("tests/test_conformance.py",)

MUTANTS = [
    # --- bfloat16 state (these passed every test of revision e8c8918) ---
    Mutant(
        "bf16-moment-arith",
        "moments computed in the buffer's dtype (bf16: b2 = 0.999 rounds to 1.0)",
        "gradtx/_tree.py",
        "    dtype = compute_dtype(g.dtype, m.dtype)\n    power = ",
        "    dtype = m.dtype\n    power = ",
        BF16,
        k="bf16",
    ),
    Mutant(
        "bf16-rounded-mu",
        "the update computed from the rounded (stored) first moment",
        "gradtx/blocks/momentum.py",
        "        elif self.debias:\n            out = _tree.debias(mu, b1, count)",
        "        elif self.debias:\n            out = _tree.debias(_tree.cast_like(mu, state.mu), b1, count)",
        BF16,
        k="bf16",
    ),
    Mutant(
        "bf16-rounded-nu",
        "the update computed from the rounded (stored) second moment",
        "gradtx/blocks/adaptive.py",
        "        nu_hat = _tree.debias(nu, decay, count) if self.bias_correction else nu\n",
        "        nu_hat = _tree.debias(_tree.cast_like(nu, state.nu), decay, count)"
        " if self.bias_correction else nu\n",
        BF16,
        k="bf16",
    ),
    Mutant(
        "bf16-learning-rate",
        "the learning rate rounded to the updates' bf16 (optax's behaviour)",
        "gradtx/blocks/scaling.py",
        "    return (_tree.cast(factor, dtype) * _tree.to(g, dtype)).astype(g.dtype)",
        "    return _tree.cast(factor, g.dtype) * g",
        BF16,
        k="bf16",
    ),
    # --- schedules read a step late ---
    Mutant(
        "late-decay",
        "scale_by_rms's scheduled decay (Adam's b2) read one step late",
        "gradtx/blocks/adaptive.py",
        '        decay = self.at("decay", state.count)\n'
        '        one_minus = self.one_minus_at("decay", state.count)\n'
        "        nu = jax.tree.map(lambda g, n: _tree.ema_step(g, n, decay, one_minus, 2)",
        '        decay = self.at("decay", jnp.maximum(state.count - 1, 0))\n'
        '        one_minus = self.one_minus_at("decay", jnp.maximum(state.count - 1, 0))\n'
        "        nu = jax.tree.map(lambda g, n: _tree.ema_step(g, n, decay, one_minus, 2)",
        SCHEDULED,
    ),
    Mutant(
        "late-eps",
        "scale_by_rms's scheduled eps read one step late",
        "gradtx/blocks/adaptive.py",
        '        eps, eps_root = self.at("eps", state.count), self.at("eps_root", state.count)\n'
        "        out = jax.tree.map(lambda x, n: self._scale(x, n, eps, eps_root), updates, nu_hat)",
        '        eps, eps_root = self.at("eps", jnp.maximum(state.count - 1, 0)), '
        'self.at("eps_root", state.count)\n'
        "        out = jax.tree.map(lambda x, n: self._scale(x, n, eps, eps_root), updates, nu_hat)",
        SCHEDULED,
    ),
    Mutant(
        "late-max-norm",
        "clip_by_global_norm's scheduled max_norm read one step late",
        "gradtx/blocks/clipping.py",
        '        max_norm = self.at("max_norm", count)\n        norm = _tree.global_norm(updates)',
        '        max_norm = self.at("max_norm", None if count is None else jnp.maximum(count - 1, 0))\n'
        "        norm = _tree.global_norm(updates)",
        SCHEDULED,
    ),
    Mutant(
        "late-b1",
        "momentum's scheduled b1 read one step late",
        "gradtx/blocks/momentum.py",
        '        b1 = self.at("b1", state.count)\n        one_minus = self.one_minus_at("b1", state.count)',
        '        b1 = self.at("b1", jnp.maximum(state.count - 1, 0))\n'
        '        one_minus = self.one_minus_at("b1", jnp.maximum(state.count - 1, 0))',
        SCHEDULED,
    ),
    # --- eps in default configurations ---
    Mutant(
        "eps-x10",
        "Adam's eps (outside the root) applied ten times over",
        "gradtx/blocks/adaptive.py",
        "            return _tree.divide_by_root(x, n, eps, eps_root)",
        "            return _tree.divide_by_root(x, n, 10 * eps, eps_root)",
        ("tests/test_scheduled_hyperparameters.py", "tests/test_conformance.py"),
        k="scheduled or adam or rms",
    ),
    Mutant(
        "eps-dropped",
        "Adam's eps dropped (eps-outside RMS divides by sqrt(nu) alone)",
        "gradtx/blocks/adaptive.py",
        "            return _tree.divide_by_root(x, n, eps, eps_root)",
        "            return _tree.divide_by_root(x, n, 0.0, eps_root)",
        ("tests/test_scheduled_hyperparameters.py", "tests/test_conformance.py"),
        k="scheduled or adam or rms",
    ),
    # --- what the test helpers could dilute ---
    Mutant(
        "one-late-step",
        "trace off by 2e-5 at step 150 only (a per-run scale dilutes it below 1e-6)",
        "gradtx/blocks/momentum.py",
        "            return _tree.to(g, dtype) + _tree.cast(decay, dtype) * _tree.to(t, dtype)\n",
        "            return (_tree.to(g, dtype) + _tree.cast(decay, dtype) * _tree.to(t, dtype)) "
        "* jnp.where(\n"
        "                state.count == 150, 1.00002, 1.0\n"
        "            ).astype(dtype)\n",
        CONFORMANCE,
        k="matches_reference and trace",
    ),
    # --- the float32 core ---
    Mutant(
        "clip-optax-select",
        "clip_by_global_norm as optax's select: NaN for a zero bound on zero updates",
        "gradtx/blocks/clipping.py",
        "        factor = jnp.where(clipped, bound / jnp.where(clipped, norm, 1), 1)",
        "        factor = jnp.where(norm < bound, 1, bound / norm)",
        ("tests/test_wrappers.py", "tests/test_building_blocks.py", "tests/test_conformance.py"),
        k="clip",
    ),
    Mutant(
        "nesterov-ignored",
        "momentum's nesterov flag ignored",
        "gradtx/blocks/momentum.py",
        "        if self.nesterov:\n            look_ahead",
        "        if False:\n            look_ahead",
        CONFORMANCE,
        k="matches_reference and (nesterov or nadam)",
    ),
    Mutant(
        "decay-sign",
        "add_decayed_weights subtracts the decayed weights",
        "gradtx/blocks/decay.py",
        "            return g + _tree.cast(wd, g.dtype) * _tree.to(p, g.dtype)",
        "            return g - _tree.cast(wd, g.dtype) * _tree.to(p, g.dtype)",
        CONFORMANCE,
        k="matches_reference and (adamw or decayed)",
    ),
    Mutant(
        "mask-inverted",
        "masked applies the inner transform where the mask is False",
        "gradtx/blocks/masking.py",
        "    return jax.tree.map(lambda m, t: t if m else MaskedNode(), mask, tree)",
        "    return jax.tree.map(lambda m, t: MaskedNode() if m else t, mask, tree)",
        ("tests/test_wrappers.py", "tests/test_conformance.py"),
        k="mask",
    ),
    Mutant(
        "multisteps-early",
        "MultiSteps emits after k - 2 micro-batches",
        "gradtx/blocks/accumulation.py",
        "        emit = state.mini_step == k - 1",
        "        emit = state.mini_step >= k - 2",
        ("tests/test_wrappers.py", "tests/test_conformance.py"),
        k="MultiSteps or multi_steps",
    ),
    Mutant(
        "polynomial-unclipped",
        "polynomial_schedule's fraction not clipped at 0 (optax: NaN at the end under jit)",
        "gradtx/schedules/decay.py",
        "        frac = jnp.maximum(1 - t / steps, 0)",
        "        frac = 1 - t / steps",
        ("tests/test_schedules.py",),
    ),
    Mutant(
        "lookahead-sync-late",
        "lookahead syncs one fast step late",
        "gradtx/blocks/lookahead.py",
        "        sync = state.steps_since_sync == self.sync_period - 1",
        "        sync = state.steps_since_sync == self.sync_period",
        ("tests/test_wrappers.py", "tests/test_conformance.py"),
        k="lookahead",
    ),
    # --- framework presets ---
    Mutant(
        "torch-dampening-first",
        "PyTorch SGD dampens the first step too",
        "gradtx/torch/moments.py",
        "            return jnp.where(first, g, later)",
        "            return later",
        ("tests/test_torch_presets.py",),
    ),
    Mutant(
        "torch-clip-no-1e-6",
        "clip_grad_norm divides by the norm without PyTorch's + 1e-6",
        "gradtx/torch/clipping.py",
        "* (1 / (total + 1e-6)), 1.0)",
        "* (1 / total), 1.0)",
        ("tests/test_torch_presets.py",),
    ),
    Mutant(
        "torch-correction-float32",
        "PyTorch Adam's bias correction from the float32-rounded decay (optax's way)",
        "gradtx/torch/numerics.py",
        "    return -jnp.expm1(t * jnp.log1p(-jnp.asarray(one_minus_decay, dtype=t.dtype)))",
        "    return 1 - (1 - jnp.asarray(one_minus_decay, dtype=t.dtype)) ** t",
        ("tests/test_torch_presets.py",),
    ),
    # --- the chain's channel (the first two were the shipped behaviour before named slots) ---
    Mutant(
        "flatten-fresh-channel",
        "flatten hands its inner transform a fresh channel (Adam's second moment then reads m)",
        "gradtx/blocks/utility.py",
        "ctx.carried(self._flat))",
        "type(ctx)(extra=ctx.extra))",
        ("tests/test_channel.py",),
        k="flatten",
    ),
    Mutant(
        "masked-slots-unmasked",
        "masked carries the slots without masking them",
        "gradtx/blocks/masking.py",
        "ctx.carried(lambda slot: mask_tree(slot, mask), extra=extra)",
        "ctx.carried(lambda slot: slot, extra=extra)",
        ("tests/test_channel.py",),
        k="partial",
    ),
    Mutant(
        "multisteps-slots-not-accumulated",
        "MultiSteps' inner optimizer reads the last micro-batch's slots, not their mean",
        "gradtx/blocks/accumulation.py",
        "kept={n: _tree.cast_like(a, ctx.value(n)) for n, a in slots.items()},",
        "kept={n: ctx.value(n) for n in slots},",
        ("tests/test_channel.py",),
        k="multisteps",
    ),
    Mutant(
        "multisteps-weight-ignored",
        "MultiSteps ignores update(..., weight=w)",
        "gradtx/blocks/accumulation.py",
        "w = jnp.ones([], jnp.float32) if weight is None else jnp.asarray(weight, jnp.float32)",
        "w = jnp.ones([], jnp.float32)",
        ("tests/test_channel.py", "tests/test_wrappers.py"),
        k="weight",
    ),
    Mutant(
        "packed-masked-buffer",
        "a buffer masked out as a whole is cut into leaves like an array",
        "gradtx/packed.py",
        "            if _is_masked_out(buffer):\n",
        "            if False:\n",
        ("tests/test_channel.py",),
        k="packed_groups",
    ),
    # --- optax names ---
    Mutant(
        "default-changed",
        "adam's default eps changed to 1e-7",
        "gradtx/optimizers/adam.py",
        "    b2: Any = 0.999,\n    eps: Any = 1e-8,\n    eps_root: Any = 0.0,\n    mu_dtype: Any = None,\n"
        "    *,\n    nesterov: bool = False,",
        "    b2: Any = 0.999,\n    eps: Any = 1e-7,\n    eps_root: Any = 0.0,\n    mu_dtype: Any = None,\n"
        "    *,\n    nesterov: bool = False,",
        ("tests/test_api.py", "tests/test_scheduled_hyperparameters.py"),
    ),
    Mutant(
        "rate-array-accepted",
        "a learning rate of several numbers is used as given (per-column rates)",
        "gradtx/data.py",
        "if rule is not None and rule.one_number and value is not None:",
        "if False:",
        ("tests/test_errors.py",),
        k="several_numbers",
    ),
    Mutant(
        "torch-complex-as-optax",
        "the torch presets treat complex parameters as optax does (one squared modulus per entry)",
        "gradtx/chains.py",
        "if self.complex_as_real and _has_complex(updates):",
        "if False:",
        ("tests/test_torch_presets.py",),
        k="complex",
    ),
    Mutant(
        "params-read-without-update",
        "blocks read parameters where the gradient is None (equinox's whole model)",
        "gradtx/base.py",
        "                params = params_where_updates(updates, params)\n",
        "",
        ("tests/test_interop.py",),
        k="whole",
    ),
    Mutant(
        "ademamix-slow-reads-momentum",
        "AdEMAMix's slow average reads the momentum it is handed instead of the gradient slot",
        "gradtx/contrib/adaptive.py",
        '        gradient = ctx.read(self, "gradient", fallback=updates)\n        b3, alpha',
        "        gradient = updates\n        b3, alpha",
        ("tests/test_contrib.py",),
        k="ademamix",
    ),
    Mutant(
        "muon-nesterov-dropped",
        "Muon's momentum is plain, not Nesterov's (optax's default is Nesterov)",
        "gradtx/contrib/muon.py",
        "        momentum(beta, nesterov=nesterov, mu_dtype=mu_dtype),\n        orthogonalize(",
        "        momentum(beta, mu_dtype=mu_dtype),\n        orthogonalize(",
        ("tests/test_contrib.py",),
        k="muon",
    ),
    Mutant(
        "newton-schulz-groups-misassigned",
        "the grouped Newton-Schulz hands every matrix of a shape the first one's result",
        "gradtx/contrib/muon.py",
        "results[i] = stacked[start : start + size]",
        "results[i] = stacked[:size]",
        ("tests/test_contrib.py",),
        k="grouped",
    ),
    Mutant(
        "schedule-free-x-recomputed",
        "schedule-free recomputes x from bfloat16 y even when it keeps x in float32",
        "gradtx/contrib/schedule_free.py",
        "if kept is None else _tree.to(kept, dtype)",
        "if True else _tree.to(kept, dtype)",
        ("tests/test_contrib.py",),
        k="bfloat16",
    ),
    Mutant(
        "mechanize-withholds-slots",
        "mechanize withholds the chain's slots from the optimizer it scales",
        "gradtx/contrib/parameter_free.py",
        "updates, state.base_optimizer_state, params, ctx.carried(lambda tree: tree)",
        'updates, state.base_optimizer_state, params, ctx.withholding("mutant")',
        ("tests/test_contrib.py",),
        k="carries",
    ),
    Mutant(
        "prodigy-estimate-frozen",
        "Prodigy never raises its step-size estimate d",
        "gradtx/contrib/parameter_free.py",
        "new_d = jnp.maximum(d, estimate).astype(d.dtype)",
        "new_d = d",
        ("tests/test_contrib.py",),
        k="prodigy",
    ),
    Mutant(
        "soap-first-step-moves",
        "SOAP steps at the first call, from a rank-deficient basis",
        "gradtx/blocks/structured.py",
        "                out = jnp.where(state.count == 0, jnp.zeros_like(out), out)\n",
        "                pass\n",
        ("tests/test_modern.py",),
        k="soap",
    ),
    Mutant(
        "adam-mini-one-block-per-tensor",
        "Adam-mini keeps one second moment per parameter instead of per head or neuron",
        "gradtx/blocks/structured.py",
        "jnp.mean(_split(sq, spec), axis=spec.reduce, keepdims=True)",
        "jnp.mean(_split(sq, spec), keepdims=True)",
        ("tests/test_modern.py",),
        k="adam_mini",
    ),
    Mutant(
        "cautious-mask-not-rescaled",
        "the cautious mask zeroes coordinates without rescaling the rest by 1 / mean",
        "gradtx/blocks/structured.py",
        "    mask = mask / jnp.maximum(jnp.mean(mask), _tree.cast(floor, dtype))\n",
        "",
        ("tests/test_modern.py",),
        k="cautious",
    ),
    Mutant(
        "mars-unclipped",
        "MARS's corrected gradient is not clipped to norm 1",
        "gradtx/blocks/structured.py",
        "            if self.clip:\n",
        "            if False:\n",
        ("tests/test_modern.py",),
        k="mars",
    ),
]

COPIED = ("gradtx", "tests", "examples", "README.md", "pyproject.toml", "benchmarks")


def export(rev: str | None, into: pathlib.Path) -> None:
    """The working tree's files (``rev`` None) or a revision's, into ``into``."""
    if rev is None:
        for name in COPIED:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, into / name, ignore=shutil.ignore_patterns("__pycache__", "results"))
            elif src.exists():
                shutil.copy2(src, into / name)
        return
    archive = into / "rev.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "archive", rev, *COPIED], cwd=ROOT, stdout=f, check=True)
    with tarfile.open(archive) as t:
        t.extractall(into, filter="data")
    archive.unlink()


def environment(where: pathlib.Path) -> dict[str, str]:
    """The copy's gradtx first on the path (ahead of an editable install of this tree)."""
    env = dict(os.environ, PYTHONPATH=str(where), KERAS_BACKEND="jax")
    found = subprocess.run(
        [sys.executable, "-c", "import gradtx; print(gradtx.__file__)"],
        cwd=where, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not found.startswith(str(where)):
        raise RuntimeError(f"the tests would import {found}, not the mutated copy in {where}")
    return env


def run_tests(
    where: pathlib.Path, tests: tuple[str, ...], full: bool, k: str = ""
) -> tuple[bool, str, float]:
    """(passed, first failing test or '', seconds)."""
    targets = ["tests"] if full else [t for t in tests if (where / t).exists()]
    if not targets:
        return True, "(no such test file at this revision)", 0.0
    if k and not full:
        targets += ["-k", k]
    start = time.perf_counter()
    env = environment(where)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
          "-n", "2", "--tb=no", "-rf", *targets],
        cwd=where, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    failed = re.findall(r"^FAILED (\S+)", done.stdout, flags=re.M)
    if done.returncode in (0, 5):  # 5: every test deselected at this revision
        return True, "", seconds
    if not failed:  # a collection error or crash: report its last line
        tail = (done.stdout + done.stderr).strip().splitlines()
        return False, "error: " + (tail[-1] if tail else f"exit {done.returncode}"), seconds
    return False, failed[0], seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rev", default=None, help="a git revision (default: the working tree)")
    parser.add_argument("--only", default="", help="comma-separated mutant ids")
    parser.add_argument("--full", action="store_true", help="the whole suite per mutant")
    parser.add_argument("--baseline", action="store_true", help="first run the listed tests unmutated")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    chosen = [m for m in MUTANTS if not only or m.id in only]

    with tempfile.TemporaryDirectory(prefix="gradtx-mutants-") as tmp:
        base = pathlib.Path(tmp) / "base"
        base.mkdir()
        export(args.rev, base)
        print(f"# mutants of {args.rev or 'the working tree'}; tests: {'all' if args.full else 'listed'}")
        if args.baseline:
            files = tuple(sorted({t for m in chosen for t in m.tests}))
            ok, first, seconds = run_tests(base, files, args.full)
            print(f"# unmutated: {'passes' if ok else 'FAILS at ' + first} ({seconds:.0f} s)", flush=True)
        rows = []
        print(f"| {'mutant':26s} | result | caught by |")
        print(f"|{'-' * 28}|--------|-----------|")
        for m in chosen:
            work = pathlib.Path(tmp) / m.id
            shutil.copytree(base, work)
            target = work / m.file
            text = target.read_text() if target.exists() else ""
            count = text.count(m.old)
            if count != 1:
                result, caught = (
                    "n/a",
                    f"(the code to mutate {'is absent' if count == 0 else 'is ambiguous'})",
                )
            else:
                target.write_text(text.replace(m.old, m.new))
                passed, caught, _ = run_tests(work, m.tests, args.full, m.k)
                result = "SURVIVES" if passed else "caught"
            shutil.rmtree(work)
            rows.append({"id": m.id, "what": m.what, "result": result, "caught_by": caught})
            print(f"| {m.id:26s} | {result:6s} | {caught} |", flush=True)
        survived = [r["id"] for r in rows if r["result"] == "SURVIVES"]
        applied = [r for r in rows if r["result"] != "n/a"]
        print(
            f"\n{len(applied) - len(survived)} of {len(applied)} applied mutants caught; "
            f"survivors: {survived}"
        )
    if args.json:
        pathlib.Path(args.json).write_text(
            json.dumps({"rev": args.rev, "full": args.full, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
