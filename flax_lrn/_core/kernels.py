"""The kernel seam: which implementation computes an LRN.

Every LRN entry point (the function, the modules, the compat front ends)
resolves its arguments into a :class:`~flax_lrn._core.lrn_formula.Spec`
and three scalars, and hands them to :func:`run`, which calls a *kernel*:
a function ``kernel(spec, x, alpha, k, beta) -> y`` with the meaning of
:func:`flax_lrn._core.lrn_formula.normalize`. ``lrn(implementation=...)``
names the kernel, as ``jax.nn.dot_product_attention`` does; ``None`` takes
the default of the current context, ``'xla'`` unless a
:func:`default_implementation` block says otherwise.

This is where another implementation plugs in:

* the ONNX export registers a kernel that binds one primitive per LRN,
  which it lowers to ONNX's own ``LRN`` operator, and makes it the default
  for the duration of a ``jax2onnx.to_onnx`` call;
* ``'pallas'`` (``flax_lrn._core.pallas_kernel``) is a hand-written GPU
  kernel for windows over axes other than the last (within a channel),
  imported when first used; another accelerator kernel would register
  itself under its own name in the same way.

A kernel takes ``x`` in its own dtype and the scalars in
``spec.compute_dtype``, and returns ``spec.out_dtype``; it must be
differentiable as the XLA kernel is (its own ``custom_jvp``, or a
primitive with rules).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import jax

from flax_lrn._core import lrn_formula

Kernel = Callable[..., jax.Array]

XLA = "xla"
PALLAS = "pallas"


def _pallas(spec: lrn_formula.Spec, x, alpha, k, beta) -> jax.Array:
  # Imported when first used: Pallas costs an import the XLA kernel does not.
  from flax_lrn._core import pallas_kernel

  return pallas_kernel.normalize(spec, x, alpha, k, beta)


_KERNELS: dict[str, Kernel] = {XLA: lrn_formula.xla_kernel, PALLAS: _pallas}

_DEFAULT: contextvars.ContextVar[str] = contextvars.ContextVar(
  "flax_lrn_implementation", default=XLA
)


def register(name: str, kernel: Kernel) -> None:
  """Makes ``kernel`` available as ``implementation=name``.

  Registering a name again replaces its kernel (a reloaded plugin).

  Raises:
    ValueError: if ``name`` is ``'xla'`` or ``'pallas'``, the built-in
      kernels' names.
  """
  if name in (XLA, PALLAS):
    raise ValueError(f"implementation {name!r} is a built-in kernel's name.")
  _KERNELS[name] = kernel


def implementations() -> tuple[str, ...]:
  """The names ``implementation=`` accepts, ``'xla'`` first."""
  return tuple(_KERNELS)


@contextlib.contextmanager
def default_implementation(name: str) -> Iterator[None]:
  """Makes ``name`` the implementation of the LRNs traced inside the block.

  An explicit ``implementation=`` still wins.

  Raises:
    ValueError: if no kernel is registered under ``name``.
  """
  check_implementation(name)
  token = _DEFAULT.set(name)
  try:
    yield
  finally:
    _DEFAULT.reset(token)


def check_implementation(implementation: Any) -> str | None:
  """Checks ``implementation=``: None or a registered name.

  Raises:
    ValueError: naming the registered implementations.
  """
  if implementation is None:
    return None
  if not isinstance(implementation, str) or implementation not in _KERNELS:
    raise ValueError(
      f"implementation must be None or one of {implementations()}, got"
      f" {implementation!r}."
    )
  return implementation


def run(spec: lrn_formula.Spec, x, alpha, k, beta, implementation=None):
  """The LRN of resolved arguments, by the chosen kernel."""
  return _KERNELS[implementation or _DEFAULT.get()](spec, x, alpha, k, beta)
