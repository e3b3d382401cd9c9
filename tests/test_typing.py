"""A user's project type-checks against gradtx as installed (editable, by the README's
command): pyright resolves ``gradtx``, keeps its types through the flax adapters, and
flags exactly the one call that passes a gradtx optimizer where optax's type is named."""

import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

USER_CODE = textwrap.dedent(
    """
    import jax.numpy as jnp
    from flax import nnx

    import gradtx
    import gradtx.flax

    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    optimizer = gradtx.flax.Optimizer(model, gradtx.adamw(1e-3), wrt=nnx.Param)
    reveal_type(optimizer.tx)
    reveal_type(gradtx.adamw(1e-3))
    state = gradtx.flax.TrainState.create(apply_fn=lambda p, x: x, params=jnp.ones(2), tx=gradtx.sgd(1))
    reveal_type(state.tx)
    typed = nnx.Optimizer(model, gradtx.flax.to_optax(gradtx.adamw(1e-3)), wrt=nnx.Param)
    untyped = nnx.Optimizer(model, gradtx.adamw(1e-3), wrt=nnx.Param)  # line 15: optax's type
    """
)


def test_a_user_project_resolves_gradtx_and_its_flax_types(tmp_path: pathlib.Path):
    (tmp_path / "main.py").write_text(USER_CODE)
    pyright = shutil.which("pyright", path=str(pathlib.Path(sys.executable).parent))
    assert pyright is not None, "pyright is in the test extra"
    done = subprocess.run(
        [pyright, "--pythonpath", sys.executable, "main.py"],
        cwd=tmp_path,  # outside the repository: gradtx comes from the installed package
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    revealed = re.findall(r'Type of "([^"]+)" is "([^"]+)"', out)
    assert revealed == [
        ("optimizer.tx", "Transform"),
        ("gradtx.adamw(0.001)", "Chain"),
        ("state.tx", "Transform"),
    ], out
    errors = [line for line in out.splitlines() if " - error: " in line]
    assert len(errors) == 1 and "main.py:15:" in errors[0], out
    assert 'is not assignable to "GradientTransformation"' in out
