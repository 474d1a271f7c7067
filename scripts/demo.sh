#!/usr/bin/env bash
# README command (a): set up .venv when needed, then run the main job on embedded data:
# the registry, Lab 6 (digit CNN from scratch), Lab 5 (transfer learning), ONNX export, and
# classification through the torch-free runtime. Everything is written under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export ZOO_OFFLINE=1  # everything below runs from local data and installed weights
RUNS=runs
mkdir -p "$RUNS"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "The registry"
show zoo list
show zoo info digitnet

step "Lab 6: the digit CNN from scratch"
# 10 x 1000 synthetic 28x28 digits, clean like the lecture's DigitDataset.
show zoo data make-digits "$RUNS/digits" --per-class 1000 --style lecture --seed 0 --overwrite
show zoo data show "$RUNS/digits" --out "$RUNS/digits-montage.png"
# trainingOptions('sgdm', 'MaxEpochs', 4, 'ValidationFrequency', 30), splitEachLabel(imds, 0.75)
show zoo train digitnet --data "$RUNS/digits" --solver sgdm --lr 0.01 --epochs 4 --batch-size 128 \
  --split 0.75 --val-every 30 --seed 0 --out "$RUNS/lab6"
# A test set the network never saw: same style, another seed.
show zoo data make-digits "$RUNS/digits-test" --per-class 100 --style lecture --seed 1 --overwrite
show zoo evaluate "$RUNS/lab6/model.safetensors" --data "$RUNS/digits-test"
sevens=("$RUNS"/digits/7/*.png)  # a glob, not ls | head: that pipe can die of SIGPIPE under pipefail
show zoo predict "$RUNS/lab6/model.safetensors" "${sevens[0]}" --top-k 3

step "Lab 6 as the student writes it: the layer array from the lecture, in a .m file"
show zoo info examples/lab6_layers.m
show zoo train examples/lab6_layers.m --data "$RUNS/digits" --solver sgdm --lr 0.01 --epochs 4 \
  --batch-size 128 --split 0.75 --val-every 30 --seed 0 --out "$RUNS/lab6-layers"
# classify(net, testImages) on exactly the 25 % splitEachLabel held out, and its confusion chart
show zoo evaluate "$RUNS/lab6-layers/model.safetensors" --split-of-run

step "Lab 5: transfer learning from ImageNet weights to a 2-class Images folder"
# scikit-image's bundled faces / non-faces written as Images/face, Images/other.
show zoo data make-faces "$RUNS/Images" --overwrite
# alexnet needs its ImageNet file (alexnet-owt-7be5be79.pth) in torch hub's cache; MobileNetV2's
# official weights arrive offline through the zoo-weights-imagenet plugin.
show zoo finetune mobilenet_v2 --data "$RUNS/Images" --classes 2 --weights auto --split 0.8 \
  --solver sgdm --lr 0.001 --batch-size 64 --epochs 6 --val-every 2 --seed 0 --out "$RUNS/lab5"

step "Export both to self-describing ONNX files, checked against torch"
show zoo export "$RUNS/lab6/model.safetensors" --out "$RUNS/digitnet.onnx"
show zoo export "$RUNS/lab5/model.safetensors" --out "$RUNS/faces.onnx"

step "Classify through the torch-free runtime (onnxruntime)"
show zoo predict "$RUNS/digitnet.onnx" "${sevens[0]}" --top-k 3
faces=("$RUNS"/Images/face/*.jpg)
others=("$RUNS"/Images/other/*.jpg)
show zoo predict "$RUNS/faces.onnx" "${faces[0]}" "${others[0]}" --top-k 2

step "Done"
echo "outputs in $RUNS/: lab6/ and lab6-layers/ (training-progress.png, confusion-matrix.png), lab5/, digitnet.onnx, faces.onnx"
