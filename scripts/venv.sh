# Sourced by the scripts in this folder: `ensure_venv NAME REQUIREMENT...` makes sure the Python
# tool venv $CARGO_TARGET_DIR/venvs/NAME holds exactly REQUIREMENT... (installed from PyPI) and
# prints its path. One venv per tool, so that tools pinning clashing versions of the same
# libraries (checkov pins many) never share one. The `.complete` mark records what was installed:
# an interrupted install, or a changed requirement, is redone rather than half-used.
ensure_venv() {
  local name=$1
  shift
  local venv="$CARGO_TARGET_DIR/venvs/$name"
  if [[ ! -f "$venv/.complete" || "$(cat "$venv/.complete")" != "$*" ]]; then
    command -v python3 >/dev/null || { echo "python3 is required to install $*" >&2; return 1; }
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    echo "$*" >"$venv/.complete"
  fi
  echo "$venv"
}
