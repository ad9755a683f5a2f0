#!/usr/bin/env bash
# Runs the Python end-to-end tests (the REPL in a pty, the Jupyter kernel, the notebooks)
# against built binaries:
#
#     tests/run_python_tests.sh target/debug [PYTEST ARGS...]
#
# $1 is the directory holding tessera and tessera-kernel. The virtualenv is
# ${TESSERA_VENV:-$HOME/.cache/tessera/venv}, created if missing; tests/requirements.txt is
# installed into it. Exits with pytest's status.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BIN_DIR [PYTEST ARGS...]" >&2
    exit 2
fi
if [[ ! -d "$1" ]]; then
    echo "$1 is not a directory" >&2
    exit 2
fi
bin_dir=$(cd "$1" && pwd)
shift
for bin in tessera tessera-kernel tessera-executor; do
    if [[ ! -x "$bin_dir/$bin" ]]; then
        echo "$bin_dir/$bin is missing; build with: cargo build --workspace --bins" >&2
        exit 2
    fi
done

tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${TESSERA_VENV:-$HOME/.cache/tessera/venv}
python=${PYTHON:-python3}

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating a virtualenv in $venv" >&2
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$tests_dir/requirements.txt"

export TESSERA_BIN_DIR="$bin_dir"
export TESSERA_KERNEL_BIN="$bin_dir/tessera-kernel"
cd "$tests_dir/.."
status=0
"$venv/bin/python" -m pytest "$tests_dir/repl" "$tests_dir/jupyter" "$@" || status=$?
exit "$status"
