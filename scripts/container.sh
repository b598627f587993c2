#!/usr/bin/env bash
# The container image, built and run for real: deploy/Dockerfile built with buildah, the image
# run with podman, its server probed from this machine.
#
# CI cannot reach an image registry, so the two images the Dockerfile starts from are made
# here from Debian's own packages and handed to it as RUST_IMAGE and RUNTIME_IMAGE:
#
# 1. Installs buildah, podman, runc and debootstrap (apt-get) when they are missing.
# 2. A Debian 12 (bookworm) root file system from deb.debian.org with `debootstrap --variant=
#    minbase` (kept in /var/cache/ngayle-ci for a week), imported as the runtime base image
#    (what debian:bookworm-slim is to Docker).
# 3. The builder image (what rust:1-bookworm is to Docker): that base plus gcc and libc6-dev
#    from Debian, plus this machine's own Rust toolchain (`rustc --print sysroot`, a rustup
#    toolchain: Debian's rustc is too old for edition 2024). crates.io is reached from inside
#    the build; the downloaded crates are kept in /var/cache/ngayle-ci/cargo-registry
#    (seeded from this machine's ~/.cargo/registry the first time).
# 4. `buildah bud -f deploy/Dockerfile` with chroot isolation and the vfs storage driver: no
#    daemon, no overlay file system, no user namespace needed.
# 5. `podman run` of the image with its own entrypoint, command and user, port 8080 published
#    on a free port of 127.0.0.1; from here: GET /healthz answers 200 and "ok",
#    GET /calendar.ics is a calendar with events.
# 6. SIGTERM (the image's STOPSIGNAL): the server exits by itself, with status 0.
# 7. Removes the containers and images it made (also on failure: trap), so a second run starts
#    from the same place. Set NGAYLE_CI_KEEP_IMAGES=1 to keep the images for a look.
#
# Everything lives in its own storage (/var/lib/ngayle-ci/storage, /run/ngayle-ci), apart from
# any other podman or buildah use on the machine.
#
# Usage (as root, Debian 12, with a rustup toolchain on PATH — CI):
#   bash scripts/container.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "run as root: apt-get, debootstrap and buildah need it" >&2; exit 1; }

