#!/usr/bin/env bash
# The GPU check: backend consistency, then every program shape against
# PyTorch's CUDA LRN. For a machine with one NVIDIA GPU and JAX (CUDA),
# flax, pytest and PyTorch already installed, and no network:
#
#   bash benchmarks/device_check.sh            # writes benchmarks/results/gpu/
#   OUT=/some/dir bash benchmarks/device_check.sh
#
# It writes device_check.log, backends.log, results.json and results.md
# (the Markdown tables) into $OUT, and the Pallas kernel's within-channel
# run into $OUT/pallas. Each step has a time limit; all three together
# stay under 8 minutes.
# DEVICE=cpu SHAPES=2x7x7x12 REPEATS=2 runs the same steps on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1

echo "== install (no dependencies, no network)"
if ! $PYTHON -m pip install -q --no-deps --no-build-isolation -e . \
  && ! $PYTHON -m pip install -q --no-deps -e .; then
  # Without flit_core in the environment pip cannot build the project
  # offline; the source tree on the path is the same code.
  echo "pip could not install the project; using the source tree"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
$PYTHON -c "import jax, flax_lrn; print('jax', jax.__version__, jax.devices())"

echo "== backend consistency (tests/test_backends.py)"
timeout 120 $PYTHON -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
  tests/test_backends.py 2>&1 | tee "$OUT/backends.log"
backends=${PIPESTATUS[0]}

echo "== every program shape against PyTorch's CUDA LRN"
timeout 240 $PYTHON -m benchmarks.lrn_bench --device "${DEVICE:-gpu}" --peers torch \
  --shapes "${SHAPES:-alexnet_lrn1}" --dtypes f32,bf16 --modes across,within \
  --repeats "${REPEATS:-7}" --warmup 2 --out "$OUT"
bench=$?

echo "== the Pallas kernel within a channel, against PyTorch"
# On a CPU the kernel runs in Pallas's interpreter, which is slow: f32 only.
pallas_dtypes=f32,bf16
[ "${DEVICE:-gpu}" = cpu ] && pallas_dtypes=f32
timeout 90 $PYTHON -m benchmarks.lrn_bench --device "${DEVICE:-gpu}" --peers torch \
  --shapes "${SHAPES:-alexnet_lrn1}" --dtypes "$pallas_dtypes" --modes within \
  --implementation pallas --repeats "${REPEATS:-5}" --warmup 2 --out "$OUT/pallas"
pallas=$?
echo "backends: exit $backends; benchmark: exit $bench; pallas: exit $pallas"
exit $(( backends != 0 || bench != 0 || pallas != 0 ))
