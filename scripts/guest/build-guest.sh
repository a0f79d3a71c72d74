#!/usr/bin/env bash
# Builds the Blockwork test guest (kernel + busybox/fio initramfs) from Debian packages.
#
#   sudo bash scripts/guest/build-guest.sh
#
# Output goes to a cache outside the repo, keyed by the kernel package and version and by this
# script's own hash, so a second run is a no-op:
#   ${BLOCKWORK_GUEST_DIR:-/var/cache/blockwork-guest}/current/{vmlinuz,initrd.img,stamp}
# The only network use is Debian's apt mirror (apt-get download of the kernel .deb, and
# apt-get update when the package lists are empty). Nothing is installed on the host: the
# kernel is unpacked with dpkg -x. See docs/guest-vm.md.
set -euo pipefail
export LC_ALL=C

DIR=${BLOCKWORK_GUEST_DIR:-/var/cache/blockwork-guest}
WORK=
SELF=$(readlink -f "${BASH_SOURCE[0]}")
SCRIPT_HASH=
MODULES="virtio_pci virtio_blk virtio_net virtio_console qemu_fw_cfg nvme nvme-tcp nvmet nvmet-tcp brd null_blk vfio-pci crc32c_generic vfio_iommu_type1 9p 9pnet_virtio"

die() { echo "build-guest: $*" >&2; exit 1; }
log() { echo "build-guest: $*" >&2; }

# need COMMAND DEBIAN-PACKAGE
need() {
  command -v "$1" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1 ||
    die "'$1' not found: install it with 'apt-get install -y $2'"
}

check_tools() {
  need qemu-system-x86_64 qemu-system-x86
  need busybox busybox-static
  need depmod kmod
  need modprobe kmod
  need fio fio
  need dpkg dpkg
  need apt-get apt
  need ldd libc-bin
  need flock util-linux
  # The dynamic busybox package also ships /bin/busybox; the initramfs needs the static one.
  ldd "$(command -v busybox)" >/dev/null 2>&1 &&
    die "'$(command -v busybox)' is dynamically linked: install 'apt-get install -y busybox-static'"
  return 0
}

