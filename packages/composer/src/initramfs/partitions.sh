# Partition lookup on the boot disk, shared by the initramfs /init (embedded in it) and the device
# agent's tools (/run/edgeimage/agent/lib/edgeimage/partitions, sourced by common). busybox sh, no
# udev: the kernel shows PARTNAME in /sys/class/block/*/uevent but no PARTUUID, and busybox has no
# blkid, so partition UUIDs and filesystem labels are read from the disks themselves (dd + od).
#
# The boot disk is the disk of the partition whose PARTUUID the bootloader put on the kernel command
# line (edgeimage.bootpart=, the FIRST occurrence: the bootloader's): the system-boot it was loaded
# from. system-a, system-b and system-data are looked for on that disk only, so a second disk that
# carries the same names is never booted, mounted, grown or written. Without edgeimage.bootpart (a
# direct kernel boot, which has no bootloader to say) every disk is searched and a name must be
# unique across all of them: a second disk with the same names is then a failure, never a guess
# (virtio and SCSI disks are all probed by the time their driver's module is loaded; a disk that
# shows up later, such as a USB stick, is not waited for).
#
# The functions set variables and return a status (callers in the initramfs must not run them in
# $(...), whose failure message would vanish); on failure part_err says what and why.

# edge_cmdline_arg KEY: prints the value of the first KEY=... word of /proc/cmdline; 1 when none
edge_cmdline_arg() {
  read -r _ec_line < /proc/cmdline || return 1
  set -f
  for _ec_w in $_ec_line; do
    case "$_ec_w" in "$1="*) set +f; echo "${_ec_w#"$1="}"; return 0 ;; esac
  done
  set +f
  return 1
}

# edge_bootpart: sets bootpart to the lower-case value of edgeimage.bootpart (empty when absent)
edge_bootpart() {
  bootpart=
  _eb_v=$(edge_cmdline_arg edgeimage.bootpart) || return 0
  bootpart=$(echo "$_eb_v" | tr A-F a-f)
  _h='[0-9a-f]'
  case "$bootpart" in
    $_h$_h$_h$_h$_h$_h$_h$_h-$_h$_h) return 0 ;;
    $_h$_h$_h$_h$_h$_h$_h$_h-$_h$_h$_h$_h-$_h$_h$_h$_h-$_h$_h$_h$_h-$_h$_h$_h$_h$_h$_h$_h$_h$_h$_h$_h$_h) return 0 ;;
  esac
  part_err="edgeimage.bootpart=$(echo "$_eb_v" | head -c 80) is not a partition UUID (GPT: 8-4-4-4-12 hex digits; MBR: 8-2)"
  return 1
}

