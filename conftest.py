"""pytest set-up shared by tests/, the doctests in flax_lrn/ and the docs.

The sharding tests need several devices; on a CPU-only machine JAX can
simulate them, but only if told before its backend starts, so this runs
before any test module imports JAX.

It also runs every Python code block of README.md, BENCHMARKS.md and the
pages under docs/ as a test of its own (see :class:`DocFile`).
"""

from __future__ import annotations

import doctest
import importlib.util
import re
from pathlib import Path

import jax
import pytest

from tests import doc_blocks

jax.config.update("jax_num_cpu_devices", 8)

ROOT = Path(__file__).resolve().parent
DOCS = ROOT / "docs"

# Sphinx's configuration is not a test module, and the built site holds
# copies of the pages' sources.
collect_ignore = ["docs/conf.py"]
collect_ignore_glob = ["docs/_build/*"]
# The ONNX export modules import jax2onnx, an optional extra: without it
# they cannot even be imported to collect their doctests.
if importlib.util.find_spec("jax2onnx") is None:
  collect_ignore += ["flax_lrn/_onnx_plugin.py", "flax_lrn/onnx_export.py"]

# Optional packages a code block may import, and the extra that installs
# them: a block that needs a missing one is skipped, with a reason that
# says what to install.
OPTIONAL = {
  "cv2": "compat",
  "matplotlib": "examples",
  "onnx": "compat",
  "onnxruntime": "compat",
  "optax": "examples",
  "sklearn": "examples",
  "tensorflow": "compat",
  "torch": "compat",
}
# A block that starts with this comment needs that many devices; the test
# run simulates 8 CPU devices (above), a GPU machine may have fewer.
NEEDS_DEVICES = re.compile(r"^\s*(?:>>> )?# Needs (\d+) devices", re.MULTILINE)
DOCTEST_FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

# The fast loop, `pytest -m "not slow"`, leaves these modules out whole: the
# live peers, golden values, extreme inputs, fuzzing, sharding, several
# processes, export round trips, the examples and the benchmark. The tests
# it keeps still call every public entry point; the slow ones among them
# carry @pytest.mark.slow where they are defined. The code blocks of the
# Markdown pages are slow too: the doctests in flax_lrn/ stay.
SLOW_MODULES = frozenset(
  f"tests/test_{name}.py"
  for name in (
    "backends",
    "benchmarks",
    "compat_live",
    "dtype_modes",
    "examples",
    "export",
    "extreme",
    "fuzz",
    "gdn_compressai",
    "gdn_example",
    "gdn_sharding",
    "golden",
    "internals",
    "multiprocess",
    "properties",
    "rules",
    "sharding",
  )
)


def _relative(path) -> str:
  return Path(path).resolve().relative_to(ROOT).as_posix()


def pytest_ignore_collect(collection_path, config):
  # The fast loop does not even import the slow modules (TensorFlow and
  # PyTorch among them); any other selection collects them as usual.
  if config.getoption("markexpr", "") == "not slow":
    try:
      return _relative(collection_path) in SLOW_MODULES or None
    except ValueError:  # outside the repository
      return None
  return None


def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    if _relative(item.path) in SLOW_MODULES or isinstance(item, DocBlock):
      item.add_marker(pytest.mark.slow)


def _skip(reason: str):
  # Reported at the block's line on its page, not at this file.
  raise pytest.skip.Exception(reason, _use_item_location=True)


class DocBlockFailure(Exception):
  """A doctest block printed something other than what the page shows."""


class DocBlock(pytest.Item):
  """One code block, run in a fresh namespace of its own.

  Blocks share no state, so that a reader can copy any one of them and so
  that pytest-xdist may run them on any worker in any order.
  """

  def __init__(self, *, source: str, line: int, **kwargs):
    super().__init__(**kwargs)
    self.source = source
    self.line = line

  def runtest(self) -> None:
    modules = doc_blocks.imported_modules(self.source)
    for name in sorted(modules & OPTIONAL.keys()):
      if importlib.util.find_spec(name) is None:
        _skip(f"needs {name}: pip install -e '.[{OPTIONAL[name]}]'")
    needs = NEEDS_DEVICES.search(self.source)
    if needs and jax.device_count() < int(needs[1]):
      _skip(f"needs {needs[1]} devices, {jax.device_count()} present")
    namespace = {"__name__": "__docs__"}
    filename = str(self.path)
    if doc_blocks.is_doctest(self.source):
      test = doctest.DocTestParser().get_doctest(
        self.source, namespace, self.name, filename, self.line - 1
      )
      runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
      report = []
      runner.run(test, out=report.append)
      if runner.failures:
        raise DocBlockFailure(
          "the output differs from the page\n" + "".join(report)
        )
    else:
      # Blank lines in front give tracebacks the page's line numbers.
      padded = "\n" * (self.line - 1) + self.source
      exec(compile(padded, filename, "exec"), namespace)

  def _traceback_filter(self, excinfo):
    # Start the traceback at the page, not in pytest's machinery.
    traceback = excinfo.traceback
    return traceback.cut(path=self.path) or traceback

  def repr_failure(self, excinfo, style=None):
    if isinstance(excinfo.value, DocBlockFailure):
      return str(excinfo.value)
    # The short style shows the failing line, not the whole page.
    return super().repr_failure(excinfo, style="short")

  def reportinfo(self):
    return self.path, self.line - 1, f"{self.path.name}:{self.line}"


class DocFile(pytest.File):
  """README.md or a docs page: one test per Python code block."""

  def collect(self):
    text = self.path.read_text(encoding="utf-8")
    for line, _, source in doc_blocks.python_blocks(text):
      yield DocBlock.from_parent(
        self, name=f"line {line}", source=source, line=line
      )


def pytest_collect_file(parent, file_path: Path):
  if file_path.suffix != ".md":
    return None
  # docs/performance.md includes BENCHMARKS.md, so its blocks are docs too.
  if file_path in (ROOT / "README.md", ROOT / "BENCHMARKS.md") or (
    DOCS in file_path.parents and DOCS / "_build" not in file_path.parents
  ):
    return DocFile.from_parent(parent, path=file_path)
  return None
