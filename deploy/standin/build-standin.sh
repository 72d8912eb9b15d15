#!/usr/bin/env bash
# Builds a local stand-in for the official base image oven/bun:<version>, which cannot be pulled
# here, so that `buildah bud` can build the project's Dockerfile unmodified. The stand-in is:
#   - a Debian bookworm minbase root (debootstrap, with ca-certificates), cached on this machine,
#   - the Bun binary from the npm package (node_modules/bun) at /usr/local/bin/bun, plus bunx,
#   - user and group bun (1000:1000, home /home/bun), working dir /home/bun/app, entrypoint bun,
#     default user root, like the official image,
#   - when this machine reaches the npm registry through a local CA (NODE_EXTRA_CA_CERTS), that
#     bundle, with NODE_EXTRA_CA_CERTS set in the image config, so that `bun install` works in RUN.
# Idempotent: nothing is done when oven/bun:<version> exists with a label equal to the hash of
# the inputs (Bun binary, CA bundle, debootstrap root, this script). Needs root and the Debian
# packages buildah and debootstrap.
#
# Usage: deploy/standin/build-standin.sh        (EDGECHAT_STANDIN_CACHE overrides the cache dir)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${EDGECHAT_STANDIN_CACHE:-/var/cache/edgechat-standin}
mirror=${EDGECHAT_STANDIN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
label=io.edgechat.standin.inputs
started=$SECONDS

log() { echo "[standin +$((SECONDS - started))s] $*" >&2; }
die() { echo "[standin] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (buildah from scratch, debootstrap, chroot)"
for cmd in buildah debootstrap chroot flock sha256sum; do
  command -v "$cmd" >/dev/null || die "$cmd is missing: apt-get update && apt-get install -y buildah debootstrap"
done

# ---- the version: package.json devDependencies.bun, equal to the Dockerfile's ARG BUN_VERSION
bun_pkg="$repo/node_modules/bun/bin/bun.exe"
[ -e "$bun_pkg" ] || die "$bun_pkg is missing: run npm ci first"
bun_bin=$(readlink -f "$bun_pkg")
[ -f "$bun_bin" ] && [ -x "$bun_bin" ] || die "$bun_pkg does not resolve to an executable file ($bun_bin)"
version=$(cd "$repo" && "$bun_bin" -e 'const v = require("./package.json").devDependencies?.bun; if (typeof v === "string") console.log(v)')
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "package.json devDependencies.bun must be an exact version, got '$version'"
arg_version=$(sed -n 's/^ARG BUN_VERSION=\([^[:space:]]*\)[[:space:]]*$/\1/p' "$repo/Dockerfile")
[ "$arg_version" = "$version" ] || die "Dockerfile ARG BUN_VERSION ('$arg_version') differs from package.json devDependencies.bun ('$version')"
bin_version=$("$bun_bin" --version)
[ "$bin_version" = "$version" ] || die "$bun_bin is Bun $bin_version, package.json wants $version: run npm ci"
image="oven/bun:$version"

# ---- the CA bundle this machine trusts for the registry, if any
ca_src=${NODE_EXTRA_CA_CERTS:-}
ca_dest=/usr/local/share/edgechat-standin/extra-ca.pem
if [ -n "$ca_src" ]; then
  [ -f "$ca_src" ] || die "NODE_EXTRA_CA_CERTS names $ca_src, which is not a file"
  ca_hash=$(sha256sum <"$ca_src" | cut -d' ' -f1)
else
  ca_hash=none
fi

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9 # one build at a time on this machine (tests and CI may start together)

# ---- the debootstrap root, cached
rootfs="$cache/rootfs-$suite-minbase"
if [ -f "$rootfs/.edgechat-standin-complete" ]; then
  log "debootstrap root cached at $rootfs"
else
  log "debootstrap --variant=minbase --include=ca-certificates $suite from $mirror (about a minute)"
  rm -rf "$rootfs.tmp" "$rootfs"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -30 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
  rm -rf "$rootfs.tmp"/var/lib/apt/lists/* "$rootfs.tmp"/var/cache/apt/*.bin "$rootfs.tmp"/var/cache/apt/archives/*.deb
  date -u +%Y-%m-%dT%H:%M:%SZ >"$rootfs.tmp/.edgechat-standin-complete"
  mv "$rootfs.tmp" "$rootfs"
  log "debootstrap root ready ($(du -sh "$rootfs" | cut -f1))"
fi

# ---- skip when the image exists and was built from the same inputs
inputs=$(
  {
    echo "bun $(sha256sum <"$bun_bin" | cut -d' ' -f1)"
    echo "ca $ca_hash"
    echo "rootfs $(cat "$rootfs/.edgechat-standin-complete")"
    echo "script $(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"
  } | sha256sum | cut -d' ' -f1
)
if buildah inspect --type image "$image" >/dev/null 2>&1; then
  have=$(buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)
  if [ "$have" = "$inputs" ]; then
    log "$image is up to date (inputs $inputs); nothing to do"
    exit 0
  fi
  log "$image exists but was built from other inputs ('$have' != '$inputs'): rebuilding"
  old_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image")
else
  log "$image not found: building it"
  old_id=
fi

# ---- assemble the image
ctr=$(buildah from --name "edgechat-standin-$$" scratch)
mnt=
cleanup() {
  [ -n "$mnt" ] && buildah umount "$ctr" >/dev/null 2>&1 || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mnt=$(buildah mount "$ctr")
log "copying the root into $ctr ($mnt)"
cp -a "$rootfs/." "$mnt/"
rm -f "$mnt/.edgechat-standin-complete"
# Like debian:bookworm-slim, which the official image is built on (dpkg's path-exclude there):
# no manuals, info pages, translations or docs besides the copyright files.
find "$mnt/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
find "$mnt/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$mnt"/usr/share/man/* "$mnt"/usr/share/info/* "$mnt"/usr/share/locale/*

log "installing Bun $version from $bun_bin"
install -m 0755 "$bun_bin" "$mnt/usr/local/bin/bun"
ln -sf bun "$mnt/usr/local/bin/bunx"
# Like the official image: `node` falls back to bun when nothing else provides it.
mkdir -p "$mnt/usr/local/bun-node-fallback-bin"
ln -sf /usr/local/bin/bun "$mnt/usr/local/bun-node-fallback-bin/node"

log "adding user and group bun (1000:1000)"
chroot "$mnt" groupadd --gid 1000 bun
chroot "$mnt" useradd --uid 1000 --gid bun --shell /bin/sh --create-home --home-dir /home/bun bun
mkdir -p "$mnt/home/bun/app"
chroot "$mnt" /usr/local/bin/bun --version >/dev/null || die "bun does not run inside the stand-in root"

env_args=(
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bun-node-fallback-bin
  --env BUN_RUNTIME_TRANSPILER_CACHE_PATH=0
  --env BUN_INSTALL_BIN=/usr/local/bin
)
if [ -n "$ca_src" ]; then
  log "adding the CA bundle $ca_src as $ca_dest (NODE_EXTRA_CA_CERTS)"
  install -D -m 0644 "$ca_src" "$mnt$ca_dest"
  env_args+=(--env "NODE_EXTRA_CA_CERTS=$ca_dest")
else
  log "NODE_EXTRA_CA_CERTS is not set: no extra CA in the stand-in"
fi

buildah umount "$ctr" >/dev/null
mnt=
buildah config \
  --os linux --arch "$(buildah info --format '{{.host.arch}}')" \
  "${env_args[@]}" \
  --workingdir /home/bun/app \
  --entrypoint '["bun"]' --cmd '' \
  --label "$label=$inputs" \
  --label "io.edgechat.standin=local stand-in for the official $image (deploy/standin/build-standin.sh)" \
  "$ctr"
log "committing $image"
buildah commit --quiet --format docker --rm "$ctr" "$image" >/dev/null
trap - EXIT
if [ -n "$old_id" ]; then
  # The previous stand-in is now untagged; it stays only while images built on it exist.
  buildah rmi "$old_id" >/dev/null 2>&1 || true
fi
log "built $image: $(buildah images --format '{{.Size}}' "$image" | head -1) (inputs $inputs)"
