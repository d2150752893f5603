# shellcheck shell=bash
# tally - container/podman.sh: podman on this machine, for every script
# that builds or runs tally's image (container/check, tests/rehearsal/run):
# runc, lowered limits and storage of our own under a work directory (so
# nothing global changes), a local debian:bookworm-slim base per
# architecture bootstrapped with debootstrap (no registry is reachable),
# other architectures run under qemu-user-static through binfmt_misc, and
# the image build: one architecture, or a manifest list of several.
# Sourced; needs scripts/lib.sh's say.

PODMAN_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PODMAN_WORK=
# The base the Containerfile names, made here instead of pulled: a
# manifest list of one debootstrapped image per architecture, so that
# "podman build --platform linux/ARCH" finds that architecture's base.
BASE_IMAGE=docker.io/library/debian:bookworm-slim
# This machine's architecture (Debian's and OCI's names agree for
# amd64 and arm64), the default of every function here.
PODMAN_ARCH=$(dpkg --print-architecture)
# The architectures a base can be bootstrapped for.
PODMAN_ARCHES=(amd64 arm64)
# What building and running the image needs on the host; qemu and
# binfmt-support run the other architecture's programs.
# shellcheck disable=SC2034 # used by the scripts that source this file
PODMAN_PACKAGES=(podman buildah skopeo debootstrap runc uidmap fuse-overlayfs
	slirp4netns catatonit qemu-user-static binfmt-support jq)

# podman_setup WORK: podman as root with runc, lowered limits, and its
# storage, state and networks under WORK: CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF point at files of our own.
podman_setup() {
	PODMAN_WORK=$1
	mkdir -p "$PODMAN_WORK/storage" "$PODMAN_WORK/run" "$PODMAN_WORK/networks"
	cat >"$PODMAN_WORK/containers.conf" <<-EOF
		[containers]
		default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
		[engine]
		runtime = "runc"
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		tmp_dir = "$PODMAN_WORK/run/libpod"
		[network]
		network_config_dir = "$PODMAN_WORK/networks"
	EOF
	cat >"$PODMAN_WORK/storage.conf" <<-EOF
		[storage]
		driver = "overlay"
		graphroot = "$PODMAN_WORK/storage"
		runroot = "$PODMAN_WORK/run/storage"
	EOF
	export CONTAINERS_CONF="$PODMAN_WORK/containers.conf"
	export CONTAINERS_STORAGE_CONF="$PODMAN_WORK/storage.conf"
}

# The first URI of this machine's apt sources that ends in $1
# ("/debian" or "/debian-security").
apt_source() {
	local suffix=$1
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -n 's/^URIs: *//p; s/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' |
		tr ' ' '\n' | sed 's:/*$::' | grep -m1 -- "$suffix\$" || true
}

