"""Every catalogue case against its reference, and invariants over the whole catalogue."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import CASE_IDS, CASES, Case, problem
from conftest import reference_numerics, xla_compiles

from gradtx.testing import assert_close_to_scale, named_buffers, run_updates

STEPS = 200


def _problem(case: Case):
    return problem(case, STEPS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_matches_reference_every_step(case: Case):
    params, grads = _problem(case)
    updates, state = run_updates(case.gradtx(), params, grads)
    with reference_numerics():
        ref_updates, ref_state = run_updates(case.reference(), params, grads)
    # Each step against its own scale: one wrong step is not diluted by the run's largest.
    step_rtol = case.rtol if case.step_rtol is None else case.step_rtol
    assert_close_to_scale(updates, ref_updates, step_rtol, f"{case.id} updates", step_axis=0)
    if step_rtol > case.rtol:
        assert_close_to_scale(updates, ref_updates, case.rtol, f"{case.id} updates over the run")
    ours, theirs = named_buffers(state), named_buffers(ref_state)
    renamed = dict(case.state_names)
    compared = set()
    for name, buffers in ours.items():
        if name == "count":
            # A wrapper's inner optimizer counts the steps it ran, as the reference's does.
            allowed = {STEPS, *case.inner_steps} | {int(c[0]) for c in theirs.get("count", [])}
            assert all(int(c[0]) in allowed for c in buffers), f"{case.id}: counters {buffers} vs {allowed}"
            continue
        ref_name = renamed.get(name, name)
        if ref_name in theirs:
            assert len(buffers) == len(theirs[ref_name]), f"{case.id}: {name} buffers"
            for a, e in zip(buffers, theirs[ref_name], strict=True):
                assert_close_to_scale(a, e, case.rtol, f"{case.id} state {name}")
            compared.add(ref_name)
        else:
            assert name in case.gradtx_only, f"{case.id}: state field {name!r} has no reference to meet"
    reference_buffers = {n for n in theirs if n != "count" and n not in case.reference_only}
    assert compared == reference_buffers, f"{case.id}: compared {compared} of {reference_buffers}"


def _step_fn():
    traces = []

    @jax.jit
    def step(tx, state, grads, params):
        traces.append(None)
        return tx.update(grads, state, params)

    return step, traces


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_invariants(case: Case):
    """jit equals eager; state structure and dtypes stable; no recompile on the
    second call; vmap over the optimizer's hyperparameters; None leaves pass through;
    bf16 parameters keep bf16 updates."""
    tx = case.gradtx()
    params, all_grads = _problem(case)
    grads = [jax.tree.map(lambda g, i=i: g[i], all_grads) for i in range(3)]
    state0 = tx.init(params)
    step, traces = _step_fn()

    jit_state, eager_state = state0, state0
    compiles = []
    for g in grads:
        with xla_compiles() as compiled:
            jit_updates, jit_state = step(tx, jit_state, g, params)
        compiles.extend(compiled)
        eager_updates, eager_state = tx.update(g, eager_state, params)
        np.testing.assert_allclose(
            np.concatenate([np.ravel(x) for x in jax.tree.leaves(jit_updates)]),
            np.concatenate([np.ravel(x) for x in jax.tree.leaves(eager_updates)]),
            rtol=1e-6,
            atol=case.jit_atol,
        )
        assert jax.tree.structure(jit_updates) == jax.tree.structure(params)
        assert case.without_none or jit_updates["nested"]["none"] is None
        assert jax.tree.structure(jit_state) == jax.tree.structure(state0)
        assert [x.dtype for x in jax.tree.leaves(jit_state)] == [x.dtype for x in jax.tree.leaves(state0)]
        assert [jnp.shape(x) for x in jax.tree.leaves(jit_state)] == [
            jnp.shape(x) for x in jax.tree.leaves(state0)
        ]
    assert len(traces) == 1, f"{case.id}: traced {len(traces)} times"
    assert compiles.count("jit(step)") <= 1, f"{case.id}: compiled {compiles}"

    # vmap over the optimizer's hyperparameters: a batch of two copies gives each one's numbers.
    leaves, treedef = jax.tree.flatten(tx)
    if leaves:
        batched = treedef.unflatten([jnp.stack([jnp.asarray(x)] * 2) for x in leaves])
        together = jax.vmap(lambda t: t.update(grads[0], t.init(params), params)[0])(batched)
        alone = tx.update(grads[0], state0, params)[0]
        for half in (0, 1):
            np.testing.assert_allclose(
                np.concatenate([np.ravel(x[half]) for x in jax.tree.leaves(together)]),
                np.concatenate([np.ravel(x) for x in jax.tree.leaves(alone)]),
                rtol=1e-6,
                atol=case.jit_atol,
                err_msg=case.id,
            )

    if case.dtype == jnp.complex64:
        return  # no complex bfloat16: the real configurations check bf16
    bf16_params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params)
    bf16_grads = jax.tree.map(lambda g: g.astype(jnp.bfloat16), grads[0])
    bf16_state = tx.init(bf16_params)
    updates, new_state = tx.update(bf16_grads, bf16_state, bf16_params)
    assert {x.dtype for x in jax.tree.leaves(updates)} == {jnp.dtype(jnp.bfloat16)}, case.id
    assert [x.dtype for x in jax.tree.leaves(new_state)] == [x.dtype for x in jax.tree.leaves(bf16_state)]
    if not case.dtype_option:
        # Per-parameter float buffers follow the parameters; counters, flags and
        # scalar measurements keep their own dtypes.
        buffers = {
            x.dtype
            for x in jax.tree.leaves(bf16_state)
            if x.ndim > 0 and jnp.issubdtype(x.dtype, jnp.floating)
        }
        assert buffers <= {jnp.dtype(jnp.bfloat16)}, f"{case.id}: {buffers}"
