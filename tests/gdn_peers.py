"""CompressAI's GDN layers, loaded without the rest of CompressAI.

``import compressai`` pulls in torchvision, compiled entropy coders and
more, which do not all install beside this project's torch. Its GDN needs
none of them: ``compressai/layers/gdn.py`` imports only torch and
``compressai/ops/parametrizers.py`` (which imports ``bound_ops.py``). So the
three files are loaded by path from wherever the ``compressai`` package is
installed (``pip install --no-deps compressai`` is enough), under
placeholder parent packages that are removed again afterwards.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np


@functools.cache
def compressai_gdn_module() -> types.ModuleType | None:
  """``compressai.layers.gdn`` (with ``GDN``, ``GDN1``), or None if absent."""
  try:
    import torch  # noqa: F401
  except ImportError:
    return None
  try:
    spec = importlib.util.find_spec("compressai")
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  root = Path(next(iter(spec.submodule_search_locations)))
  files = {
    "compressai.ops.bound_ops": root / "ops" / "bound_ops.py",
    "compressai.ops.parametrizers": root / "ops" / "parametrizers.py",
    "compressai.layers.gdn": root / "layers" / "gdn.py",
  }
  if not all(path.is_file() for path in files.values()):
    return None
  placeholders = ("compressai", "compressai.ops", "compressai.layers")
  saved = {name: sys.modules.get(name) for name in (*placeholders, *files)}
  try:
    for name in placeholders:
      package = types.ModuleType(name)
      package.__path__ = []  # a package whose submodules come from below
      sys.modules[name] = package
    loaded = None
    for name, path in files.items():
      module_spec = importlib.util.spec_from_file_location(name, path)
      loaded = importlib.util.module_from_spec(module_spec)
      sys.modules[name] = loaded
      module_spec.loader.exec_module(loaded)
    return loaded
  finally:
    for name, module in saved.items():
      if module is None:
        sys.modules.pop(name, None)
      else:
        sys.modules[name] = module


def compressai_version() -> str:
  from importlib import metadata

  try:
    return metadata.version("compressai")
  except metadata.PackageNotFoundError:
    return "unknown"


def run_compressai(
  cls_name: str,
  x: np.ndarray,
  g: np.ndarray,
  state: dict[str, np.ndarray],
  *,
  inverse: bool,
  beta_min: float,
) -> dict[str, np.ndarray]:
  """CompressAI's forward and gradients for a given stored state.

  Args:
    cls_name: ``'GDN'`` or ``'GDN1'``.
    x: NCHW input.
    g: the cotangent of the output.
    state: the stored ``beta`` and ``gamma`` (``[output, input]``).
    inverse: IGDN.
    beta_min: the layer's ``beta_min``.

  Returns:
    ``y``, ``dx`` and the gradients ``dbeta``, ``dgamma`` of the *stored*
    parameters, through CompressAI's reparametrization and lower bound; and
    the layer's ``state_dict`` with its buffers.
  """
  import torch

  gdn = compressai_gdn_module()
  layer = getattr(gdn, cls_name)(x.shape[1], inverse=inverse, beta_min=beta_min)
  with torch.no_grad():
    layer.beta.copy_(torch.from_numpy(state["beta"]))
    layer.gamma.copy_(torch.from_numpy(state["gamma"]))
  xt = torch.from_numpy(x).requires_grad_(True)
  y = layer(xt)
  (y * torch.from_numpy(g)).sum().backward()
  return {
    "y": y.detach().numpy(),
    "dx": xt.grad.numpy(),
    "dbeta": layer.beta.grad.numpy(),
    "dgamma": layer.gamma.grad.numpy(),
    "state_dict": {k: v.numpy() for k, v in layer.state_dict().items()},
  }


def compressai_values(
  state: dict[str, np.ndarray], beta_min: float
) -> tuple[np.ndarray, np.ndarray]:
  """CompressAI's own parameter values (beta, gamma [output, input])."""
  import torch

  gdn = compressai_gdn_module()
  layer = gdn.GDN(state["beta"].shape[0], beta_min=beta_min)
  with torch.no_grad():
    beta = layer.beta_reparam(torch.from_numpy(state["beta"]))
    gamma = layer.gamma_reparam(torch.from_numpy(state["gamma"]))
  return beta.numpy(), gamma.numpy()


# (class, shape NCHW, inverse, beta_min, how the stored state is drawn).
# 'initial': CompressAI's own initialization (beta = 1, gamma = 0.1 I: the
# off-diagonal stored gammas sit exactly on their bound); 'random': values
# drawn, gamma not symmetric; 'below': some stored entries under their
# bound (the lower bound clips them, and their gradient only passes where
# it points back up).
CASES = [
  ("GDN", (2, 4, 3, 3), False, 1e-6, "initial"),
  ("GDN", (2, 4, 3, 3), True, 1e-6, "initial"),
  ("GDN", (2, 5, 4, 3), False, 1e-6, "random"),
  ("GDN", (2, 6, 3, 4), True, 1e-6, "random"),
  ("GDN", (2, 6, 3, 3), False, 1e-6, "below"),
  ("GDN", (1, 1, 4, 4), False, 1e-6, "random"),
  ("GDN", (2, 8, 2, 2), False, 0.01, "below"),
  ("GDN1", (2, 4, 3, 3), False, 1e-6, "initial"),
  ("GDN1", (2, 5, 3, 3), False, 1e-6, "random"),
  ("GDN1", (2, 6, 3, 2), True, 1e-6, "random"),
  ("GDN1", (2, 6, 2, 3), True, 1e-6, "below"),
]


def case_arrays(index: int) -> dict[str, np.ndarray]:
  """The input, cotangent and stored state of case ``index``, reproducibly."""
  _, shape, _, beta_min, draw = CASES[index]
  rng = np.random.default_rng(1000 + index)
  c = shape[1]
  x = (rng.choice([0.5, 1.0, 3.0]) * rng.standard_normal(shape)).astype(
    np.float32
  )
  g = rng.standard_normal(shape).astype(np.float32)
  offset = 2.0**-18
  if draw == "initial":
    beta, gamma = np.ones(c), 0.1 * np.eye(c)
  else:
    beta = rng.uniform(0.2, 2.0, c)
    gamma = rng.uniform(0.0, 0.6, (c, c)) * (rng.uniform(size=(c, c)) < 0.7)
  stored_beta = np.sqrt(np.maximum(beta + offset**2, offset**2))
  stored_gamma = np.sqrt(np.maximum(gamma + offset**2, offset**2))
  if draw == "below":
    # Under the bound: clipped to the minimum by the forward pass.
    stored_beta[0] = 0.5 * np.sqrt(beta_min + offset**2)
    stored_gamma[rng.uniform(size=(c, c)) < 0.3] = -0.05
  return {
    "x": x,
    "g": g,
    "beta": stored_beta.astype(np.float32),
    "gamma": stored_gamma.astype(np.float32),
  }
