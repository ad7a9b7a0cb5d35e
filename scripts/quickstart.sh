#!/usr/bin/env bash
# Everything from a fresh Debian/Ubuntu machine to the main job on the default data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
npm run --silent build
node bin/moco.js doctor
node bin/moco.js pretrain
