#!/usr/bin/env bash
# Builds the browser package into web/pkg: the library for wasm32 (release), then the ES module
# and TypeScript types with wasm-bindgen --target web. Needs the wasm32 target and wasm-bindgen-cli
# at exactly the version of the wasm-bindgen crate in Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "wasm-bindgen-cli $want is needed (found: ${have:-none}):" >&2
  echo "  cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
target_dir=${CARGO_TARGET_DIR:-target}
cargo rustc --locked --release --lib --crate-type cdylib --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir web/pkg "$target_dir/wasm32-unknown-unknown/release/wgpt.wasm"
ls -l web/pkg/wgpt_bg.wasm
