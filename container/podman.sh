# shellcheck shell=bash
# tally - container/podman.sh: podman on this machine, for every script
# that builds or runs tally's image (container/check, tests/rehearsal/run):
# runc, lowered limits and storage of our own under a work directory (so
# nothing global changes), a local debian:bookworm-slim base bootstrapped
# with debootstrap (no registry is reachable), and the image build.
# Sourced; needs scripts/lib.sh's say.

PODMAN_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PODMAN_WORK=
# The base the Containerfile names, made here instead of pulled.
BASE_IMAGE=docker.io/library/debian:bookworm-slim
# What building and running the image needs on the host.
# shellcheck disable=SC2034 # used by the scripts that source this file
PODMAN_PACKAGES=(podman buildah skopeo debootstrap runc uidmap fuse-overlayfs
	slirp4netns catatonit)

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

# The base image, bootstrapped once and kept in WORK's storage.
podman_base_image() {
	local root="$PODMAN_WORK/rootfs" mirror security
	podman image exists "$BASE_IMAGE" && return 0
	mirror=$(apt_source /debian)
	security=$(apt_source /debian-security)
	say "bootstrapping $BASE_IMAGE from ${mirror:=http://deb.debian.org/debian}"
	rm -rf "$root"
	debootstrap --variant=minbase bookworm "$root" "$mirror" >"$PODMAN_WORK/debootstrap.log" 2>&1 ||
		{ tail -20 "$PODMAN_WORK/debootstrap.log" >&2; return 1; }
	slim_rootfs "$root" "$mirror" "${security:-http://deb.debian.org/debian-security}" || return 1
	tar -C "$root" -c . |
		podman import --change 'CMD ["bash"]' - "$BASE_IMAGE" >>"$PODMAN_WORK/debootstrap.log" 2>&1 ||
		return 1
	rm -rf "$root"
}

# podman_build_image IMAGE LOG: builds container/Containerfile as IMAGE,
# podman's output in LOG (its tail on stderr when the build fails).
podman_build_image() {
	local image=$1 log=$2
	podman build --network host --layers -f "$PODMAN_TOP/container/Containerfile" \
		-t "$image" "$PODMAN_TOP" >"$log" 2>&1 ||
		{ tail -40 "$log" >&2; return 1; }
}

