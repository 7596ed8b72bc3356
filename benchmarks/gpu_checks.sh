#!/usr/bin/env bash
# Every GPU check of the package in one call (a lent GPU machine has no network): the AFP step-time
# benchmark at XGLM-564M's shape, FSDP2/DDP on GPUs against one process, and the xling-vs-hf evaluation
# throughput at XGLM-564M's shape in bf16 (batch 32 and 64, with hf's own bf16 envelope: hf at other batch
# sizes and in float32, and how many of xling's differences lie outside it). Each stage has its own time limit and log; a failing stage does
# not stop the others. Logs go to $OUT (default: gpu-checks/).
#
#   bash benchmarks/gpu_checks.sh            # with the Python packages of pyproject.toml installed
#
# Wheels in .whl/ (the project's pins, for a machine that cannot download them) are installed into
# /tmp/site first when that folder exists.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false HF_DATASETS_DISABLE_PROGRESS_BARS=1
PYTHON=${PYTHON:-python3}
if [ -d .whl ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  "$PYTHON" -c "import torch, transformers, trl, datasets, peft, accelerate, lm_eval, pyarrow; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| trl', trl.__version__, '| datasets', datasets.__version__, '| peft', peft.__version__, '| accelerate', accelerate.__version__, '| lm_eval', lm_eval.__version__, '| pyarrow', pyarrow.__version__)"
} 2>&1 | tee "$OUT/environment.txt"

stage() {  # stage NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local status=$?
  echo "=== $name: exit $status after $((SECONDS - start)) s"
  tail -n 40 "$OUT/$name.txt"
}

STAGES=${STAGES:-sharding afp_step_time eval_throughput}  # e.g. STAGES="afp_step_time" for one stage
for name in $STAGES; do
  case $name in
    sharding) stage sharding 120 "$PYTHON" benchmarks/gpu_sharding_check.py ;;
    afp_step_time) stage afp_step_time 170 "$PYTHON" benchmarks/afp_step_time.py --preset xglm-564m --peak-tflops 989 ;;
    # 2,000 requests at batch 32 and 64, xling with packed rows (its default on a GPU) and one segment per row,
    # and hf against itself (batch 8 and 64, float32): the bf16 envelope
    eval_throughput) stage eval_throughput 360 "$PYTHON" benchmarks/eval_throughput.py --preset xglm-564m --docs 200 \
      --batch-size "${EVAL_BATCH_SIZE:-32,64}" --rounds 2 --compare-packing \
      --envelope-batch-sizes "${EVAL_ENVELOPE_BATCH_SIZES:-8,64}" --envelope-float32 ;;
    *) echo "unknown stage $name (sharding, afp_step_time, eval_throughput)"; exit 2 ;;
  esac
done
