"""Checks on the documentation that the page-by-page block runs can't see.

conftest.py runs each ``python`` code block of README.md and docs/ as a test.
These tests make sure that nothing slips past it (a block labelled ``py``
or ``pycon`` would never run), that the README keeps the commands CI runs,
and that every public entry point has a docstring for the API page.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import flax_lrn
import flax_lrn.nnx
from flax_lrn import compat, compat_gdn
from tests import doc_blocks

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
  [ROOT / "README.md", ROOT / "BENCHMARKS.md"]  # docs/ includes the latter
  + [p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts]
)
# Languages of blocks that are shown, not run: shell commands, formulas
# and console output.
SHOWN_ONLY = {"bash", "console", "text", ""}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_is_run_or_shell(page):
  for block in doc_blocks.fenced_blocks(page.read_text(encoding="utf-8")):
    where = f"{page.name}:{block.line}"
    if block.language.startswith("{"):
      continue  # a MyST directive ({toctree}, {eval-rst}, {include})
    assert block.language in SHOWN_ONLY | {"python"}, (
      f"{where}: a {block.language!r} block would not run as a test; label"
      " Python code 'python' and commands 'bash'"
    )
    if block.language == "" and re.search(r"^\s*(import|from) ", block.source):
      pytest.fail(f"{where}: Python code in an unlabelled block is not run")


def test_the_readme_keeps_ci_commands():
  readme = (ROOT / "README.md").read_text(encoding="utf-8")
  ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
  assert ".venv/bin/python -m pytest -n auto" in readme
  assert ".venv/bin/python -m pytest -n auto" in ci
  build = "sphinx-build -W --keep-going -b html docs docs/_build/html"
  assert build in ci
  assert re.search(r'pip install -e "\.\[[a-z,]*docs[a-z,]*\]"', readme)


def _set_up_command(page: Path) -> str:
  (line,) = [
    line
    for line in page.read_text(encoding="utf-8").splitlines()
    if line.startswith("python3 -m venv .venv && ")
  ]
  return line.split("#")[0].strip()


def test_getting_started_sets_up_as_the_readme():
  guide = _set_up_command(ROOT / "docs" / "getting_started.md")
  assert guide == _set_up_command(ROOT / "README.md")
  assert ",onnx," in guide


def test_readme_links_resolve():
  readme = (ROOT / "README.md").read_text(encoding="utf-8")
  links = re.findall(r"\]\(([^)#:]+)\)", readme)
  assert links
  for link in links:
    assert (ROOT / link).exists(), link


def test_fences_inside_fences_are_content():
  page = (
    "````md\n```python\nraise SystemExit\n```\n````\n\n```python\nx = 1\n```\n"
  )
  blocks = doc_blocks.fenced_blocks(page)
  assert [(b.line, b.language) for b in blocks] == [(2, "md"), (8, "python")]
  assert doc_blocks.python_blocks(page)[0].source == "x = 1\n"


def test_myst_code_block_directive_is_python():
  page = "```{code-block} python\n:caption: a\n\ny = 2\n```\n"
  (block,) = doc_blocks.python_blocks(page)
  assert block.source.strip() == "y = 2"


def test_optional_imports_are_found():
  src = ">>> import torch.nn as tnn\n>>> from onnx import helper\n"
  assert doc_blocks.imported_modules(src) == {"torch", "onnx"}


PUBLIC = [
  flax_lrn.lrn,
  flax_lrn.gdn,
  *(getattr(compat, name) for name in compat.__all__),
  *(
    getattr(compat_gdn, name)
    for name in compat_gdn.__all__
    if inspect.isfunction(getattr(compat_gdn, name))
  ),
  *(
    getattr(cls, f"from_{fw}")
    for cls in (flax_lrn.LRN, flax_lrn.nnx.LRN)
    for fw in ("tensorflow", "torch", "onnx", "caffe")
  ),
  *(
    getattr(cls, f"from_{lib}")
    for cls in (flax_lrn.GDN, flax_lrn.nnx.GDN)
    for lib in ("tensorflow_compression", "compressai")
  ),
  *(
    cls.__call__
    for cls in (flax_lrn.LRN, flax_lrn.nnx.LRN, flax_lrn.GDN, flax_lrn.nnx.GDN)
  ),
  flax_lrn.nnx.LRN,
  flax_lrn.nnx.GDN,
  flax_lrn.LRN,
  flax_lrn.GDN,
]


def _section(doc: str, title: str) -> dict[str, str]:
  """The entries of a Google-style section: name -> text."""
  lines = doc.splitlines()
  try:
    start = lines.index(f"{title}:") + 1
  except ValueError:
    return {}
  entries: dict[str, str] = {}
  name = None
  for line in lines[start:]:
    if line and not line.startswith(" "):
      break
    match = re.match(r"^  (\*{0,2}\w+): (.*)$", line)
    if match:
      name = match.group(1).lstrip("*")
      entries[name] = match.group(2)
    elif name is not None:
      entries[name] += " " + line.strip()
  return entries


def _value(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _parameters(obj) -> dict[str, inspect.Parameter]:
  if inspect.isclass(obj):
    if dataclasses.is_dataclass(obj):  # a linen module: its fields
      names = [f.name for f in dataclasses.fields(obj) if f.init]
      params = inspect.signature(obj).parameters
      return {n: params[n] for n in names if n not in ("parent", "name")}
    obj = obj.__init__
  params = inspect.signature(obj).parameters
  return {n: p for n, p in params.items() if n not in ("self", "cls")}


@pytest.mark.parametrize("obj", PUBLIC, ids=lambda o: o.__qualname__)
def test_api_entries_are_documented(obj):
  """Every parameter is in the docstring as written in the source."""
  doc = inspect.getdoc(obj) or ""
  assert doc.strip(), f"{obj.__qualname__} has no docstring"
  title = "Attributes" if dataclasses.is_dataclass(obj) else "Args"
  entries = _section(doc, title)
  params = _parameters(obj)
  assert set(entries) == set(params), (obj.__qualname__, title)
  for name, p in params.items():
    said = re.search(r"Defaults to ``(.*?)``", entries[name])
    if said and p.default is not p.empty:
      assert _value(said.group(1)) == p.default, (obj.__qualname__, name)
  if not inspect.isclass(obj):
    assert "Returns:" in doc, obj.__qualname__
  if obj not in (c.__call__ for c in PUBLIC if inspect.isclass(c)):
    assert "Example" in doc or "example" in doc, obj.__qualname__


def test_docstrings_are_not_composed_at_import():
  """What an editor reads (``__doc__`` of the source) is the whole text."""
  for obj in PUBLIC:
    source = inspect.getsource(obj)
    doc = inspect.getdoc(obj) or ""
    first = doc.splitlines()[0]
    assert first in source, obj.__qualname__
    for title in ("Args:", "Returns:", "Raises:", "Attributes:"):
      if title in doc:
        assert title in source, (obj.__qualname__, title)
