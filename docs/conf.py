"""Sphinx configuration for gradtx's documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build`` (warnings are errors;
``tests/test_docs.py`` runs the same build).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "gradtx"
author = "the gradtx authors"
copyright = "2026, the gradtx authors"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

autosummary_generate = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

html_theme = "sphinx_book_theme"
html_title = "gradtx"
html_theme_options = {"show_toc_level": 2}
