"""Sphinx configuration of the flax_lrn documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``
from the repository root (the ``docs`` extra installs what it needs).
"""

import re
import sys
from pathlib import Path

# Document the checkout this file belongs to, whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sphinx.util import inspect as sphinx_inspect

import flax_lrn

project = "flax_lrn"
author = "flax_lrn developers"
copyright = "flax_lrn developers"
release = flax_lrn.__version__
version = release

extensions = [
  "myst_parser",
  "sphinx.ext.autodoc",
  "sphinx.ext.napoleon",
  "sphinx.ext.mathjax",
  # MathJax from the installed package, copied into _static: the site
  # needs no network to render its formulas.
  "sphinx-mathjax-offline",
  "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: $...$ maths, ::: fences and heading anchors for in-page links.
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

# API reference: Google-style docstrings, signatures as written.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# Module fields as one compact list rather than a section each.
napoleon_use_ivar = True
napoleon_attr_annotations = True
add_module_names = False
# flax_lrn.onnx_export needs the onnx extra; the docs extra alone must build
# the site, so its optional imports are stand-ins while autodoc reads it.
autodoc_mock_imports = ["jax2onnx", "onnx_ir"]
# Show the annotations as written, not JAX's long unions behind them.
autodoc_type_aliases = {
  "ArrayLike": "jax.typing.ArrayLike",
  "Window": "int | tuple[int, int]",
  "_lrn.Window": "int | tuple[int, int]",
}

html_theme = "sphinx_book_theme"
html_title = f"flax_lrn {release}"
html_theme_options = {
  "repository_url": "https://github.com/flax-lrn/flax_lrn",
  "use_repository_button": True,
  "show_toc_level": 2,
  "navigation_with_keys": False,
  # The book theme keeps its search field in the sidebar; without this the
  # PyData theme under it adds a header bar holding a second one.
  "navbar_persistent": [],
}
html_static_path = ["_static"]
html_css_files = ["custom.css"]


def _class_signature(app, what, name, obj, options, signature, ret):
  """Shows each module's constructor arguments as users pass them.

  A linen Module's generated constructor has a ``parent`` argument that Flax
  fills in itself (its default prints as an object address). An NNX
  Module's metaclass hides ``__init__`` behind ``(*args, **kwargs)``.
  """
  if what != "class" or not signature:
    return signature, ret
  if "parent:" in signature:
    signature = re.sub(r", parent: [^=]*= <[^>]*>", "", signature)
  elif re.fullmatch(
    r"\(\*args: [~\w.]*Any, \*\*kwargs: [~\w.]*Any\)", signature
  ):
    sig = sphinx_inspect.signature(
      obj.__init__,
      bound_method=True,
      type_aliases=app.config.autodoc_type_aliases,
    )
    signature = sphinx_inspect.stringify_signature(
      sig, show_return_annotation=False, unqualified_typehints=True
    )
  return signature, ret


def setup(app):
  app.connect("autodoc-process-signature", _class_signature)
