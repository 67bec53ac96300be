# edgeimage: U-Boot boot script of the A/B gadgets (/boot.scr on system-boot, compiled by
# bundles/bootloader/build-assets with mkimage -T script). U-Boot's distro_bootcmd finds it on the
# first partition and runs it with devtype, devnum and distro_bootpart set.
#
# The same A/B state machine as GRUB's grub.cfg, on the same redundant files: four 1024-byte GRUB
# environment blocks under EFI/edgeimage/, as bundles/bootloader/README.md "The boot environment"
# specifies them (the contract of both bootloaders, the device's bootenv and the host's
# packages/composer/src/bootenv). No prompt, no menu: every failure ends in a reset.
## Template notes (lines starting with ## are left out of the outputs): two variants, boot.scr for
## images of grade signed and secured, boot.scr.dangerous for grade dangerous, which alone reads the
## test hook edge_kargs from the boot environment: lines starting with @D@ and the fields
## @KARGS_VAR@ (the variable name) and @KARGS@ (its value on the kernel command line) exist only
## there. The composer installs the variant of the model's grade.

# Where the script was found (defaults for a manual `source`).
if test -z "${devtype}"; then setenv devtype virtio; fi
if test -z "${devnum}"; then setenv devnum 0; fi
if test -z "${distro_bootpart}"; then setenv distro_bootpart 1; fi
setenv ei_boot "${devtype} ${devnum}:${distro_bootpart}"
setenv ei_dir EFI/edgeimage

# Scratch memory for the environment blocks: a template, a read buffer, a write buffer (4 KiB
# apart; qemu_arm64's pxefile_addr_r is free while this script runs).
if test -n "${pxefile_addr_r}"; then setenv ei_tmpl ${pxefile_addr_r}; else setexpr ei_tmpl ${scriptaddr} + 0x100000; fi
setexpr ei_buf ${ei_tmpl} + 0x1000
setexpr ei_out ${ei_tmpl} + 0x2000

# The template: an empty GRUB environment block, "# GRUB Environment Block\n" (25 bytes) and '#'
# padding to 1024 bytes. The header is written as little-endian words:
# "# GR" "UB E" "nvir" "onme" "nt B" "lock" "\n".
mw.b ${ei_tmpl} 0x23 0x400
mw.l ${ei_tmpl} 0x52472023
setexpr ei_a ${ei_tmpl} + 0x04; mw.l ${ei_a} 0x45204255
setexpr ei_a ${ei_tmpl} + 0x08; mw.l ${ei_a} 0x7269766e
setexpr ei_a ${ei_tmpl} + 0x0c; mw.l ${ei_a} 0x656d6e6f
setexpr ei_a ${ei_tmpl} + 0x10; mw.l ${ei_a} 0x4220746e
setexpr ei_a ${ei_tmpl} + 0x14; mw.l ${ei_a} 0x6b636f6c
setexpr ei_a ${ei_tmpl} + 0x18; mw.b ${ei_a} 0x0a

# ei_valid: is the file just loaded into ei_buf a GRUB environment block (1024 bytes, the header)?
# As GRUB's load_env, which refuses a bad size or header. Sets ei_ok to 1 or 0.
setenv ei_valid 'setenv ei_ok 0; if test "${filesize}" = 400 && cmp.b ${ei_buf} ${ei_tmpl} 0x19; then setenv ei_ok 1; fi'

# --- Reading. Defaults first: U-Boot has no empty variables, and `env import` sets only what the
# block holds (an empty value in the block deletes the variable, which is the same thing here).
setenv edge_slot a
setenv edge_try_slot
setenv edge_status
setenv edge_failed_slot
@D@# extra kernel arguments from the environment (e.g. edge.crash=POINT for power-cut tests)
@D@setenv edge_kargs
# env1 unless lock1 says editing=1 (a write of env1 was cut off) or env1 is not a valid block;
# else env2. A lock that cannot be read does not say editing=1.
setenv editing 0
if load ${ei_boot} ${ei_buf} ${ei_dir}/env1/lock; then run ei_valid; if test ${ei_ok} = 1; then env import -t ${ei_buf} 0x400 editing; fi; fi
setenv ei_from env2
if test "${editing}" != 1; then
  if load ${ei_boot} ${ei_buf} ${ei_dir}/env1/env; then run ei_valid; if test ${ei_ok} = 1; then setenv ei_from env1; fi; fi
