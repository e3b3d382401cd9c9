"""Optimizer state per device: replicated against ZeRO-1 (state sharded over the data axis).

Data parallelism replicates the parameters on every device; by default the optimizer
state is replicated too, so Adam keeps two parameter-sized moments on each device.
ZeRO-1 shards the state over the data axis instead (``jax.jit(opt.init,
out_shardings=...)``; the update keeps those shardings), so each device holds 1/N of it.
For a transformer-shaped parameter tree on N simulated CPU devices this script measures,
per device: the bytes of parameters and of optimizer state (from the arrays' shards),
the compiled update's arguments, outputs and temporaries (XLA's ``memory_analysis``),
and the collectives in its HLO. It also checks that both layouts give the same
parameters bit for bit.

Run:  python benchmarks/zero1_memory.py [--devices 8] [--layers 4] [--width 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.devices}"
    )
    import jax
    import jax.numpy as jnp
    import numpy as np
    from _stamp import stamp
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    import gradtx

    n = jax.device_count()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    replicated, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    d = args.width
    shapes = {"embed": (32 * d, d)}
    for i in range(args.layers):
        shapes |= {
            f"block{i}/attn": (d, 3 * d),
            f"block{i}/proj": (d, d),
            f"block{i}/mlp_in": (d, 4 * d),
            f"block{i}/mlp_out": (4 * d, d),
            f"block{i}/norm": (d,),
        }
    keys = jax.random.split(jax.random.key(0), len(shapes))
    params = {
        name: jax.device_put(jax.random.normal(k, shape) * 0.02, replicated)
        for k, (name, shape) in zip(keys, shapes.items(), strict=True)
    }
    grads = jax.tree.map(lambda p: jnp.cos(p * 50.0), params)
    d0 = jax.devices()[0]

    def bytes_on(tree: object) -> int:
        return sum(
            s.data.nbytes for x in jax.tree.leaves(tree) for s in x.addressable_shards if s.device == d0
        )

    def collectives(text: str) -> str:
        counts = {op: len(re.findall(rf"\b{op}(?:-start)?\(", text)) for op in ("all-gather", "all-reduce")}
        return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none"

    rows_out = []
    optimizers = {
        "adam": gradtx.adam(1e-3),
        "adamw + clip": gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3, weight_decay=0.1)),
    }
    for name, opt in optimizers.items():

        def step(params, state, grads, opt=opt):
            updates, state = opt.update(grads, state, params)
            return gradtx.apply_updates(params, updates), state

        results = {}
        for layout in ("replicated", "ZeRO-1"):
            if layout == "replicated":
                state_sharding = jax.tree.map(lambda _: replicated, jax.eval_shape(opt.init, params))
            else:
                state_sharding = jax.tree.map(
                    lambda x: rows if x.ndim >= 1 and x.shape[0] % n == 0 else replicated,
                    jax.eval_shape(opt.init, params),
                )
            state = jax.jit(opt.init, out_shardings=state_sharding)(params)
            param_sharding = jax.tree.map(lambda _: replicated, params)
            jitted = jax.jit(step, out_shardings=(param_sharding, state_sharding))
            compiled = jitted.lower(params, state, grads).compile()
            memory, text = compiled.memory_analysis(), compiled.as_text()
            assert memory is not None and text is not None, "this backend reports no memory analysis"
            new_params, new_state = jitted(params, state, grads)
            results[layout] = new_params
            rows_out.append(
                {
                    "optimizer": name,
                    "layout": layout,
                    "params_bytes": bytes_on(params),
                    "state_bytes": bytes_on(new_state),
                    "argument_bytes": int(memory.argument_size_in_bytes),
                    "output_bytes": int(memory.output_size_in_bytes),
                    "temp_bytes": int(memory.temp_size_in_bytes),
                    "collectives": collectives(text),
                }
            )
        same = all(
            np.array_equal(np.asarray(a), np.asarray(b))
            for a, b in zip(
                jax.tree.leaves(results["replicated"]), jax.tree.leaves(results["ZeRO-1"]), strict=True
            )
        )
        rows_out[-1]["same_params_as_replicated"] = same

    count = sum(int(np.prod(s)) for s in shapes.values())
    print(f"{count:,} float32 parameters in {len(shapes)} leaves, {n} devices; bytes per device\n")
    header = (
        "| optimizer | layout | params | state | update temporaries | update collectives | same parameters |"
    )
    print(header + "\n|---|---|---|---|---|---|---|")
    for r in rows_out:
        print(
            f"| {r['optimizer']} | {r['layout']} | {r['params_bytes'] / 2**20:.1f} MiB | "
            f"{r['state_bytes'] / 2**20:.2f} MiB | {r['temp_bytes'] / 2**20:.2f} MiB | {r['collectives']} | "
            f"{ {True: 'yes', False: 'NO'}.get(r.get('same_params_as_replicated'), 'reference') } |"
        )
    if args.json:
        data = {"stamp": stamp(), "devices": n, "parameters": count, "leaves": len(shapes), "rows": rows_out}
        pathlib.Path(args.json).write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
