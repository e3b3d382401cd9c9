"""Sharded parameters keep their sharding: state is created with it, the update keeps
it, and `pack` leaves a sharded leaf alone. Runs on two virtual CPU devices in a
subprocess (the device count is fixed when JAX starts)."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import gradtx

    mesh = Mesh(np.array(jax.devices()), ("x",))
    rows = NamedSharding(mesh, P("x"))
    params = {"w": jax.device_put(jnp.ones((8, 4)), rows), "b": jnp.ones(4), "c": jnp.ones(3)}
    packed = gradtx.pack(params)
    assert [b.shape for b in packed.buffers] == [(7,), (8, 4)], packed
    assert packed.buffers[1].sharding == rows

    opt = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3))
    for tree in (params, packed):
        state = opt.init(tree)
        updates, state = jax.jit(opt.update)(tree, state, tree)
        new = jax.jit(gradtx.apply_updates)(tree, updates)
        w = (lambda t: t.buffers[1] if isinstance(t, gradtx.Packed) else t["w"])
        assert w(state[1][0].mu).sharding == rows, w(state[1][0].mu).sharding
        assert w(state[1][1].nu).sharding == rows
        assert w(updates).sharding == rows and w(new).sharding == rows
    print("ok")
    """
)


def test_sharding_is_kept_on_two_devices():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
