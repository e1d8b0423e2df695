# Sourced by the Flink peer scripts: installs Apache Flink from PyPI into a
# venv once (kept in $SLUICE_FLINK_VENV), and builds the `sluice` binary.
# Sets `venv`, `sluice`, `repo` (from `here`, the sourcing script's directory).

repo=$(cd "$here/../../.." && pwd)
venv=${SLUICE_FLINK_VENV:-/var/cache/sluice-flink-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

if ! "$venv/bin/python" -c 'import pyflink' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet apache-flink
fi
flink_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-flink"))')
echo "Flink $flink_version (PyFlink), $(java -version 2>&1 | head -1)" >&2

# The build of the README's run command (the same features as the tests').
(cd "$repo" && cargo build --release -j2 --bin sluice) >&2
sluice="$CARGO_TARGET_DIR/release/sluice"