fi
if test ${ei_from} = env2; then
  if load ${ei_boot} ${ei_buf} ${ei_dir}/env2/env; then run ei_valid; else setenv ei_ok 0; fi
fi
if test ${ei_ok} = 1; then
  env import -t ${ei_buf} 0x400 edge_slot edge_try_slot edge_status edge_failed_slot@KARGS_VAR@
else
  echo "edgeimage-uboot: no readable boot environment: booting slot a"
fi

# --- Writing. ei_put writes ${ei_vars} as a GRUB environment block to ${ei_file}: the template,
# `env export -t` of the variables just after the header (key=value lines, sorted; variables that
# are empty are left out, which a reader takes as empty), the NUL that export writes after the
# last line turned back into '#' padding, then the whole 1024 bytes with fatwrite.
setenv ei_put 'cp.b ${ei_tmpl} ${ei_out} 0x400; setexpr ei_a ${ei_out} + 0x19; env export -t ${ei_a} ${ei_vars}; setexpr ei_a ${ei_a} + ${filesize}; setexpr ei_a ${ei_a} - 1; mw.b ${ei_a} 0x23; fatwrite ${ei_boot} ${ei_out} ${ei_file} 0x400 || setenv ei_saved 0'
setenv ei_lock 'setenv editing ${ei_editing}; setenv ei_vars editing; run ei_put'
setenv ei_env 'setenv ei_vars edge_failed_slot@KARGS_VAR@ edge_slot edge_status edge_try_slot; run ei_put'
# The redundant protocol, in this order, so that a power cut at any step leaves one complete copy
# the reader picks: lock1 editing=1, env1, lock1 editing=0, lock2 editing=1, env2, lock2
# editing=0. ei_saved ends up 0 if any step failed.
setenv ei_save 'setenv ei_saved 1; setenv ei_file ${ei_dir}/env1/lock; setenv ei_editing 1; run ei_lock; setenv ei_file ${ei_dir}/env1/env; run ei_env; setenv ei_file ${ei_dir}/env1/lock; setenv ei_editing 0; run ei_lock; setenv ei_file ${ei_dir}/env2/lock; setenv ei_editing 1; run ei_lock; setenv ei_file ${ei_dir}/env2/env; run ei_env; setenv ei_file ${ei_dir}/env2/lock; setenv ei_editing 0; run ei_lock'

# Garbage guard: a slot is a or b; anything else is taken as a.
if test "${edge_slot}" != b; then setenv edge_slot a; fi

# --- The state machine.
setenv ei_slot ${edge_slot}
if test "${edge_status}" = try; then
  # An update asked to try the other slot: record that the try has started, then boot it. If the
  # try slot never reports success, the next boot sees "trying" and rolls back.
  if test "${edge_try_slot}" != b; then setenv edge_try_slot a; fi
  setenv edge_status trying
  run ei_save
  if test ${ei_saved} = 1; then
    setenv ei_slot ${edge_try_slot}
    setenv ei_why "status try: trying slot ${edge_try_slot}, known-good slot ${edge_slot}"
  else
    # Booting the try slot without having recorded "trying" would retry it forever, with no
    # rollback: stay on the known-good slot instead.
    setenv ei_why "status try, but the boot environment cannot be saved: not trying slot ${edge_try_slot}"
  fi
elif test "${edge_status}" = trying; then
  # The try boot never reported success (the device commits by clearing the status): roll back.
  if test "${edge_try_slot}" != b; then setenv edge_try_slot a; fi
  setenv edge_failed_slot ${edge_try_slot}
  setenv edge_status
  setenv edge_try_slot
  run ei_save
  setenv ei_why "status trying: rollback, slot ${edge_failed_slot} failed"
else
  # Empty (or an unknown value): boot the known-good slot, change nothing.
  setenv ei_why "status empty"
fi

