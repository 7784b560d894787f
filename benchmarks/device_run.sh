#!/usr/bin/env bash
# The GPU benchmark batch, for a lent GPU host that has torch/torchvision/scikit-learn but not this project's
# venv: independent benchmark processes run side by side (the compact models are launch-bound, so one process
# leaves most of the GPU idle), each under a time limit, writing JSONL records / tables / logs to $OUT.
#   MODE=smoke benchmarks/device_run.sh   # ~2 min: every code path on CUDA with tiny budgets, plus speed probes
#   MODE=full  benchmarks/device_run.sh   # the committed GPU rows (LIMIT seconds per process)
# Needs: .whl/ (pydantic wheels for the host's Python) and UNLEARN_CIFAR_ZIP (default .devdata/cifar10-jpeg.zip).
set -u
MODE=${MODE:-smoke}
LIMIT=${LIMIT:-420}
OUT=${OUT:-/tmp/unlearn-device-out}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT/logs" "$OUT/res"
if [ -d "$ROOT/.whl" ] && [ -z "${NO_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$ROOT"/.whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$ROOT/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export UNLEARN_CIFAR_ZIP=${UNLEARN_CIFAR_ZIP:-$ROOT/.devdata/cifar10-jpeg.zip}
cd "$ROOT/benchmarks"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/logs/gpu.txt" 2>&1
python3 -c "import torch, sklearn; print(torch.__version__, torch.cuda.is_available(), sklearn.__version__)" \
  >> "$OUT/logs/gpu.txt" 2>&1

job() {  # job NAME SECONDS CMD...: run in the background under a time limit, log to $OUT/logs/NAME.log
  local name=$1 secs=$2; shift 2
  ( start=$(date +%s); timeout -s INT "$secs" "$@" > "$OUT/logs/$name.log" 2>&1; rc=$?
    echo "$name rc=$rc seconds=$(( $(date +%s) - start ))" >> "$OUT/logs/status.txt" ) &
}
U="python3 unlearning.py"
if [ "$MODE" = smoke ]; then
  S=(--set pretrain.epochs=2 --seeds 0 --kinds "random 10%")
  job sup_tiny 150 $U --dataset cifar10 --families supervised "${S[@]}" --gp-variants \
      --records "$OUT/res/smoke.jsonl" --out "$OUT/res/smoke_u.md" --no-cache
  job enc_tiny 150 $U --dataset cifar10 --families simclr "${S[@]}" --records "$OUT/res/smoke.jsonl" \
      --out "$OUT/res/smoke_u.md" --no-cache
  job dig_tiny 150 $U --dataset digits --families moco byol "${S[@]}" --records "$OUT/res/smoke.jsonl" \
      --out "$OUT/res/smoke_u.md" --no-cache
  BENCH_VERBOSE=1 job sup_speed 100 $U --dataset cifar10 --families supervised --seeds 0 --kinds "random 10%" \
      --methods retrain gp --records "$OUT/res/smoke_speed.jsonl" --out "$OUT/res/smoke_speed.md" --no-cache
  BENCH_VERBOSE=1 job enc_speed 100 $U --dataset cifar10 --families byol --seeds 0 --kinds "random 10%" \
      --methods retrain --records "$OUT/res/smoke_speed.jsonl" --out "$OUT/res/smoke_speed.md" --no-cache
  job r18 150 python3 pretrain.py --sections throughput resnet18 --budget-seconds 8 --out "$OUT/res/smoke_r18.md"
else
  for seed in 0 1 2; do
    for kind in "random 10%" "class 3"; do
      tag="${kind%% *}"
      job "cifar_sup_${seed}_$tag" "$LIMIT" $U --dataset cifar10 --families supervised --seeds $seed --kinds "$kind" \
          --gp-variants --records "$OUT/res/cifar_supervised_${seed}_$tag.jsonl" \
          --out "$OUT/res/u_cs_${seed}_$tag.md" --no-cache
    done
  done
  for fam in simclr moco byol; do
    job "digits_$fam" "$LIMIT" $U --dataset digits --families $fam --seeds 0 1 2 --kinds "random 10%" "class 3" \
        --gp-variants gp:norm gp:norm-forget-walk --records "$OUT/res/digits_$fam.jsonl" \
        --out "$OUT/res/u_digits_$fam.md" --no-cache
    # both kinds have 3 seeds in results/records (class-wise from the CPU); list this file after
    # cifar_encoders_cpu.jsonl in --from-records and its rows replace the CPU ones (the later file wins)
    job "cifar_${fam}_class" "$LIMIT" $U --dataset cifar10 --families $fam --seeds 0 1 2 --kinds "class 3" \
        --records "$OUT/res/cifar_${fam}_class.jsonl" --out "$OUT/res/u_cifar_${fam}_class.md" --no-cache
  done
  job r18 "$LIMIT" python3 pretrain.py --sections resnet18 --budget-seconds "${R18_BUDGET:-40}" --out "$OUT/res/r18.md"
  job pre_gpu "$LIMIT" python3 pretrain.py --sections throughput cifar10k --out "$OUT/res/pretrain_gpu.md"
fi
sleep 5; nvidia-smi > "$OUT/logs/nvidia-smi-busy.txt" 2>&1
wait
cd "$OUT" && tar czf results.tgz logs res && echo "packed $(du -h results.tgz | cut -f1)"
cat "$OUT/logs/status.txt"
