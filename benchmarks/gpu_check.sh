#!/usr/bin/env bash
# GPU paths, proven in one run (issue 13, item 3): <= 6 minutes on one GPU, installs nothing
# beyond the README's set-up (bash scripts/test.sh or scripts/demo.sh made .venv), and ends
# with a PASS / FAIL / SKIP table. Run it first on any GPU machine, and put its output in
# docs/performance.md ("GPU") and the issue's closing note.
#
#   bash benchmarks/gpu_check.sh [WORKDIR]        # default: a temporary folder, removed at the end
#
# Each check has its own time limit; a check that needs what is absent (a second GPU, TensorRT's
# libraries) is SKIP, not FAIL. Exit status: 0 when nothing failed, 1 otherwise.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
ZOO="$VENV/bin/zoo"
WORK="${1:-$(mktemp -d -t zoo-gpu-check.XXXXXX)}"
[ -n "${1:-}" ] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"
LOG="$WORK/gpu_check.log"
START=$SECONDS
declare -a NAMES STATUS SECS NOTES

if [ ! -x "$PY" ] || [ ! -x "$ZOO" ]; then
  echo "no $VENV with zoo installed: run 'bash scripts/test.sh' (the README's set-up) first" >&2
  exit 1
fi

# check NAME LIMIT_SECONDS COMMAND...: run it, record PASS (0) / SKIP (3) / FAIL (else) and its last line
check() {
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS rc
  echo "=== $name: $*" >>"$LOG"
  timeout --kill-after=10 "$limit" "$@" >"$WORK/out.txt" 2>&1
  rc=$?
  cat "$WORK/out.txt" >>"$LOG"
  local note
  note="$(grep -v -i 'warning' "$WORK/out.txt" | grep -v '^\s*$' | tail -n 1 | cut -c1-110)"
  case $rc in
    0) STATUS+=("PASS") ;;
    3) STATUS+=("SKIP") ;;
    124|137) STATUS+=("FAIL"); note="timed out after ${limit}s" ;;
    *) STATUS+=("FAIL") ;;
  esac
  NAMES+=("$name"); SECS+=("$((SECONDS - t0))"); NOTES+=("$note")
  printf '%-34s %-4s %4ss  %s\n' "$name" "${STATUS[-1]}" "${SECS[-1]}" "$note"
}

skip() {  # skip NAME REASON
  NAMES+=("$1"); STATUS+=("SKIP"); SECS+=("0"); NOTES+=("$2")
  printf '%-34s %-4s %4ss  %s\n' "$1" "SKIP" "0" "$2"
}

echo "zoo GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), work folder $WORK"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/GPU: /'
fi
GPUS="$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)"
"$PY" -c 'import torch, onnxruntime as o; print("torch", torch.__version__, "CUDA", torch.version.cuda, "| onnxruntime", o.__version__, o.get_available_providers())'
echo "GPUs torch sees: $GPUS"
if [ "$GPUS" = "0" ]; then
  echo "no CUDA GPU here: nothing to check (the script is ready for a GPU machine)"
  exit 0
fi
echo

DIGITS="$WORK/digits"; FACES="$WORK/Images"
check "data (digits, faces)"            60 bash -c "'$ZOO' data make-digits '$DIGITS' --per-class 100 && '$ZOO' data make-faces '$FACES'"
check "onnxruntime CUDA provider loads" 60 "$PY" "$ROOT/benchmarks/gpu_check.py" ep
check "resnet18 parity: ORT CUDA vs torch" 90 "$PY" "$ROOT/benchmarks/gpu_check.py" parity --model timm/resnet18
check "fp16 ONNX vs fp32 (resnet18)"    90 "$PY" "$ROOT/benchmarks/gpu_check.py" fp16 --model timm/resnet18
check "train digitnet --device cuda"    60 "$ZOO" train digitnet --data "$DIGITS" --epochs 2 --device cuda --out "$WORK/run-cuda" --no-progress
check "finetune resnet18 --device cuda" 60 "$ZOO" finetune timm/resnet18 --data "$FACES" --classes 2 --epochs 1 --batch-size 32 --weights none --device cuda --out "$WORK/run-ft" --no-progress
check "NCCL, 1 process (torchrun)"      60 "$VENV/bin/torchrun" --standalone --nproc-per-node 1 -m zoo train digitnet --data "$DIGITS" --epochs 1 --device cuda --out "$WORK/run-nccl1" --no-progress
if [ "$GPUS" -ge 2 ]; then
  check "NCCL, --nproc 2"               90 "$ZOO" train digitnet --data "$DIGITS" --epochs 1 --device cuda --nproc 2 --out "$WORK/run-nccl2" --no-progress
  check "--sync-bn, --nproc 2"          90 "$ZOO" finetune timm/resnet18 --data "$FACES" --classes 2 --epochs 1 --weights none --device cuda --nproc 2 --sync-bn --out "$WORK/run-syncbn" --no-progress
else
  skip "NCCL, --nproc 2" "one GPU visible"
  check "--sync-bn (torchrun, 1 process)" 60 "$VENV/bin/torchrun" --standalone --nproc-per-node 1 -m zoo finetune timm/resnet18 --data "$FACES" --classes 2 --epochs 1 --weights none --device cuda --sync-bn --out "$WORK/run-syncbn" --no-progress
fi
check "bench GPU rows (resnet18)"       150 "$ZOO" bench timm/resnet18 --batch 1,64 --runtime torch,torch-compile,onnxruntime --device cuda --providers cuda --seconds 2
if "$PY" -c 'import onnxruntime as o, sys; sys.exit("TensorrtExecutionProvider" not in o.get_available_providers())' 2>/dev/null \
   && ldconfig -p 2>/dev/null | grep -q libnvinfer; then
  check "bench TensorRT provider"       150 "$ZOO" bench timm/resnet18 --batch 1,64 --runtime onnxruntime --providers TensorrtExecutionProvider --seconds 2
else
  skip "bench TensorRT provider" "TensorRT's libraries (libnvinfer) not present"
fi

echo
echo "| check | result | seconds | last line |"
echo "|---|---|---:|---|"
failed=0
for i in "${!NAMES[@]}"; do
  echo "| ${NAMES[$i]} | ${STATUS[$i]} | ${SECS[$i]} | ${NOTES[$i]//|/\\|} |"
  [ "${STATUS[$i]}" = "FAIL" ] && failed=1
done
echo
echo "total $((SECONDS - START)) s; full output in $LOG$([ -n "${1:-}" ] || echo ' (removed at exit: pass a WORKDIR to keep it)')"
exit $failed
