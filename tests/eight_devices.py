"""Run by tests/test_many_devices.py in its own process, with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``: prints a JSON report."""

import contextlib
import json
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx

assert jax.device_count() == 8
report: dict[str, Any] = {}
opt = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3, weight_decay=0.1))


def hlo_ops(compiled):
    text = compiled.as_text()
    ops: dict[str, Any] = {
        op: len(re.findall(rf"\b{op}(?:-start)?\(", text))
        for op in ("all-gather", "all-reduce", "all-to-all", "collective-permute")
    }
    # the operand types of each all-reduce: "f32[]", or "(f32[], f32[])" when combined
    ops["all-reduce types"] = re.findall(r"= (\([^)]*\)|\S+) all-reduce(?:-start)?\(", text)
    ops["all-gather types"] = re.findall(r"= (\S+) all-gather(?:-start)?\(", text)
    return ops


def train_step(tx):
    """One update of ``tx`` applied to the parameters: ``(params, state, grads) ->
    (params, state)``."""

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    return step


def spec_of(x):
    spec = tuple(x.sharding.spec)
    return spec + (None,) * (len(x.shape) - len(spec))


def check(name, mesh, spec, explicit):
    sharding = NamedSharding(mesh, spec)
    params = {
        "w": jax.device_put(jnp.arange(64.0).reshape(8, 8) / 64, sharding),
        "v": jax.device_put(jnp.linspace(-1.0, 1.0, 16).reshape(2, 8), sharding),
    }
    grads = jax.tree.map(lambda p: jnp.cos(p), params)
    state = opt.init(params)
    buffers = [state[1][0].mu, state[1][1].nu]
    for tree in buffers:
        for leaf, p in zip(jax.tree.leaves(tree), jax.tree.leaves(params), strict=True):
            assert spec_of(leaf) == spec_of(p), (name, leaf.sharding, p.sharding)
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=p.sharding), params)
    if explicit:  # shardings are part of the types: abstract evaluation and jit keep them
        shapes = jax.eval_shape(opt.init, abstract)
        jitted_state = jax.jit(opt.init)(params)
        for tree in (shapes[1][0].mu, shapes[1][1].nu, jitted_state[1][0].mu, jitted_state[1][1].nu):
            for leaf, p in zip(jax.tree.leaves(tree), jax.tree.leaves(params), strict=True):
                assert spec_of(leaf) == spec_of(p), (name, "abstract", leaf.sharding)

    step = train_step(opt)
    jitted = jax.jit(step, donate_argnums=(0, 1))
    compiled = jitted.lower(params, state, grads).compile()
    ops = hlo_ops(compiled)
    new_params, new_state = jitted(params, state, grads)
    for new, p in zip(jax.tree.leaves(new_params), jax.tree.leaves(abstract), strict=True):
        assert spec_of(new) == spec_of(p), (name, new.sharding, p.sharding)
    for tree in (new_state[1][0].mu, new_state[1][1].nu):
        for leaf, p in zip(jax.tree.leaves(tree), jax.tree.leaves(abstract), strict=True):
            assert spec_of(leaf) == spec_of(p), (name, "state after update", leaf.sharding)
    report[name] = {"ops": ops}


# classic mesh (Auto axes) and explicit-sharding mesh
classic = Mesh(np.array(jax.devices()), ("x",))
explicit = jax.make_mesh((8,), ("x",), axis_types=(AxisType.Explicit,))
# (name, mesh, the context a step runs in): an explicit mesh is set, a classic one is not
MESHES = (
    ("classic", classic, contextlib.nullcontext),
    ("explicit", explicit, lambda: jax.set_mesh(explicit)),
)
for kind, mesh, context in MESHES:
    with context():
        for spec_name, spec in (("replicated", P()), ("model", P(None, "x"))):
            check(f"{kind}-{spec_name}", mesh, spec, kind == "explicit")

# ZeRO-1: replicated parameters, state sharded over the data axis.
mesh = Mesh(np.array(jax.devices()), ("data",))
replicated, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
params = {"w": jax.device_put(jnp.ones((64, 32)), replicated), "b": jax.device_put(jnp.ones(64), replicated)}
adam = gradtx.adam(1e-3)
state_sharding = jax.tree.map(
    lambda x: rows if x.ndim >= 1 and x.shape[0] % 8 == 0 else replicated, jax.eval_shape(adam.init, params)
)
zero_init = jax.jit(adam.init, out_shardings=state_sharding)
plain_state, zero_state = adam.init(params), zero_init(params)


def bytes_on(tree, device):
    return sum(
        s.data.nbytes for leaf in jax.tree.leaves(tree) for s in leaf.addressable_shards if s.device == device
    )


