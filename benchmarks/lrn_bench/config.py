"""What the benchmark measures: shapes, LRN constants, call forms, targets."""

from __future__ import annotations

import dataclasses

# AlexNet's LRN: depth radius 2 (n = 5), k = 2, alpha = 1e-4, beta = 0.75.
RADIUS = 2
SIZE = 2 * RADIUS + 1
ALPHA = 1e-4
BETA = 0.75
K = 2.0
# Caffe's WITHIN_CHANNEL hard-codes k = 1 (and divides alpha by n * n).
WITHIN_K = 1.0
# The agreement checks run on CHECK_SCALE * x, where alpha * sum(x**2) is
# large enough against k that a wrong window or alpha shows.
CHECK_SCALE = 30.0
# Output channels of the 3x3 convolution that follows the LRN in the
# GoogLeNet-stem training step.
STEM_CHANNELS = 32

SHAPES: dict[str, tuple[int, int, int, int]] = {
  "alexnet_lrn1": (32, 55, 55, 96),
  "alexnet_lrn2": (32, 27, 27, 256),
  "googlenet": (32, 56, 56, 192),
}
QUICK_SHAPES: dict[str, tuple[int, int, int, int]] = {"quick": (8, 27, 27, 64)}
DTYPES = ("f32", "bf16")
MODES = ("across", "within")
PEERS = {"tf": "tensorflow", "torch": "torch"}


def lrn_kwargs(mode: str, implementation: str | None = None) -> dict:
  """flax_lrn's arguments for AlexNet's LRN, or Caffe's within-channel one.

  ``implementation`` names flax_lrn's kernel (``None``: the default).
  """
  kernel = {} if implementation is None else {"implementation": implementation}
  if mode == "across":
    return dict(window=(RADIUS, RADIUS), alpha=ALPHA, beta=BETA, k=K, **kernel)
  return dict(
    window=SIZE, alpha=ALPHA, beta=BETA, k=WITHIN_K, alpha_scaling="size",
    mode="within_channel", **kernel,
  )  # fmt: skip


# The program shapes, in table order. A training step is timed with and
# without the LRN; its figure is what the LRN adds. The other forms time the
# LRN alone in what the program returns.
STEPS = (
  "step_pool",
  "step_conv",
  "step_elementwise",
  "step_remat",
  "step_scan",
  "step_linen",
  "step_nnx",
)
ISOLATED = ("grad", "value_and_grad", "vjp", "per_example_grad", "fwd")
FORMS = (*STEPS, *ISOLATED)
FORM_LABELS = {
  "step_pool": "step: x@w, relu, LRN, max pool 3x3/2",
  "step_conv": "step: x@w, relu, LRN, conv 3x3",
  "step_elementwise": "step: x@w, relu, LRN, elementwise loss",
  "step_remat": "step: remat(x@w, relu, LRN), elementwise loss",
  "step_scan": "step: lax.scan over 2 x (x@w, relu, LRN)",
  "step_linen": "optax step of a linen Dense, relu, LRN",
  "step_nnx": "nnx.Optimizer step of a Linear, relu, LRN",
  "grad": "jax.grad of <LRN(x), g> (y dead)",
  "value_and_grad": "jax.value_and_grad of sum(LRN(x) * g)",
  "vjp": "(y, dx) from one jax.vjp",
  "per_example_grad": "per-example grads, vmap(grad)",
  "fwd": "forward",
}
IMPL_LABELS = {
  "ours": "flax_lrn",
  "tf": "TensorFlow",
  "torch": "PyTorch",
  "floor": "floor",
}

# max|a - b| / max|b| allowed between a peer and flax_lrn. A training step's
# weight gradient sums ~1e5 terms of both signs, in each library's order,
# and where they cancel float32 rounding grows against max|b| (2.6e-4
# measured); and where two inputs of a max-pool window differ by a rounding
# error, each library may route that window's gradient to a different one
# (4.3e-3 measured). The LRN forms agree to 4e-7 on the same inputs, and a
# wrong window or alpha scaling moves the step's gradient by far more.
CHECK_TOLERANCE = {"f32": 1e-5, "bf16": 4 * 2.0**-7}
STEP_CHECK_TOLERANCE = {"f32": 1e-2, "bf16": 2.0**-4}


def check_bound(form: str, dtype: str) -> float:
  """The agreement bound of one call form's outputs."""
  table = STEP_CHECK_TOLERANCE if form in STEPS else CHECK_TOLERANCE
  return table[dtype]


# CPU targets, ratios of medians from one run: {name: (op, bound)}. The
# first four are read from the f32 across-channel row, the last from each
# bf16 row against its f32 twin.
CPU_TARGETS = {
  "TF / flax_lrn, worst shape": (">=", 1.5),
  "TF / flax_lrn, median over shapes": (">=", 3.0),
  "TF / flax_lrn, forward": (">=", 2.5),
  "scratch / X, every isolated form": ("<=", 1.0),
  "bf16 / f32, every step's LRN cost": ("<=", 1.0),
}

# Scratch beyond the bound by less than this is scalars (a conditional's
# predicate, its tuple of buffer pointers), not an array: XLA:CPU plans a
# few hundred bytes of them in any program with control flow.
SCRATCH_SCALAR_BYTES = 4096


@dataclasses.dataclass(frozen=True)
class Config:
  """One row of the tables: a shape, a dtype, a mode and flax_lrn's kernel."""

  shape_name: str
  shape: tuple[int, int, int, int]
  dtype: str
  mode: str
  implementation: str = "xla"

  @property
  def label(self) -> str:
    label = f"{self.shape_name} {self.dtype} {self.mode}"
    return (
      label
      if self.implementation == "xla"
      else f"{label} {self.implementation}"
    )
