#!/usr/bin/env bash
# Installs what moco-ts needs on Debian/Ubuntu, then its npm packages and the native addon.
#   scripts/setup.sh          runtime: libtorch, OpenBLAS, Fashion-MNIST, build tools
#   scripts/setup.sh --test   also what the tests cross-check against (Python PyTorch, ONNX) and
#                             the headless browser the page tests open reports in (chromium)
# Runs as root or through sudo. Idempotent: installs only what is missing, rebuilds only when stale.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake g++ make libtorch-dev libgloo-dev libopenblas0-pthread dataset-fashion-mnist)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(python3-torch python3-torchvision python3-onnx chromium)
fi

if ! command -v node >/dev/null || (( $(node -p 'process.versions.node.split(".")[0]') < 20 )); then
  echo "moco-ts needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

sudo_cmd=()
if [[ "$(id -u)" != 0 ]]; then sudo_cmd=(sudo); fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  echo "Installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci also builds the addon (the package's install script) and compiles TypeScript (prepare).
addon=native/build/Release/moco_native.node
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
elif [[ ! -f "$addon" ]] || [[ -n "$(find native CMakeLists.txt -newer "$addon" -type f -not -path 'native/build/*' 2>/dev/null | head -1)" ]]; then
  npm run build:native
fi