cache=/var/cache/ngayle-ci
mirror=${NGAYLE_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs_tar=$cache/bookworm-minbase.tar
registry=$cache/cargo-registry
base_image=localhost/ngayle-ci/debian:bookworm
rust_image=localhost/ngayle-ci/rust:bookworm
app_image=localhost/ngayle-ci/ngayle:ci
serve_name=ngayle-ci-serve
storage=(--root /var/lib/ngayle-ci/storage --runroot /run/ngayle-ci/storage --storage-driver vfs)
# runc, not crun: crun refuses hybrid cgroup hierarchies (cgroup v1 with a v2 mount), which
# some CI virtual machines have. cgroupfs: no dependence on systemd being PID 1. Events in a
# file: no journald needed.
podman_opts=("${storage[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file)
export BUILDAH_ISOLATION=chroot
export DEBIAN_FRONTEND=noninteractive

start=$SECONDS
step_start=$SECONDS
step_name=
step_done() {
  if [[ -n $step_name ]]; then echo "   ($((SECONDS - step_start)) s)"; fi
  step_name=
}
step() {
  step_done
  step_name=$1
  step_start=$SECONDS
  echo "== container: $1"
}
fail() { echo "FAIL $*" >&2; exit 1; }
ok() { echo "PASS $*"; }
bah() { buildah "${storage[@]}" "$@"; }
pod() { podman "${podman_opts[@]}" "$@"; }

work=
cleanup() {
  local rc=$?
  step_done
  if [[ $rc != 0 ]] && pod container exists "$serve_name" 2>/dev/null; then
    echo "--- the container's log:" >&2
    pod logs "$serve_name" 2>&1 | tail -n 40 >&2 || true
  fi
  remove_all
  [[ -n $work ]] && rm -rf "$work"
  local outcome="done"
  ((rc == 0)) || outcome="FAILED (status $rc)"
  echo "== container: $outcome in $((SECONDS - start)) s"
}
# The storage is this script's own: whatever is in it was made by an earlier run.
remove_all() {
  if command -v podman >/dev/null 2>&1; then
    # --volumes and prune: the image's VOLUME makes an anonymous volume for each run.
    pod rm --force --all --volumes >/dev/null 2>&1 || true
    pod volume prune --force >/dev/null 2>&1 || true
  fi
  if command -v buildah >/dev/null 2>&1; then
    bah rm --all >/dev/null 2>&1 || true
    if [[ ${NGAYLE_CI_KEEP_IMAGES:-} != 1 ]]; then bah rmi --all --force >/dev/null 2>&1 || true; fi
  fi
}

mkdir -p "$cache"
# One run at a time: the storage and the caches are shared by all runs on this machine.
exec 9>"$cache/lock"
flock --nonblock 9 || fail "another scripts/container.sh is running ($cache/lock)"
work=$(mktemp -d)
trap cleanup EXIT

step "install buildah, podman, runc, debootstrap"
need=()
for cmd in buildah podman runc debootstrap curl python3 flock; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
if ((${#need[@]})); then
  pkgs=(buildah podman runc debootstrap curl ca-certificates python3 util-linux)
  echo "missing: ${need[*]}; apt-get install ${pkgs[*]}"
  apt-get -qq update
  apt-get -qq install -y --no-install-recommends "${pkgs[@]}" >"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; fail "apt-get install"; }
fi
buildah --version
podman --version
runc --version | sed -n 1p
remove_all   # what an interrupted earlier run left

step "Debian bookworm root file system (debootstrap --variant=minbase, cached in $cache)"
if [[ -f $rootfs_tar ]] && [[ -z $(find "$rootfs_tar" -mtime +7) ]]; then
  echo "cached: $rootfs_tar ($(date -u -r "$rootfs_tar" '+%F %R UTC'))"
else
  rootfs=$work/rootfs
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; fail "debootstrap bookworm"; }
  # The same sources as Debian's official images: the release, its updates, security.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/cache/apt/*.bin
  tar --numeric-owner -C "$rootfs" -cf "$rootfs_tar.new" .
  mv "$rootfs_tar.new" "$rootfs_tar"
  rm -rf "$rootfs"
  echo "made: $rootfs_tar"
fi

step "base image $base_image (the root file system, imported)"
ctr=$(bah from --name ngayle-ci-base-work scratch)
mnt=$(bah mount "$ctr")
tar --numeric-owner -C "$mnt" -xf "$rootfs_tar"
bah umount "$ctr" >/dev/null
bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd bash --os linux --arch "$(dpkg --print-architecture)" "$ctr"
bah commit --quiet --rm "$ctr" "$base_image" >/dev/null
bah run --isolation chroot "$(bah from --pull=never --name ngayle-ci-check "$base_image")" -- \
  cat /etc/debian_version
bah rm ngayle-ci-check >/dev/null

step "builder image $rust_image (gcc from Debian, this machine's Rust toolchain)"
sysroot=$(rustc --print sysroot)
[[ -x $sysroot/bin/cargo && -x $sysroot/bin/rustc && $sysroot != /usr ]] ||
  fail "no rustup toolchain at $sysroot (bin/cargo, bin/rustc): install Rust with rustup"
echo "toolchain: $sysroot ($("$sysroot/bin/rustc" --version))"
ctr=$(bah from --pull=never --name ngayle-ci-rust-work "$base_image")
bah run --isolation chroot "$ctr" -- sh -c 'apt-get -qq update && DEBIAN_FRONTEND=noninteractive \
  apt-get -qq install -y --no-install-recommends gcc libc6-dev ca-certificates >/dev/null \
  && rm -rf /var/lib/apt/lists/*'
mnt=$(bah mount "$ctr")
mkdir -p "$mnt/usr/local/rust" "$mnt/usr/local/cargo"
# The documentation (share/) is most of a toolchain's size and not needed to build.
tar -C "$sysroot" --exclude=./share --exclude=./lib/rustlib/src -cf - . |
  tar -C "$mnt/usr/local/rust" -xf -
bah umount "$ctr" >/dev/null
# As in rust:1-bookworm: CARGO_HOME=/usr/local/cargo, cargo and rustc on PATH.
bah config --env CARGO_HOME=/usr/local/cargo \
  --env PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  "$ctr"
bah run --isolation chroot "$ctr" -- sh -c 'cargo --version && rustc --version'
bah commit --quiet --rm "$ctr" "$rust_image" >/dev/null

step "buildah bud -f deploy/Dockerfile (RUST_IMAGE=$rust_image, RUNTIME_IMAGE=$base_image)"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
if [[ ! -d $registry/cache ]]; then
  mkdir -p "$registry"
  if [[ -d $cargo_home/registry/cache ]]; then
    echo "seeding $registry from $cargo_home/registry"
    cp -a "$cargo_home/registry/cache" "$registry/"
    if [[ -d $cargo_home/registry/index ]]; then cp -a "$cargo_home/registry/index" "$registry/"; fi
  fi
fi
# --layers=false: with vfs every cached layer is a full copy of the file system; one commit
# per stage is enough here (the images are removed at the end anyway).
# The whole log in $work/build.log; here the steps and cargo's summary lines.
{
  rc=0
  nice -n 10 buildah "${storage[@]}" bud --isolation chroot --layers=false --pull=never \
    --build-arg RUST_IMAGE="$rust_image" --build-arg RUNTIME_IMAGE="$base_image" \
    --volume "$registry:/usr/local/cargo/registry" \
    -f deploy/Dockerfile -t "$app_image" . 2>&1 || rc=$?
  echo "$rc" >"$work/build.rc"
} | tee "$work/build.log" |
  grep --line-buffered -E 'STEP [0-9]|COMMIT|^(Error|error)|Finished|^ngayle ' || true
[[ $(cat "$work/build.rc") == 0 ]] || { tail -n 40 "$work/build.log" >&2; fail "buildah bud"; }
bah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$app_image"
ok "deploy/Dockerfile builds"

step "podman run $app_image (its entrypoint and command: ngayle serve)"
# Limits below the machine's hard ones: podman's defaults (1048576 open files) cannot be set
# where the runner lacks CAP_SYS_RESOURCE.
nofile=$(ulimit -Hn)
[[ $nofile == unlimited || $nofile -gt 4096 ]] && nofile=4096
version=$(pod run --rm --pull=never --ulimit "nofile=$nofile:$nofile" --ulimit nproc=1024:1024 \
  "$app_image" --version)
echo "$version"
[[ $version == ngayle\ * ]] || fail "ngayle --version in the image: $version"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pod run --detach --pull=never --name "$serve_name" --publish "127.0.0.1:$port:8080" \
  --ulimit "nofile=$nofile:$nofile" --ulimit nproc=1024:1024 "$app_image" >/dev/null
user=$(pod inspect --format '{{.Config.User}}' "$serve_name")
[[ $user == ngayle:ngayle ]] || fail "the container runs as '$user', not ngayle:ngayle"
code=
for _ in $(seq 1 60); do
  code=$(curl -s -o "$work/healthz" -w '%{http_code}' --max-time 2 \
    "http://127.0.0.1:$port/healthz" 2>/dev/null) || true
  [[ $code == 200 ]] && break
  [[ $(pod inspect --format '{{.State.Running}}' "$serve_name") == true ]] ||
    fail "the container stopped before answering"
  sleep 0.5
done
[[ $code == 200 ]] || fail "GET /healthz on 127.0.0.1:$port: status '$code' after 30 s"
grep -q '"status":"ok"' "$work/healthz" || fail "GET /healthz: not ok: $(cat "$work/healthz")"
ok "GET /healthz: 200 $(head -c 120 "$work/healthz")"
curl -fsS --max-time 10 -o "$work/calendar.ics" "http://127.0.0.1:$port/calendar.ics" ||
  fail "GET /calendar.ics"
head -n 1 "$work/calendar.ics" | grep -q $'^BEGIN:VCALENDAR\r$' || fail "/calendar.ics is not a calendar"
grep -q $'^END:VCALENDAR\r$' "$work/calendar.ics" || fail "/calendar.ics is cut short"
events=$(grep -c $'^BEGIN:VEVENT\r$' "$work/calendar.ics" || true)
((events > 0)) || fail "/calendar.ics has no events"
ok "GET /calendar.ics: a VCALENDAR with $events events"

step "SIGTERM: the server stops by itself"
pod kill --signal TERM "$serve_name" >/dev/null
status=$(timeout 30 podman "${podman_opts[@]}" wait "$serve_name") ||
  fail "still running 30 s after SIGTERM"
[[ $status == 0 ]] || fail "exit status $status after SIGTERM"
if pod logs "$serve_name" 2>&1 | grep -q 'panicked'; then
  pod logs "$serve_name" 2>&1 | tail -n 20 >&2
  fail "the log shows a panic"
fi
ok "exit status 0 after SIGTERM"
pod logs "$serve_name" 2>&1 | tail -n 3

step "clean up"
remove_all