d0 = jax.devices()[0]
zero: dict[str, Any] = {
    "state_bytes_replicated": bytes_on(plain_state, d0),
    "state_bytes_zero1": bytes_on(zero_state, d0),
    "params_bytes": bytes_on(params, d0),
}
grads = jax.tree.map(lambda p: p * 0.5, params)


step = train_step(adam)


zero_step = jax.jit(step, out_shardings=(jax.tree.map(lambda _: replicated, params), state_sharding))
zero_params, zero_state = zero_step(params, zero_state, grads)
plain_params, plain_state = jax.jit(step)(params, plain_state, grads)
for a, b in zip(
    jax.tree.leaves((zero_params, zero_state)), jax.tree.leaves((plain_params, plain_state)), strict=True
):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
assert zero_state[0].mu["w"].sharding == rows and zero_params["w"].sharding == replicated
zero["ops"] = hlo_ops(zero_step.lower(params, zero_state, grads).compile())
report["zero1"] = zero

# ZeRO-1 with 8-bit moments: the codes (blocks, 256) and scales (blocks,) shard by block
# over the data axis, so each device holds whole blocks (w: 8 blocks, one per device).
spec8 = gradtx.quantized(8, min_size=0)
adam8 = gradtx.adam(1e-3, mu_dtype=spec8, nu_dtype=spec8)
state8_sharding = jax.tree.map(
    lambda x: rows if x.ndim >= 1 and x.shape[0] % 8 == 0 else replicated, jax.eval_shape(adam8.init, params)
)
plain8, zero8 = adam8.init(params), jax.jit(adam8.init, out_shardings=state8_sharding)(params)


step8 = train_step(adam8)


zero8_step = jax.jit(step8, out_shardings=(jax.tree.map(lambda _: replicated, params), state8_sharding))
grads8 = {"w": jnp.cos(jnp.arange(64.0 * 32).reshape(64, 32)), "b": jnp.sin(jnp.arange(64.0))}
zero8_params, zero8 = zero8_step(params, zero8, grads8)
plain8_params, plain8 = jax.jit(step8)(params, plain8, grads8)
for a, b in zip(
    jax.tree.leaves((zero8_params, zero8)), jax.tree.leaves((plain8_params, plain8)), strict=True
):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
assert zero8[0].mu["w"].codes.sharding == rows
report["zero1_8bit"] = {
    "state_bytes_replicated": bytes_on(plain8, d0),
    "state_bytes_zero1": bytes_on(zero8, d0),
    "ops": hlo_ops(zero8_step.lower(params, zero8, grads8).compile()),
}

# Sharded parameters with 8-bit moments: blocks stay on the device that holds their values
# wherever the sharding allows it. w (64, 4096): the last axis holds whole blocks, so the
# codes keep w's axes and shard like it, over rows (FSDP) or over the last axis (tensor
# parallel: 512 values a device, two blocks a row). v (64, 32): flat blocks, whole per
# device over rows (8 rows x 32 = one block), cut by a last-axis sharding (4 values a
# device): its blocks are then replicated and gathered.
adam8_plain = gradtx.adamw(1e-3, mu_dtype=spec8, nu_dtype=spec8)
values = {
    "w": jnp.sin(jnp.arange(64.0 * 4096).reshape(64, 4096) / 97),
    "v": jnp.cos(jnp.arange(64.0 * 32).reshape(64, 32) / 7),
}
gradients = jax.tree.map(lambda x: jnp.cos(3 * x) * jnp.linspace(0.1, 2.0, x.shape[-1])[None, :], values)


step_sharded = train_step(adam8_plain)


reference_params, reference_state = values, adam8_plain.init(values)
for _ in range(3):
    reference_params, reference_state = jax.jit(step_sharded)(reference_params, reference_state, gradients)