# Prints "PACKAGE VERSION" of the linux-image-6.1.*-amd64 that linux-image-amd64 depends on.
# apt-cache takes 1-3 s here (no binary cache), so the answer is remembered until the apt
# package lists change.
resolve_kernel() {
  local pkg ver sig s
  sig=$(stat -c '%n %Y %s' /var/lib/apt/lists/*Packages* 2>/dev/null | sha256sum | cut -c1-16)
  if [ -e "$DIR/resolved" ] && read -r s pkg ver <"$DIR/resolved" && [ "$s" = "$sig" ]; then
    echo "$pkg $ver"
    return 0
  fi
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-6\.1\.[^ ]*-amd64\)$/\1/p' | head -1)
  [ -n "$pkg" ] || return 1
  ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -1)
  [ -n "$ver" ] || return 1
  echo "$sig $pkg $ver" >"$DIR/resolved"
  echo "$pkg $ver"
}

print_result() {
  local d; d=$(readlink -f "$DIR/current")
  echo "kernel: $d/vmlinuz"
  echo "initrd: $d/initrd.img"
  echo "stamp:  $d/stamp"
}

# copy_with_libs ROOT BINARY: the binary and its ldd closure, at the same paths.
copy_with_libs() {
  local root=$1 bin=$2 lib
  install -D -m 0755 "$bin" "$root$bin"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# copy_modules KROOT KVER ROOT: modules and dependencies, load order written to ROOT/etc/modules.
copy_modules() {
  local kroot=$1 kver=$2 root=$3 m line ko rel
  : >"$root/etc/modules"
  for m in $MODULES; do
    modprobe -d "$kroot" -S "$kver" --show-depends "$m" >"$root/.deps" ||
      die "kernel $kver has no module '$m'"
    while read -r line; do
      case $line in
        insmod\ *) ko=${line#insmod }; ko=${ko%% *} ;;
        *) continue ;; # "builtin NAME": nothing to load
      esac
      rel=${ko#"$kroot"}
      if ! grep -qxF "$rel" "$root/etc/modules"; then
        install -D -m 0644 "$ko" "$root$rel"
        echo "$rel" >>"$root/etc/modules"
      fi
    done <"$root/.deps"
  done
  rm -f "$root/.deps"
}

write_init() {
  local root=$1
  cat >"$root/init" <<'EOF'
#!/bin/busybox sh
# Blockwork test guest init: run the script passed as fw_cfg opt/test/cmd, frame its stdout
# on ttyS1 with the exit code, power off.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/sbin:/usr/sbin HOME=/root LC_ALL=C
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run /root
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /dev/shm
mount -t configfs configfs /sys/kernel/config 2>/dev/null
while read -r ko; do insmod "$ko" 2>/dev/null; done </etc/modules
ip link set lo up 2>/dev/null
CMD=/sys/firmware/qemu_fw_cfg/by_name/opt/test/cmd/raw
i=0
while [ ! -e $CMD ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
stty -F /dev/ttyS1 raw -echo 2>/dev/null
if [ -e $CMD ]; then
  cat $CMD >/tmp/cmd.sh
  echo "blockwork-guest: running the script, stdout on ttyS1" >/dev/console
  (
    printf '\n@@BLOCKWORK-BEGIN@@\n'
    cd / && sh /tmp/cmd.sh </dev/null
    printf '\n@@BLOCKWORK-END %d@@\n' $?
  ) >/dev/ttyS1
else
  echo "blockwork-guest: no command in $CMD" >/dev/console
  printf '\n@@BLOCKWORK-BEGIN@@\n\n@@BLOCKWORK-END 255@@\n' >/dev/ttyS1
fi
sync
poweroff -f
EOF
  chmod 0755 "$root/init"
}

build() {
  local kpkg=$1 kver_deb=$2 key=$3 kroot kver root deb
  mkdir -p "$DIR/debs"
  deb=$(ls "$DIR/debs/${kpkg}_${kver_deb//:/%3a}_amd64.deb" 2>/dev/null || true)
  if [ -z "$deb" ]; then
    log "downloading $kpkg $kver_deb"
    (cd "$DIR/debs" && apt-get download -q -o APT::Sandbox::User=root "$kpkg=$kver_deb") || die "apt-get download $kpkg failed"
    deb=$(ls "$DIR/debs/${kpkg}_"*"_amd64.deb" | head -1)
  fi
  WORK=$(mktemp -d "$DIR/tmp.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  local work=$WORK
  kroot=$work/kernel
  root=$work/root
  dpkg -x "$deb" "$kroot"
  kver=${kpkg#linux-image-}
  [ -d "$kroot/lib/modules/$kver" ] || die "$deb has no lib/modules/$kver"
  depmod -b "$kroot" "$kver"
  mkdir -p "$work/out" "$root"/{bin,dev,etc,proc,sys,tmp,run,root,usr/bin,sbin,usr/sbin}
  cp "$kroot/boot/vmlinuz-$kver" "$work/out/vmlinuz"
  install -m 0755 "$(command -v busybox)" "$root/bin/busybox"
  copy_modules "$kroot" "$kver" "$root"
  copy_with_libs "$root" "$(readlink -f "$(command -v fio)")"
  [ -e "$root/usr/bin/fio" ] || ln -s "$(readlink -f "$(command -v fio)")" "$root/usr/bin/fio"
  write_init "$root"
  (cd "$root" && find . -mindepth 1 | sort | busybox cpio -o -H newc >"$work/out/initrd.img" 2>/dev/null)
  {
    echo "kernel_package=$kpkg"
    echo "kernel_version=$kver_deb"
    echo "kernel_release=$kver"
    echo "script_hash=$SCRIPT_HASH"
    echo "fio=$(fio --version)"
    echo "modules=$MODULES"
  } >"$work/out/stamp"
  rm -rf "$DIR/$key"
  mv "$work/out" "$DIR/$key"
  ln -sfn "$key" "$DIR/current.new" && mv -T "$DIR/current.new" "$DIR/current"
  # Older builds (another kernel or another version of this script) are dead weight.
  find "$DIR" -mindepth 1 -maxdepth 1 -type d ! -name debs ! -name "$key" ! -name "$(basename "$work")" \
    -exec rm -rf {} +
  find "$DIR/debs" -name '*.deb' ! -name "$(basename "$deb")" -delete
  log "built $DIR/$key ($(du -h "$DIR/$key/initrd.img" | cut -f1) initrd)"
}

main() {
  check_tools
  SCRIPT_HASH=$(sha256sum "$SELF" | cut -c1-16)
  [ "$(id -u)" = 0 ] || [ -w "$DIR" ] || [ -w "$(dirname "$DIR")" ] ||
    die "cannot write $DIR: run as root or set BLOCKWORK_GUEST_DIR"
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock 9 # concurrent test processes wait for one build
  local kpkg kver_deb key
  if ! read -r kpkg kver_deb < <(resolve_kernel); then
    log "apt package lists have no linux-image-amd64: running apt-get update"
    if ! apt-get update -q >&2 || ! read -r kpkg kver_deb < <(resolve_kernel); then
      [ -e "$DIR/current/stamp" ] || die "cannot resolve linux-image-amd64 (apt-get update failed?)"
      log "cannot resolve linux-image-amd64, keeping the cached guest"
      print_result
      return 0
    fi
  fi
  key="${kpkg#linux-image-}_${kver_deb//[:~]/_}_$SCRIPT_HASH"
  if [ -e "$DIR/$key/stamp" ]; then
    [ "$(readlink "$DIR/current" 2>/dev/null)" = "$key" ] || ln -sfn "$key" "$DIR/current"
  else
    build "$kpkg" "$kver_deb" "$key"
  fi
  print_result
}

main "$@"