# edge_disk_parts DISK: prints "PARTITION PARTUUID GPT-NAME" for each partition of /dev/DISK, from
# its table: PARTUUID as Linux derives it (MBR: the disk signature at bytes 440-443 and the
# partition number; GPT: the unique GUID of the partition's entry), the name from the GPT entry
# (ASCII; any other character shows as ?), empty on MBR. A disk with neither table prints nothing.
# The table, not uevent's PARTNAME, so that the UUID and the name come from one entry.
edge_disk_parts() {
  _ep_ss=$(cat "/sys/class/block/$1/queue/logical_block_size" 2>/dev/null)
  case "$_ep_ss" in 512|1024|2048|4096) ;; *) return 0 ;; esac
  # bytes 440-511 of sector 0: signature, four entries, 55 aa
  set -- "$1" $(dd if="/dev/$1" bs="$_ep_ss" count=1 2>/dev/null | od -An -tx1 -v -j 440 -N 72)
  [ $# -eq 73 ] && [ "${72}${73}" = 55aa ] || return 0
  _ep_disk=$1
  _ep_mbrid=$5$4$3$2
  # an entry of type 0xee (GPT's protective MBR) makes it a GPT disk, as Linux has it
  _ep_gpt=
  if [ "${12}" = ee ] || [ "${28}" = ee ] || [ "${44}" = ee ] || [ "${60}" = ee ]; then
    # the GPT header (LBA 1): "EFI PART", the entry array's LBA (64 bits at 72), its entry count (80)
    # and entry size (84)
    set -- $(dd if="/dev/$_ep_disk" bs="$_ep_ss" skip=1 count=1 2>/dev/null | od -An -tu4 -v -N 88)
    [ $# -eq 22 ] && [ "$1" = 541673029 ] && [ "$2" = 1414676816 ] && [ "${20}" = 0 ] || return 0
    _ep_lba=${19}
    _ep_count=${21}
    _ep_esize=${22}
    case "$_ep_esize" in 128|256|512|1024) ;; *) return 0 ;; esac
    [ "$_ep_count" -le 1024 ] && [ "$_ep_lba" -le 1048576 ] && [ $((_ep_lba * _ep_ss % _ep_esize)) -eq 0 ] || return 0
    _ep_gpt=1
  fi
  for _ep_p in /sys/class/block/"$_ep_disk"/*/partition; do
    [ -r "$_ep_p" ] || continue
    _ep_n=$(cat "$_ep_p")
    _ep_name=${_ep_p%/partition}
    _ep_name=${_ep_name##*/}
    case "$_ep_n" in ''|*[!0-9]*) continue ;; esac
    if [ -z "$_ep_gpt" ]; then
      [ "$_ep_n" -le 255 ] || continue
      echo "$_ep_name $_ep_mbrid-$(printf %02x "$_ep_n") "
      continue
    fi
    [ "$_ep_n" -ge 1 ] && [ "$_ep_n" -le "$_ep_count" ] || continue
    dd if="/dev/$_ep_disk" bs="$_ep_esize" skip=$((_ep_lba * _ep_ss / _ep_esize + _ep_n - 1)) count=1 2>/dev/null > /tmp/edge-part.$$ || continue
    set -- $(od -An -tx1 -v -j 16 -N 16 /tmp/edge-part.$$)
    [ $# -eq 16 ] || continue
    # the name: UTF-16LE at 56, up to 36 code units, NUL ended
    _ep_pn=$(od -An -tu2 -v -j 56 -N 72 /tmp/edge-part.$$ | awk '{ for (i = 1; i <= NF; i++) { if ($i == 0) exit; printf "%c", ($i < 32 || $i > 126) ? "?" : $i } }')
    echo "$_ep_name $4$3$2$1-$6$5-$8$7-$9${10}-${11}${12}${13}${14}${15}${16} $_ep_pn"
  done
  rm -f /tmp/edge-part.$$
}

