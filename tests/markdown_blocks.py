"""The Python blocks of a Markdown page, each with the output the page shows for it.

A block's shown output is the fenced block without a language that follows it after a
line reading ``prints``; tests run the blocks and compare what they print with it.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
from typing import NamedTuple

_BLOCK = re.compile(r"```python\n(.*?)```(?:\n\nprints\n\n```\n(.*?)```)?", re.S)


class Block(NamedTuple):
    line: int  # where the block starts in the page, 1-based
    code: str
    shown: str | None  # None: the page shows no output for it


def python_blocks(path: pathlib.Path) -> list[Block]:
    text = path.read_text()
    return [Block(text[: m.start()].count("\n") + 1, m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]


def run_block(block: Block, namespace: dict, name: str) -> str:
    """Runs one block in ``namespace``; returns what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.code, f"{name}:{block.line}", "exec"), namespace)
    return out.getvalue()
