# Sourced by scripts/serve and scripts/test: make .venv with the given extras, once per pyproject change.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="$1"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { echo "python3 -m venv failed: install your distribution's python3-venv package" >&2; exit 1; }
fi
stamp="$venv/.installed-$extras-$(python3 -c 'import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest()[:16])' "$root/pyproject.toml")"
if [ ! -f "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "$root$extras"
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$root"