sharded_report: dict[str, Any] = {}
for kind, mesh, context in MESHES:
    with context():
        for spec_name, spec in (("rows", P("x", None)), ("last", P(None, "x"))):
            sharding = NamedSharding(mesh, spec)
            params, grads = jax.device_put((values, gradients), sharding)
            state = adam8_plain.init(params)
            init_specs = {k: spec_of(state[0].mu[k].codes) for k in ("w", "v")}
            if kind == "explicit":  # the sharding types, abstractly
                abstract = jax.tree.map(
                    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), params
                )
                shapes = jax.eval_shape(adam8_plain.init, abstract)
                assert spec_of(shapes[0].mu["w"].codes) == init_specs["w"], (spec_name, shapes[0].mu["w"])
            jitted = jax.jit(step_sharded)
            ops = hlo_ops(jitted.lower(params, state, grads).compile())
            for _ in range(3):
                params, state = jitted(params, state, grads)
            for path, a, b in zip(
                jax.tree_util.tree_leaves_with_path((params, state)),
                jax.tree.leaves((params, state)),
                jax.tree.leaves((reference_params, reference_state)),
                strict=True,
            ):
                # The partitioned program may round differently (measured: 2 of 2,048
                # parameters one float32 ulp apart); the codes are the same.
                np.testing.assert_allclose(
                    np.asarray(a), np.asarray(b), rtol=2e-7, atol=0, err_msg=f"{kind}-{spec_name} {path[0]}"
                )
            codes = state[0].mu["w"].codes
            sharded_report[f"{kind}-{spec_name}"] = {
                "ops": ops,
                "init_codes_spec": {k: [str(e) for e in v] for k, v in init_specs.items()},
                "codes_spec": {k: [str(e) for e in spec_of(state[0].mu[k].codes)] for k in ("w", "v")},
                "scales_spec": [str(e) for e in spec_of(state[0].mu["w"].scales)],
                "w_codes_bytes_on_device_0": bytes_on(codes, d0),
                "w_codes_bytes": int(codes.size),
                "params_spec": [str(e) for e in spec_of(params["w"])],
            }
report["sharded_8bit"] = sharded_report

# Packed parameters with quantized moments, the packed buffer sharded over its one axis
# (FSDP). "blocks": leaves of whole blocks, the plain block layout (sharded over blocks).
# "segments": a first leaf of 4,104 values (not whole blocks), so blocks restart at every
# leaf and each value finds its block by index: the codes shard like the buffer, the
# per-block scales are replicated. "segments-odd": 8 values fewer, so a device's 4-bit
# codes would end in half a byte: that buffer is encoded replicated.
packed_report: dict[str, Any] = {}
for layout, sizes in (
    ("blocks", (4096, 0)),
    ("segments", (4104, 8)),
    ("segments-odd", (4104, 0)),
):
    tree = {
        "a": jnp.cos(jnp.arange(float(sizes[0])) / 7),
        "w": jnp.sin(jnp.arange(64.0 * 256).reshape(64, 256) / 97),
        "z": jnp.linspace(-1.0, 1.0, sizes[1]),
    }
    packed = gradtx.pack(tree)
    packed_grads = jax.tree.map(lambda x: jnp.cos(3 * x), packed)
    for bits in ("8bit", "4bit"):
        tx = gradtx.adamw(1e-3, mu_dtype=bits, nu_dtype=bits)
        step_packed = train_step(tx)
        reference_params, reference_state = packed, tx.init(packed)
        for _ in range(3):
            reference_params, reference_state = jax.jit(step_packed)(
                reference_params, reference_state, packed_grads
            )
        for kind, mesh, context in MESHES:
            with context():
                params, grads = jax.device_put((packed, packed_grads), NamedSharding(mesh, P("x")))
                state = tx.init(params)
                init_spec = spec_of(state[0].mu.buffers[0].codes)
                jitted = jax.jit(step_packed)
                ops = hlo_ops(jitted.lower(params, state, grads).compile())
                for _ in range(3):
                    params, state = jitted(params, state, grads)
                params_now, params_then = params.buffers[0], reference_params.buffers[0]
                # The partitioned program may round differently (an FMA contracted or not):
                # measured, equal but for the 4-bit odd layout on the classic mesh, whose
                # replicated buffer XLA partitions its own way (block maxima one float32
                # ulp apart, parameters up to 12 ulps near zero); the codes are the same.
                np.testing.assert_allclose(np.asarray(params_now), np.asarray(params_then), rtol=2e-6, atol=0)
                for (path, a), b in zip(
                    jax.tree_util.tree_leaves_with_path(state), jax.tree.leaves(reference_state), strict=True
                ):
                    message = f"{layout} {bits} {kind} {jax.tree_util.keystr(path)}"
                    if a.dtype == jnp.uint8:
                        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=message)
                    else:
                        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-7, err_msg=message)
                codes = state[0].mu.buffers[0].codes
                packed_report[f"{layout}-{bits}-{kind}"] = {
                    "ops": ops,
                    "init_codes_spec": [str(e) for e in init_spec],
                    "codes_spec": [str(e) for e in spec_of(codes)],
                    "scales_spec": [str(e) for e in spec_of(state[0].mu.buffers[0].scales)],
                    "codes_bytes_on_device_0": bytes_on(codes, d0),
                    "codes_bytes": int(codes.size),
                }
report["packed_quantized"] = packed_report
print(json.dumps(report))
