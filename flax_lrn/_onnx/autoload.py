"""Registers the ONNX plugin as soon as both flax_lrn and jax2onnx are loaded.

jax2onnx finds its plugins by their registration at import time and has no
entry-point discovery for third-party ones, so someone has to import
:mod:`flax_lrn._onnx.plugin`. :func:`install` does it, without ever
importing jax2onnx itself:

- if jax2onnx is already imported, it imports the plugin at once;
- otherwise it puts a finder on :data:`sys.meta_path` that lets the regular
  finders locate jax2onnx, imports the plugin right after jax2onnx's own
  module has finished executing, and then takes itself off the path.

A jax2onnx that fails to import raises its own error, as without flax_lrn;
one whose plugin interface has changed only costs the native ``LRN`` node,
with a :class:`RuntimeWarning` that says so. Neither breaks
``import flax_lrn``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import warnings
from types import ModuleType
from typing import Any

TARGET = "jax2onnx"
PLUGIN = "flax_lrn._onnx.plugin"

_lock = threading.Lock()


def _register() -> None:
  """Imports the plugin; a failure is a warning, never an exception."""
  try:
    importlib.import_module(PLUGIN)
  except Exception as e:  # an incompatible jax2onnx, or a broken install
    warnings.warn(
      f"flax_lrn could not register its ONNX plugin with jax2onnx ({e!r});"
      " LRN then exports through jax2onnx's generic conversion, which"
      " needs fixed shapes. `import flax_lrn.onnx_export` shows the full"
      " error.",
      RuntimeWarning,
      stacklevel=2,
    )


class _Loader(importlib.abc.Loader):
  """jax2onnx's own loader, followed by the plugin's registration."""

  def __init__(self, loader: Any):
    self._loader = loader

  def create_module(self, spec: importlib.machinery.ModuleSpec):
    return self._loader.create_module(spec)

  def exec_module(self, module: ModuleType) -> None:
    # Put the real loader back first, so that nothing after this (the
    # import system, importlib.resources, reload) ever sees this wrapper.
    module.__loader__ = self._loader
    if module.__spec__ is not None:
      module.__spec__.loader = self._loader
    self._loader.exec_module(module)  # a broken jax2onnx raises here
    _uninstall()
    # The import system puts the module into sys.modules before running
    # it; the plugin's own ``import jax2onnx...`` finds it there.
    _register()

  def __getattr__(self, name: str) -> Any:
    return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
  """Wraps jax2onnx's loader until jax2onnx has been imported once.

  It stays on sys.meta_path until then: ``importlib.util.find_spec`` (an
  availability check) also asks it, without importing anything.
  """

  def find_spec(self, fullname, path, target=None):
    if fullname != TARGET:
      return None
    # The finders behind this one, in the order the import system asks them.
    for finder in list(sys.meta_path):
      find = getattr(finder, "find_spec", None)
      if finder is self or isinstance(finder, _Finder) or find is None:
        continue
      spec = find(fullname, path, target)
      if spec is not None:
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
          spec.loader = _Loader(spec.loader)
        return spec
    return None  # not installed: the import fails as it would anyway


def _uninstall() -> None:
  with _lock:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]


def install() -> None:
  """Registers the plugin now if jax2onnx is loaded, else once it is.

  Idempotent: a second call (a reload of flax_lrn) adds no second finder.
  """
  module = sys.modules.get(TARGET)
  if module is not None:
    spec = getattr(module, "__spec__", None)
    # Only a jax2onnx that imports flax_lrn while it is itself being
    # imported would be half-initialized here; jax2onnx does not, and the
    # plugin could not import from it yet: `import flax_lrn.onnx_export`
    # registers it then.
    if not getattr(spec, "_initializing", False):
      _register()
    return
  with _lock:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
      sys.meta_path.insert(0, _Finder())
