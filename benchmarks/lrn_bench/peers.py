"""TensorFlow and PyTorch doing what flax_lrn's programs do, idiomatically.

TensorFlow runs ``tf.function`` with ``tf.GradientTape`` on NHWC tensors
(its native layout); PyTorch runs autograd on contiguous NCHW tensors. Each
peer turns the benchmark's NHWC float32 NumPy arrays into its own tensors
once, and returns the results to NHWC (HWIO for weights) float32 NumPy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from . import config
from .programs import LEARNING_RATE


class Unavailable(Exception):
  """A peer that cannot run a configuration; the message says why."""


def make(name: str, cfg: config.Config, gpu: bool):
  """The peer ``name`` (``'tf'`` or ``'torch'``) for one configuration."""
  if importlib.util.find_spec(config.PEERS[name]) is None:
    raise Unavailable(f"{config.PEERS[name]} is not installed")
  return {"tf": TensorFlow, "torch": Torch}[name](cfg, gpu)


class TensorFlow:
  """``tf.nn.local_response_normalization`` (across channels only)."""

  def __init__(self, cfg: config.Config, gpu: bool):
    if cfg.mode != "across":
      raise Unavailable("TensorFlow has no within-channel LRN")
    import tensorflow as tf

    self.tf = tf
    if gpu and not tf.config.list_physical_devices("GPU"):
      raise Unavailable("this TensorFlow sees no GPU")
    self.device = "/GPU:0" if gpu else "/CPU:0"
    self.dtype = {"f32": tf.float32, "bf16": tf.bfloat16}[cfg.dtype]
    try:  # The CPU kernel has no bfloat16; the error shows when it runs.
      with tf.device(self.device):
        self.lrn(tf.zeros((1, 1, 1, config.SIZE), self.dtype))
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
      raise Unavailable(
        f"TensorFlow's {self.device[1:4]} LRN kernel has no {cfg.dtype}"
      ) from e
    self._sync = getattr(tf.test.experimental, "sync_devices", lambda: None)

  def lrn(self, a):
    return self.tf.nn.local_response_normalization(
      a, depth_radius=config.RADIUS, bias=config.K, alpha=config.ALPHA,
      beta=config.BETA,
    )  # fmt: skip

  def programs(self, arrays: dict[str, np.ndarray]) -> dict[str, Callable]:
    tf = self.tf
    with tf.device(self.device):
      x, g, w2 = (tf.cast(tf.constant(arrays[k]), self.dtype) for k in "xgv")
      w = tf.Variable(tf.cast(tf.constant(arrays["w"]), self.dtype))
    f32 = lambda a: tf.cast(a, tf.float32)  # noqa: E731

    def grad(a, cot):
      with tf.GradientTape() as tape:
        tape.watch(a)
        loss = tf.reduce_sum(f32(self.lrn(a)) * f32(cot))
      return tape.gradient(loss, a)

    def value_and_grad(a, cot):
      with tf.GradientTape() as tape:
        tape.watch(a)
        loss = tf.reduce_sum(f32(self.lrn(a)) * f32(cot))
      return loss, tape.gradient(loss, a)

    def vjp(a, cot):
      with tf.GradientTape() as tape:
        tape.watch(a)
        y = self.lrn(a)
      return y, tape.gradient(y, a, output_gradients=cot)

    def mean_square(y):
      return tf.reduce_mean(tf.square(f32(y)))

    def step(tail: str, use_lrn: bool, remat: bool = False):
      def block(a):
        y = tf.nn.relu(tf.einsum("nhwc,cd->nhwd", a, w))
        return self.lrn(y) if use_lrn else y

      if remat:
        block = tf.recompute_grad(block)

      @tf.function
      def run(a):
        with tf.GradientTape() as tape:
          y = block(a)
          if tail == "pool":
            y = tf.nn.max_pool2d(y, 3, 2, "VALID")
          elif tail == "conv":
            y = tf.nn.conv2d(y, w2, 1, "SAME")
          loss = mean_square(y)
        return tape.gradient(loss, w)

      return run

    def scan_step(use_lrn: bool):
      @tf.function
      def run(a):
        ws = tf.stack([w, tf.transpose(w)])
        with tf.GradientTape() as tape:
          tape.watch(ws)
          y = a
          for i in range(2):
            y = tf.nn.relu(tf.einsum("nhwc,cd->nhwd", y, ws[i]))
            y = self.lrn(y) if use_lrn else y
          loss = mean_square(y)
        return tape.gradient(loss, ws)

      return run

    def sgd_step(use_lrn: bool):
      inner = step("elementwise", use_lrn)

      @tf.function
      def run(a):
        return w - LEARNING_RATE * inner(a)

      return run

    fns = {
      "fwd": (tf.function(self.lrn), (x,)),
      "grad": (tf.function(grad), (x, g)),
      "value_and_grad": (tf.function(value_and_grad), (x, g)),
      "vjp": (tf.function(vjp), (x, g)),
      # TensorFlow's per-example input gradients of a loss that sums over
      # the examples are its batch gradient.
      "per_example_grad": (tf.function(grad), (x, g)),
    }
    for use_lrn, suffix in ((True, ""), (False, "_base")):
      for tail in ("pool", "conv", "elementwise"):
        fns[f"step_{tail}{suffix}"] = (step(tail, use_lrn), (x,))
      fns[f"step_remat{suffix}"] = (step("elementwise", use_lrn, True), (x,))
      fns[f"step_scan{suffix}"] = (scan_step(use_lrn), (x,))
      # One SGD update, as both optax steps (linen and NNX) make it.
      fns[f"step_linen{suffix}"] = fns[f"step_nnx{suffix}"] = (
        sgd_step(use_lrn), (x,),
      )  # fmt: skip
    return {name: self._on_device(f, a) for name, (f, a) in fns.items()}

  def _on_device(self, f, args) -> Callable[[], Any]:
    def call():
      with self.tf.device(self.device):
        return f(*args)

    return call

  def sync(self, _):
    self._sync()

  def to_numpy(self, form: str, out) -> list[np.ndarray]:
    outs = out if isinstance(out, tuple) else (out,)
    return [self.tf.cast(a, self.tf.float32).numpy() for a in outs]


class Torch:
  """``F.local_response_norm``, and Caffe's within-channel recipe."""

  def __init__(self, cfg: config.Config, gpu: bool):
    import torch
    import torch.nn.functional as F

    self.torch = torch
    self.F = F
    if gpu and not torch.cuda.is_available():
      raise Unavailable("this PyTorch sees no CUDA GPU")
    self.device = torch.device("cuda" if gpu else "cpu")
    self.dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[cfg.dtype]
    self.mode = cfg.mode
    try:  # Some CPU kernels (avg_pool3d) have no bfloat16.
      with torch.no_grad():
        self.lrn(torch.ones((1, config.SIZE, 2, 2), dtype=self.dtype))
    except (RuntimeError, NotImplementedError) as e:
      reason = str(e).splitlines()[0] if str(e) else type(e).__name__
      raise Unavailable(
        f"PyTorch {self.device.type.upper()} has no {cfg.dtype} kernel"
        f" ({reason})"
      ) from e

  def lrn(self, t):
    F = self.F
    if self.mode == "across":
      # PyTorch divides alpha by n: alpha * n is TensorFlow's alpha.
      return F.local_response_norm(
        t, config.SIZE, alpha=config.ALPHA * config.SIZE, beta=config.BETA,
        k=config.K,
      )  # fmt: skip
    # Caffe's WITHIN_CHANNEL: the average pool divides by n * n.
    pooled = F.avg_pool2d(
      t * t, config.SIZE, stride=1, padding=config.SIZE // 2,
      count_include_pad=True,
    )  # fmt: skip
    return t * (config.WITHIN_K + config.ALPHA * pooled) ** -config.BETA

  def _tensor(self, a: np.ndarray, perm):
    # A copy: PyTorch warns about (and may write into) read-only arrays.
    t = self.torch.from_numpy(np.array(a.transpose(perm), order="C"))
    return t.to(self.device, self.dtype).contiguous()

  def programs(self, arrays: dict[str, np.ndarray]) -> dict[str, Callable]:
    torch, F = self.torch, self.F
    x, g = (self._tensor(arrays[k], (0, 3, 1, 2)) for k in "xg")
    w = self._tensor(arrays["w"], (0, 1))
    w2 = self._tensor(arrays["v"], (3, 2, 0, 1))  # HWIO -> OIHW
    w.requires_grad_()
    leaf = x.clone().requires_grad_()

    def fwd():
      with torch.no_grad():
        return self.lrn(x)

    def grad():
      leaf.grad = None
      (self.lrn(leaf).float() * g.float()).sum().backward()
      return leaf.grad

    def value_and_grad():
      leaf.grad = None
      loss = (self.lrn(leaf).float() * g.float()).sum()
      loss.backward()
      return loss, leaf.grad

    def vjp():
      leaf.grad = None
      y = self.lrn(leaf)
      y.backward(g)
      return y, leaf.grad

    def step(tail: str, use_lrn: bool):
      def run():
        w.grad = None
        y = F.relu(torch.einsum("nchw,cd->ndhw", x, w))
        if use_lrn:
          y = self.lrn(y)
        if tail == "pool":
          y = F.max_pool2d(y, 3, 2)
        elif tail == "conv":
          y = F.conv2d(y, w2, padding=1)
        y.float().square().mean().backward()
        return w.grad

      return run

    fns = {
      "fwd": fwd,
      "grad": grad,
      "value_and_grad": value_and_grad,
      "vjp": vjp,
    }
    for use_lrn, suffix in ((True, ""), (False, "_base")):
      for tail in ("pool", "conv", "elementwise"):
        fns[f"step_{tail}{suffix}"] = step(tail, use_lrn)
    return fns

  def sync(self, _):
    if self.device.type == "cuda":
      self.torch.cuda.synchronize()

  def to_numpy(self, form: str, out) -> list[np.ndarray]:
    outs = out if isinstance(out, tuple) else (out,)
    arrays = [a.detach().float().cpu().numpy() for a in outs]
    if form.startswith("step"):
      return arrays
    return [a.transpose(0, 2, 3, 1) if a.ndim == 4 else a for a in arrays]
