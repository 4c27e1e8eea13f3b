#!/usr/bin/env bash
# Packs pkg/ as npm would publish it and installs the tarball into each example app under
# examples/, as an app outside this repository gets the package (`make examples-test`).
# The apps' lock files name the tarball without an integrity hash: it changes with every build.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf examples/.pack
mkdir -p examples/.pack
tarball=$(npm pack ./pkg --pack-destination examples/.pack --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].filename))')
mv "examples/.pack/$tarball" examples/.pack/tabnode-web.tgz
echo "[examples] packed pkg/ as examples/.pack/tabnode-web.tgz ($(stat -c %s examples/.pack/tabnode-web.tgz) bytes)"
for app in examples/vite-app examples/plain-esm examples/test-suite; do
  echo "[examples] npm ci in $app"
  (cd "$app" && npm ci --no-audit --no-fund)
done
