"""Docstring sections shared by the front ends, written once.

:mod:`flax_lrn.compat`, the modules and their ``from_*`` constructors take
parameters of the same names with the same meanings. Each parameter is
described once, in :data:`PARAMETERS`; :func:`document` lists a callable's
parameters from its signature (with their defaults) and adds its Returns and
Raises sections, so a docstring in the source holds only what is particular
to it: the summary, what the convention means and an example.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
C = TypeVar("C", bound=type)

PARAMETERS = {
  # flax_lrn.lrn's hyper-parameters, the modules' fields.
  "window": (
    "the window size ``n``, or explicit extents ``(before, after)``"
    " around the centre."
  ),
  "alpha": "the scale of the sum of squares, finite and ``>= 0``.",
  "beta": "the exponent, finite and ``>= 0``.",
  "k": "the additive constant, finite and ``>= 0``.",
  "alpha_scaling": (
    "``'none'`` to use ``alpha`` as given, ``'size'`` to divide it by the"
    " number of elements in the window."
  ),
  "mode": "``'across_channels'`` or ``'within_channel'``.",
  "channel_axis": "the channel axis.",
  "spatial_axes": (
    "the axes of the within-channel window; ``None`` for all but the first"
    " axis and the channel axis."
  ),
  "dtype": "the dtype of the output; ``None`` for the input's.",
  "axis_name": (
    "inside ``jax.shard_map``, the mesh axis the channel axis is split over"
    " (see :func:`flax_lrn.lrn`); ``None`` under ``jax.jit``."
  ),
  # The frameworks' names.
  "x": "the input, of a real floating dtype.",
  "depth_radius": (
    "the half-width of the window, ``>= 0``: the window is"
    " ``2 * depth_radius + 1`` channels."
  ),
  "size": "the number of channels in the window, ``>= 1``.",
  "local_size": "the window size, odd and ``>= 1``.",
  "bias": "the additive constant (``k``), finite and ``>= 0``.",
  "norm_region": (
    "``'across_channels'`` or ``'within_channel'`` (or the prototxt"
    " spellings ``'ACROSS_CHANNELS'``, ``'WITHIN_CHANNEL'``)."
  ),
  "module_kwargs": (
    "further arguments of the module's constructor, such as a linen"
    " module's ``name``."
  ),
}

_WIDTH = 76


def _fill(text: str) -> str:
  return textwrap.fill(
    text,
    _WIDTH,
    subsequent_indent="  ",
    break_long_words=False,
    break_on_hyphens=False,
  )


def _section(title: str, entries: Iterable[str]) -> str:
  return f"{title}:\n" + textwrap.indent("\n".join(map(_fill, entries)), "  ")


def _parameters(
  title: str, params: Iterable[inspect.Parameter], names: Iterable[str]
) -> str:
  by_name = {p.name: p for p in params}
  entries = []
  for name in names:
    p = by_name[name]
    star = "**" if p.kind is p.VAR_KEYWORD else ""
    entry = f"{star}{name}: {PARAMETERS[name]}"
    if p.default is not p.empty:
      entry += f" Defaults to ``{p.default!r}``."
    entries.append(entry)
  return _section(title, entries)


def _insert(doc: str | None, sections: Iterable[str], *, at_end: bool) -> str:
  lines = inspect.cleandoc(doc or "").splitlines()
  at = len(lines)
  if not at_end:
    at = next(
      (i for i, line in enumerate(lines) if line.startswith("Example")), at
    )
  parts = ("\n".join(lines[:at]).rstrip(), *sections, "\n".join(lines[at:]))
  return "\n\n".join(part for part in parts if part)


def document(*, returns: str, raises: Sequence[str]) -> Callable[[T], T]:
  """Adds Args, Returns and Raises sections to a function's docstring.

  The Args list the function's parameters in signature order (``self`` and
  ``cls`` aside), each with its entry of :data:`PARAMETERS` and its
  default. The sections go before the docstring's example.

  Args:
    returns: the text of the Returns section.
    raises: the entries of the Raises section, as ``'Error: when'``.

  Returns:
    A decorator that rewrites the docstring of a function, or of the
    function of a classmethod, and returns its argument.
  """

  def decorate(obj: T) -> T:
    fn: Any = getattr(obj, "__func__", obj)
    params = list(inspect.signature(fn).parameters.values())
    names = [p.name for p in params if p.name not in ("self", "cls")]
    fn.__doc__ = _insert(
      fn.__doc__,
      (
        _parameters("Args", params, names),
        _section("Returns", [returns]),
        _section("Raises", raises),
      ),
      at_end=False,
    )
    return obj

  return decorate


def fields(title: str, names: Sequence[str]) -> Callable[[C], C]:
  """Appends a section listing a class's constructor parameters ``names``.

  Args:
    title: ``'Attributes'`` (linen) or ``'Args'`` (NNX).
    names: the parameters to list, in order.

  Returns:
    A decorator that rewrites a class's docstring and returns the class.
  """

  def decorate(cls: C) -> C:
    params = inspect.signature(cls.__init__).parameters.values()
    section = _parameters(title, params, names)
    cls.__doc__ = _insert(cls.__doc__, (section,), at_end=True)
    return cls

  return decorate


# The modules' __call__.
call = document(
  returns="The normalized input, of the shape of ``x``.",
  raises=("TypeError, ValueError: as :func:`flax_lrn.lrn` raises them.",),
)
