#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine: installs what is missing, type-checks,
# checks formatting (prettier), lints, then runs every test (the numerical ones cross-check against
# Python PyTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
npm run --silent typecheck
npm run --silent format:check
npm run --silent lint
npm test
