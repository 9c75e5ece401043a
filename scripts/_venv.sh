# Sourced by scripts/serve and scripts/test: make .venv with the given extras, once per change of
# pyproject.toml or of the package's file list (the editable install is a tree of links, one per file).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="$1"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { echo "python3 -m venv failed: install your distribution's python3-venv package" >&2; exit 1; }
fi
fingerprint="$(cd "$root" && { cat pyproject.toml; find emulator contracts openapi fixtures -type f ! -name '*.pyc' | LC_ALL=C sort; } | python3 -c 'import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')"
stamp="$venv/.installed-$extras-$fingerprint"
if [ ! -f "$stamp" ]; then
  echo "fal-emulator: installing into $venv (the first time takes a minute or two)..." >&2
  rm -f "$venv"/.installed-*
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # progress: one line per package as pip collects it, then what it installed (pip's errors go to stderr, as
  # they are). pip may print none of those lines: grep's "no match" is not a failure, pip's own exit status is
  # (pipefail). setuptools' "Strict editable installation" warning box (expected: that is the mode asked
  # for) is filtered by its message only, so every other warning and error still shows.
  PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:Editable installation" \
    "$venv/bin/python" -m pip install --progress-bar off --config-settings editable_mode=strict -e "$root$extras" \
    | { grep --line-buffered -E '^(Collecting|Successfully installed)' >&2 || true; }
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$root"