# --- The slot: the ext4 filesystem labelled system-<slot> among partitions 1-9 of the disk this
# script came from, whatever their order (the gadget may put others first); never another disk.
# U-Boot has no command that reads a filesystem label, so the superblock is read raw: the first
# 8 blocks of each partition into scratch memory, the ext4 magic (0xef53 at byte 1024 + 0x38) and
# the volume name (1024 + 0x78: "system-a" or "system-b", NUL-terminated) compared as words.
# Partitions 1-9 only: `part start` takes a decimal number, the partition of `load` a hex one,
# and they agree up to 9. The gadget rules keep the slots there (packages/gadget/src/rules/roles.ts);
# the composer and edge-update label them system-a and system-b.
if test ${ei_slot} = b; then setenv ei_want 622d6d65; else setenv ei_want 612d6d65; fi
setexpr ei_sb ${ei_tmpl} + 0x10000
setenv ei_part
for ei_p in 1 2 3 4 5 6 7 8 9; do
  if test -z "${ei_part}" && part start ${devtype} ${devnum} ${ei_p} ei_start; then
    if ${devtype} read ${ei_sb} ${ei_start} 8; then
      setexpr ei_a ${ei_sb} + 0x438; setexpr.w ei_magic *${ei_a}
      setexpr ei_a ${ei_sb} + 0x478; setexpr.l ei_w0 *${ei_a}
      setexpr ei_a ${ei_sb} + 0x47c; setexpr.l ei_w1 *${ei_a}
      setexpr ei_a ${ei_sb} + 0x480; setexpr.b ei_w2 *${ei_a}
      if test "${ei_magic}" = ef53 && test "${ei_w0}" = 74737973 && test "${ei_w1}" = ${ei_want} && test "${ei_w2}" = 0; then
        setenv ei_part ${ei_p}
      fi
    fi
  fi
done
setenv ei_slotdev "${devtype} ${devnum}:${ei_part}"
# loglevel=6 keeps the console short (no info messages) but shows the kernel's notices, among them
# its command line. panic=5: a kernel that cannot go on reboots, so a bad try reaches the rollback.
# The partition this script came from, as Linux's PARTUUID has it (MBR: <disk id>-<partition
# number>; GPT: its unique GUID; lower case): the device looks for its slots and system-data only
# on the disk that holds it, never on a second disk that happens to carry the same names.
setenv ei_bootpart
part uuid ${ei_boot} ei_bootpart
# edgeimage.slot comes first, from the bootloader alone: the device takes its first occurrence.
setenv bootargs "console=ttyAMA0 edgeimage.slot=${ei_slot} edgeimage.bootpart=${ei_bootpart} panic=5 loglevel=6@KARGS@"

echo "edgeimage-uboot: booting slot ${ei_slot} (${ei_why})"
if test -z "${ei_part}"; then
  echo "edgeimage-uboot: FAILED: no ext4 partition labelled system-${ei_slot} among partitions 1-9 of ${devtype} ${devnum}"
elif load ${ei_slotdev} ${kernel_addr_r} boot/kernel.img; then
  # A compressed (gzip) Image is unpacked by booti through kernel_comp_addr_r; Debian 12's arm64
  # vmlinuz is not compressed, but a kernel bundle may be. 0x50000000 is above the kernel and the
  # initrd, below U-Boot at the top of qemu_arm64's 512 MiB.
  if test -z "${kernel_comp_addr_r}"; then setenv kernel_comp_addr_r 0x50000000; fi
  setenv kernel_comp_size ${filesize}
  if test -e ${ei_slotdev} boot/initrd.img; then
    if load ${ei_slotdev} ${ramdisk_addr_r} boot/initrd.img; then
      booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
      echo "edgeimage-uboot: FAILED: the kernel of slot ${ei_slot} did not start"
    else
      echo "edgeimage-uboot: FAILED: cannot load the initrd of slot ${ei_slot}"
    fi
  else
    booti ${kernel_addr_r} - ${fdtcontroladdr}
    echo "edgeimage-uboot: FAILED: the kernel of slot ${ei_slot} did not start"
  fi
else
  echo "edgeimage-uboot: FAILED: cannot load the kernel of slot ${ei_slot}"
fi

# Never sit at a prompt: reset, and let the state machine decide again.
echo "edgeimage-uboot: resetting in 3 s"
sleep 3
reset
