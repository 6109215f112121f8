# Sourced by scripts/terraform-checks and scripts/terraform-manifest. Finds terraform and the
# local AWS provider mirror, and prepares an initialised copy of terraform/ to run in, so that
# nothing (.terraform/, lock files, plugin caches) is ever written into the source tree and two
# runs at once do not share state. Everything here works offline: `init` installs the provider
# from the mirror on the machine image, never from the registry.

# The provider mirror: $GIFTIFY_TF_PLUGIN_DIR, else the places machine images put one.
find_tf_plugin_dir() {
  local dir
  for dir in "${GIFTIFY_TF_PLUGIN_DIR:-}" /opt/tf-plugins "$HOME/.terraform.d/plugins" \
    /usr/local/share/terraform/plugins /usr/share/terraform/plugins; do
    if [[ -n "$dir" && -d "$dir/registry.terraform.io/hashicorp/aws" ]]; then
      echo "$dir"
      return 0
    fi
  done
  echo "no local mirror of the hashicorp/aws provider (registry.terraform.io/hashicorp/aws under" \
    "/opt/tf-plugins or ~/.terraform.d/plugins); set GIFTIFY_TF_PLUGIN_DIR to the folder holding it" >&2
  return 1
}

# Sets TF_WORK to a fresh, initialised copy of terraform/ (removed by tf_cleanup).
tf_prepare() {
  local repo=$1
  if ! command -v terraform >/dev/null; then
    echo "terraform is not on PATH: the checks need Terraform >= 1.11 (the machine image ships it" \
      "in /usr/local/bin)" >&2
    return 1
  fi
  local plugins
  plugins=$(find_tf_plugin_dir) || return 1

  export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
  local scratch="${CARGO_TARGET_DIR:-$repo/target}/tmp"
  mkdir -p "$scratch"
  TF_WORK=$(mktemp -d "$scratch/terraform.XXXXXX")
  # An empty CLI configuration: no user credentials helper, plugin cache or mirror setting can
  # change what the checks see.
  : >"$TF_WORK/.terraformrc"
  export TF_CLI_CONFIG_FILE="$TF_WORK/.terraformrc"
  mkdir "$TF_WORK/config"
  tar -C "$repo/terraform" --exclude=.terraform --exclude='*.tfstate*' -cf - . | tar -C "$TF_WORK/config" -xf -
  (cd "$TF_WORK/config" && terraform init -backend=false -input=false -plugin-dir="$plugins" >"$TF_WORK/init.log" 2>&1) || {
    cat "$TF_WORK/init.log" >&2
    return 1
  }
}

tf_cleanup() {
  if [[ -n "${TF_WORK:-}" ]]; then
    rm -rf "$TF_WORK"
  fi
}