# edge_boot_disk: sets boot_disk (e.g. vda) and boot_part (e.g. vda1) from edgeimage.bootpart;
# both empty when the argument is absent. Fails when the argument is no partition UUID, or when no
# partition or several have that UUID (then which disk to trust is unclear).
edge_boot_disk() {
  boot_disk=
  boot_part=
  edge_bootpart || return 1
  [ -n "$bootpart" ] || return 0
  _ebd_found=
  for _ebd_d in /sys/block/*; do
    _ebd_d=${_ebd_d##*/}
    ls /sys/class/block/"$_ebd_d"/*/partition >/dev/null 2>&1 || continue
    _ebd_m=$(edge_disk_parts "$_ebd_d" | while read -r _p _u _n; do [ "$_u" = "$bootpart" ] && echo "$_p"; done)
    for _p in $_ebd_m; do _ebd_found="$_ebd_found /dev/$_p"; boot_disk=$_ebd_d; boot_part=$_p; done
  done
  set -- $_ebd_found
  [ $# -eq 1 ] && return 0
  boot_disk=
  boot_part=
  if [ $# -eq 0 ]; then
    part_err="no partition has PARTUUID $bootpart (edgeimage.bootpart, the system-boot the bootloader started from): which disk to boot from is unclear"
  else
    part_err="several partitions have PARTUUID $bootpart (edgeimage.bootpart):$_ebd_found: which disk to trust is unclear"
  fi
  return 1
}

# edge_fs_label DEV: prints "ext4 LABEL" or "vfat LABEL" for DEV's filesystem label. The type goes
# with it because the two compare differently: an ext4 label exactly, as GRUB and U-Boot do; FAT
# stores labels upper case, so there only the upper-case form of a name counts. The ext4 label ends
# at its first NUL (not with NULs deleted, which would make "system\0-a" read as system-a); FAT
# pads with spaces.
edge_fs_label() {
  # ext4: magic 0xef53 at 1080, the label (16 bytes, NUL padded) at 1144
  if [ "$(dd if="$1" bs=8 skip=135 count=1 2>/dev/null | od -An -tx1 -N 2 | tr -d ' ')" = 53ef ]; then
    printf 'ext4 %s\n' "$(dd if="$1" bs=8 skip=143 count=2 2>/dev/null | tr '\000' '\n' | head -n 1)"
  elif [ "$(dd if="$1" bs=1 skip=82 count=5 2>/dev/null)" = FAT32 ]; then
    printf 'vfat %s\n' "$(dd if="$1" bs=1 skip=71 count=11 2>/dev/null | sed 's/ *$//')"
  elif [ "$(dd if="$1" bs=1 skip=54 count=3 2>/dev/null)" = FAT ]; then
    printf 'vfat %s\n' "$(dd if="$1" bs=1 skip=43 count=11 2>/dev/null | sed 's/ *$//')"
  fi
}

# edge_find_part NAME: sets part_dev (/dev/...) to the one partition of the boot disk with the GPT
# name NAME or the filesystem label NAME (MBR has no names), compared exactly: the bootloaders
# (GRUB, U-Boot) find a slot by the same bytes, so "system-a " or SYSTEM-A on ext4 is another name,
# not this one. Only a FAT label (system-boot without edgeimage.bootpart, on MBR) is upper case.
# Without edgeimage.bootpart: among all partitions. Fails (part_err) when none or several match,
# or the boot disk cannot be told (see edge_boot_disk).
edge_find_part() {
  part_dev=
  [ -n "$boot_disk" ] || edge_boot_disk || return 1
  if [ -n "$boot_disk" ]; then
    _efp_where="on the boot disk /dev/$boot_disk"
    _efp_disks=$boot_disk
  else
    _efp_where="on any disk (no edgeimage.bootpart on the kernel command line)"
    _efp_disks=$(for _d in /sys/block/*; do ls "$_d"/*/partition >/dev/null 2>&1 && echo "${_d##*/}"; done)
  fi
  # a partition counts when its GPT name or its filesystem's label is NAME: a label on another
  # partition of a GPT disk makes the name as ambiguous as a second partition name does
  _efp_upper=$(echo "$1" | tr a-z A-Z)
  # IFS= read: a plain read would trim the name's leading and trailing spaces
  _efp_found=$(for _d in $_efp_disks; do edge_disk_parts "$_d"; done | while IFS= read -r _l; do
    _p=${_l%% *}
    _l=${_l#* }
    _n=${_l#* }
    if [ "$_n" = "$1" ]; then printf ' /dev/%s' "$_p"; continue; fi
    _l=$(edge_fs_label "/dev/$_p")
    [ "$_l" = "ext4 $1" ] || [ "$_l" = "vfat $_efp_upper" ] && printf ' /dev/%s' "$_p"
  done)
  set -- "$1" $_efp_found
  if [ $# -eq 2 ]; then part_dev=$2; return 0; fi
  if [ $# -eq 1 ]; then
    part_err="no partition with the GPT name or filesystem label $1 $_efp_where"
  else
    part_err="several partitions with the GPT name or filesystem label $1 $_efp_where:$_efp_found: which to use is unclear"
  fi
  return 1
}