# Makes a fresh debootstrap look like Debian's bookworm-slim image: apt
# sources with updates and security, no documentation or locales
# installed later either, no services started by package scripts.
slim_rootfs() {
	local root=$1 mirror=$2 security=$3
	rm -f "$root/etc/apt/sources.list"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: bookworm bookworm-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: $security
		Suites: bookworm-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-exclude /usr/share/lintian/*
	EOF
	cat >"$root/etc/apt/apt.conf.d/slim" <<-'EOF'
		APT::Install-Recommends "false";
		Acquire::Languages "none";
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
	EOF
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
	find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$root"/usr/share/{man,info,locale,lintian}/* \
		"$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
		"$root"/tmp/* "$root/etc/hostname" "$root/etc/resolv.conf"
}

# The qemu-user-static name of a Debian architecture.
qemu_arch() {
	case $1 in
	amd64) echo x86_64 ;;
	arm64) echo aarch64 ;;
	*) echo "$1" ;;
	esac
}

# podman_emulation ARCH: this machine runs ARCH's programs: its own, or
# through qemu-user-static registered with binfmt_misc (mounted here
# when it is not; the registration is fix-binary, so it works inside
# containers and chroots too). Needs root for the mount.
podman_emulation() {
	local arch=${1:-$PODMAN_ARCH} qemu binfmt=/proc/sys/fs/binfmt_misc
	[[ $arch == "$PODMAN_ARCH" ]] && return 0
	qemu=$(qemu_arch "$arch")
	if [[ ! -e $binfmt/status ]]; then
		mount -t binfmt_misc binfmt_misc "$binfmt" || return 1
	fi
	if [[ ! -e $binfmt/qemu-$qemu ]]; then
		update-binfmts --import "qemu-$qemu" >/dev/null 2>&1 || true
		update-binfmts --enable "qemu-$qemu" || return 1
	fi
	grep -qx enabled "$binfmt/qemu-$qemu" && grep -q '^flags: .*F' "$binfmt/qemu-$qemu"
}

# The image architecture ARCH of IMAGE claims (podman image inspect).
podman_image_arch() {
	podman image inspect --format '{{.Architecture}}' "$1"
}

# podman_base_image [ARCH...]: the base for each ARCH (default: this
# machine's), bootstrapped once per architecture and kept in WORK's
# storage as localhost/debian:bookworm-slim-ARCH; BASE_IMAGE becomes a
# manifest list of every architecture bootstrapped so far.
podman_base_image() {
	local arch arches=("$@") have=()
	((${#arches[@]})) || arches=("$PODMAN_ARCH")
	for arch in "${arches[@]}"; do
		podman_base_rootfs "$arch" || return 1
	done
	for arch in "${PODMAN_ARCHES[@]}"; do
		podman image exists "localhost/debian:bookworm-slim-$arch" && have+=("$arch")
	done
	podman_base_listed "${have[@]}" && return 0
	podman_manifest_create "$BASE_IMAGE" "${have[@]/#/localhost/debian:bookworm-slim-}"
}

# podman_manifest_create LIST IMAGE...: LIST becomes a manifest list of
# these local images, in place of whatever had that name (a list is
# removed, an image only loses the name).
podman_manifest_create() {
	local list=$1 image
	shift
	if podman manifest exists "$list" 2>/dev/null; then
		podman manifest rm "$list" >/dev/null || return 1
	elif podman image exists "$list"; then
		podman untag "$list" "$list" || return 1
	fi
	podman manifest create "$list" >/dev/null || return 1
	for image in "$@"; do
		podman manifest add "$list" "containers-storage:$image" >/dev/null || return 1
	done
}

# Is BASE_IMAGE a manifest list of exactly these architectures?
podman_base_listed() {
	local want got
	want=$(printf '%s\n' "$@" | sort)
	podman manifest exists "$BASE_IMAGE" 2>/dev/null || return 1
	got=$(podman manifest inspect "$BASE_IMAGE" |
		jq -r '.manifests[].platform.architecture' 2>/dev/null | sort) || return 1
	[[ -n $got && $got == "$want" ]]
}

# podman_base_rootfs ARCH: debootstraps ARCH's base unless it is there;
# a foreign architecture's package scripts run under qemu.
podman_base_rootfs() {
	local arch=$1 root="$PODMAN_WORK/rootfs-$1" mirror security log
	local tag="localhost/debian:bookworm-slim-$arch"
	log="$PODMAN_WORK/debootstrap-$arch.log"
	podman image exists "$tag" && return 0
	# A work directory from before there was one base per architecture.
	if [[ $arch == "$PODMAN_ARCH" ]] && ! podman manifest exists "$BASE_IMAGE" 2>/dev/null &&
		podman image exists "$BASE_IMAGE"; then
		podman tag "$BASE_IMAGE" "$tag" && return 0
	fi
	podman_emulation "$arch" || { say "cannot run $arch programs (qemu-user-static, binfmt_misc)"; return 1; }
	mirror=$(apt_source /debian)
	security=$(apt_source /debian-security)
	say "bootstrapping $tag from ${mirror:=http://deb.debian.org/debian}"
	rm -rf "$root"
	debootstrap --arch="$arch" --variant=minbase bookworm "$root" "$mirror" >"$log" 2>&1 ||
		{ tail -20 "$log" >&2; return 1; }
	slim_rootfs "$root" "$mirror" "${security:-http://deb.debian.org/debian-security}" || return 1
	tar -C "$root" -c . |
		podman import --os linux --arch "$arch" --change 'CMD ["bash"]' - "$tag" >>"$log" 2>&1 ||
		return 1
	rm -rf "$root"
}

# podman_build_image IMAGE LOG [ARCH]: builds container/Containerfile as
# IMAGE for ARCH (default: this machine's), podman's output in LOG (its
# tail on stderr when the build fails). Needs ARCH's base.
# The Containerfile pins its base by digest. Each local base has a
# digest of its own: ARCH's is passed as DEBIAN_DIGEST, and the build
# stage (on this machine's architecture) gets this machine's by digest
# as BUILD_IMAGE, so a base other than the one bootstrapped is refused.
podman_build_image() {
	local image=$1 log=$2 arch=${3:-$PODMAN_ARCH} digest build_digest
	podman_emulation "$arch" || return 1
	digest=$(podman_base_digest "$arch") && build_digest=$(podman_base_digest "$PODMAN_ARCH") ||
		return 1
	podman build --network host --layers --platform "linux/$arch" \
		--build-arg BUILDPLATFORM="linux/$PODMAN_ARCH" --build-arg DEBIAN_DIGEST="$digest" \
		--build-arg BUILD_IMAGE="${BASE_IMAGE}@$build_digest" \
		-f "$PODMAN_TOP/container/Containerfile" -t "$image" "$PODMAN_TOP" >"$log" 2>&1 ||
		{ tail -40 "$log" >&2; return 1; }
}

# podman_base_digest ARCH: the digest of the local base for ARCH, as
# BASE_IMAGE@DIGEST names it.
podman_base_digest() {
	podman image inspect --format '{{.Digest}}' "localhost/debian:bookworm-slim-$1"
}

# podman_build_manifest LIST LOGDIR ARCH...: builds the image for each
# ARCH as LIST-ARCH (log LOGDIR/build-ARCH.log), then makes LIST a
# manifest list of those images, the one tag to push for every node.
podman_build_manifest() {
	local list=$1 logdir=$2 arch
	shift 2
	for arch in "$@"; do
		podman_build_image "$list-$arch" "$logdir/build-$arch.log" "$arch" || return 1
	done
	podman_manifest_create "$list" "${@/#/$list-}"
}
