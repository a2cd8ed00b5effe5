#!/bin/sh
# Runs a command from a container image's root filesystem the way Kubernetes runs keelson's pod
# with the shipped securityContext: read-only root filesystem, writable /data and /tmp only,
# uid 10001, and the command as PID 1 of its own PID namespace (SIGTERM has no default action
# there). Start it as: unshare --mount --pid --fork run-readonly.sh ROOTFS DATA TMP CMD...
# (buildah run cannot do read-only roots; the mounts die with the mount namespace.)
set -eu
root="$1"; data="$2"; tmp="$3"; shift 3
mount --make-rprivate /
mount --bind "$root" "$root"
mount --bind "$data" "$root/data"
mount --bind "$tmp" "$root/tmp"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
mount -o remount,bind,ro "$root"
exec chroot --userspec=10001:10001 "$root" "$@"
