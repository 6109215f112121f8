# Sourced by the scripts in this folder: `ensure_venv NAME PACKAGE...` makes sure the Python
# tool venv $CARGO_TARGET_DIR/venvs/NAME holds PACKAGE... (installed by name from PyPI) and
# prints its path. One venv per tool because checkov and python-hcl2 pin clashing versions of
# the same libraries. A venv is used only once its `.complete` mark exists, so an install that
# was interrupted is redone rather than half-used.
ensure_venv() {
  local name=$1
  shift
  local venv="$CARGO_TARGET_DIR/venvs/$name"
  if [[ ! -f "$venv/.complete" ]]; then
    command -v python3 >/dev/null || { echo "python3 is required to install $*" >&2; return 1; }
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    touch "$venv/.complete"
  fi
  echo "$venv"
}
