#!/usr/bin/env bash
# From a fresh machine to a streamed answer: installs what is missing (a Vulkan driver, which is
# lavapipe on machines without a GPU; a C linker; Rust), fetches SmolLM2-135M-Instruct (98 MB)
# into the model cache, builds wgpt and asks the model a question.
#   scripts/quickstart.sh ["your question"]
set -euo pipefail
cd "$(dirname "$0")/.."
question="${1:-What is the capital of France, and what is it famous for?}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
scripts/install-vulkan.sh
if ! command -v cc >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential
fi
if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] || curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
model="$(scripts/fetch-models.sh)"
cargo build --release --locked --bin wgpt
exec target/release/wgpt run "$model" "$question"
