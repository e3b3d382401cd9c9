"""What every benchmark result records about how it was made: revision, versions, machine,
date and command, so a figure in BENCHMARKS.md can be traced to the run that made it."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import pathlib
import platform
import subprocess
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def stamp() -> dict[str, Any]:
    """The revision (with ``+dirty`` when tracked files differ from it), library
    versions, machine, UTC date and the command line of this process."""
    import jax

    revision = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        revision += "+dirty"
    device = jax.devices()[0]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": revision,
        "command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory_gib": _memory_gib(),
            "os": f"{platform.system()} {platform.release()}",
            "backend": jax.default_backend(),
            "device": device.device_kind,
        },
        "versions": {name: _version(name) for name in ("jax", "jaxlib", "optax", "numpy", "torch", "gradtx")}
        | {"python": platform.python_version()},
    }


def describe(s: dict[str, Any]) -> str:
    """One line for a table's caption."""
    m, v = s["machine"], s["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("jax", "optax", "torch") if v.get(k))
    return (
        f"{s['date']}, revision `{s['revision']}`, {m['device']} ({m['backend']}), {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gib']} GiB; Python {v['python']}, {libs}"
    )
