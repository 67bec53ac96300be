# edgeimage: U-Boot boot script of the A/B gadgets (/boot.scr on system-boot, compiled by
# bundles/bootloader/build-assets with mkimage -T script). U-Boot's distro_bootcmd finds it on the
# first partition and runs it with devtype, devnum and distro_bootpart set. In a verified image the
# script is in the board's flash instead (bootcmd sources it), and boots only the slot's signed FIT.
#
# The same A/B state machine as GRUB's grub.cfg, on the same redundant files: four 1024-byte GRUB
# environment blocks under EFI/edgeimage/, as bundles/bootloader/README.md "The boot environment"
# specifies them (the contract of both bootloaders, the device's bootenv and the host's
# packages/composer/src/bootenv). No prompt, no menu: every failure ends in a reset.
## Template notes (lines starting with ## are left out of the outputs): four variants
## (bundles/bootloader/README.md "Variants"), by boot chain and model grade: boot.scr (plain,
## grades signed and secured), boot.scr.dangerous (plain, grade dangerous), boot.cmd.verified and
## boot.cmd.verified.dangerous (the flash script of a verified image). Only the dangerous ones read
## the test hook edge_kargs: lines starting with @D@ and the fields @KARGS_VAR@ (the variable
## name) and @KARGS@ (its value on the kernel command line) exist only there. Lines starting with
## @P@ exist only in the plain variants, @V@ only in the verified ones.

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
setenv edge_boot_count
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
# Only the named variables are imported: a block that says bootcmd=... or verify=no changes nothing.
# ei_read: 1 when a copy was read (else nothing is counted and nothing written).
setenv ei_read ${ei_ok}
if test ${ei_ok} = 1; then
  env import -t ${ei_buf} 0x400 edge_slot edge_try_slot edge_status edge_failed_slot edge_boot_count@KARGS_VAR@
else
  echo "edgeimage-uboot: no readable boot environment: booting slot a"
fi

# --- Writing. ei_put writes ${ei_vars} as a GRUB environment block to ${ei_file}: the template,
# `env export -t` of the variables just after the header (key=value lines, sorted; variables that
# are empty are left out, which a reader takes as empty), the NUL that export writes after the
# last line turned back into '#' padding, then the whole 1024 bytes with fatwrite.
setenv ei_put 'cp.b ${ei_tmpl} ${ei_out} 0x400; setexpr ei_a ${ei_out} + 0x19; env export -t ${ei_a} ${ei_vars}; setexpr ei_a ${ei_a} + ${filesize}; setexpr ei_a ${ei_a} - 1; mw.b ${ei_a} 0x23; fatwrite ${ei_boot} ${ei_out} ${ei_file} 0x400 || setenv ei_saved 0'
setenv ei_lock 'setenv editing ${ei_editing}; setenv ei_vars editing; run ei_put'
setenv ei_env 'setenv ei_vars edge_boot_count edge_failed_slot@KARGS_VAR@ edge_slot edge_status edge_try_slot; run ei_put'
# The redundant protocol, in this order, so that a power cut at any step leaves one complete copy
# the reader picks: lock1 editing=1, env1, lock1 editing=0, lock2 editing=1, env2, lock2
# editing=0. ei_saved ends up 0 if any step failed, or if no copy could be read (nothing is
# written then).
setenv ei_save 'setenv ei_saved 0; if test ${ei_read} = 1; then setenv ei_saved 1; setenv ei_file ${ei_dir}/env1/lock; setenv ei_editing 1; run ei_lock; setenv ei_file ${ei_dir}/env1/env; run ei_env; setenv ei_file ${ei_dir}/env1/lock; setenv ei_editing 0; run ei_lock; setenv ei_file ${ei_dir}/env2/lock; setenv ei_editing 1; run ei_lock; setenv ei_file ${ei_dir}/env2/env; run ei_env; setenv ei_file ${ei_dir}/env2/lock; setenv ei_editing 0; run ei_lock; fi'

# Garbage guard: a slot is a or b; anything else is taken as a.
if test "${edge_slot}" != b; then setenv edge_slot a; fi
setenv ei_set_other 'if test "${edge_slot}" = b; then setenv ei_other a; else setenv ei_other b; fi'
run ei_set_other

# ei_leave (ei_how: what the slot did): the known-good slot edge_slot has failed; leave it for the
# other one, unless the other one has failed too (edge_failed_slot names it): then ei_slot is
# empty, and edge_boot_count stays exhausted, so every later start powers off at once as well.
setenv ei_leave 'if test "${edge_failed_slot}" = ${ei_other}; then setenv ei_slot; setenv ei_why "slot ${edge_slot} ${ei_how}, slot ${ei_other} failed before"; if test "${edge_boot_count}" != 3; then setenv edge_boot_count 3; run ei_save; fi; else setenv edge_failed_slot ${edge_slot}; setenv edge_slot ${ei_other}; run ei_set_other; setenv edge_boot_count 1; run ei_save; setenv ei_slot ${edge_slot}; setenv ei_why "slot ${edge_failed_slot} ${ei_how}: leaving it for slot ${edge_slot}"; fi'

# --- The state machine. ei_trying=1 while the slot to boot is a try.
setenv ei_slot ${edge_slot}
setenv ei_trying 0
if test "${edge_status}" = try; then
  # An update asked to try the other slot: record that the try has started, then boot it. If the
  # try slot never reports success, the next boot sees "trying" and rolls back.
  if test "${edge_try_slot}" != b; then setenv edge_try_slot a; fi
  setenv edge_status trying
  run ei_save
  if test ${ei_saved} = 1; then
    setenv ei_slot ${edge_try_slot}
    setenv ei_trying 1
    setenv ei_why "status try: trying slot ${edge_try_slot}, known-good slot ${edge_slot}"
  else
    # Booting the try slot without having recorded "trying" would retry it forever, with no
    # rollback: stay on the known-good slot instead.
    setenv ei_why "status try, but the boot environment cannot be saved: not trying slot ${edge_try_slot}"
  fi
elif test "${edge_status}" = trying; then
  # The try boot never reported success (the device commits by clearing the status): roll back.
  # This boot of the known-good slot is the first one the health check has not confirmed yet.
  if test "${edge_try_slot}" != b; then setenv edge_try_slot a; fi
  setenv edge_failed_slot ${edge_try_slot}
  setenv edge_status
  setenv edge_try_slot
  setenv edge_boot_count 1
  run ei_save
  setenv ei_why "status trying: rollback, slot ${edge_failed_slot} failed"
elif test ${ei_read} != 1; then
  setenv ei_why "no readable environment: not counted"
else
  # Empty (or an unknown value): boot the known-good slot, counting the boots the health check
  # has not confirmed (it clears edge_boot_count once healthy). Enumerated, not arithmetic (setexpr
  # counts in hex): a value that is not 1 or 2 counts as exhausted, never as fresh.
  setenv ei_why "status empty"
  if test -z "${edge_boot_count}"; then
    setenv edge_boot_count 1
  elif test "${edge_boot_count}" = 1; then
    setenv edge_boot_count 2
  elif test "${edge_boot_count}" = 2; then
    setenv edge_boot_count 3
  else
    setenv ei_how "failed 3 boots"
    run ei_leave
  fi
  if test "${ei_why}" = "status empty"; then
    run ei_save
    if test ${ei_saved} != 1; then echo "edgeimage-uboot: the boot count cannot be saved"; fi
    echo "edgeimage-uboot: boot ${edge_boot_count} of 3 of slot ${edge_slot} without a healthy one"
  fi
fi

# The partition this script came from, as Linux's PARTUUID has it (MBR: <disk id>-<partition
# number>; GPT: its unique GUID; lower case): the device looks for its slots and system-data only
# on the disk that holds it, never on a second disk that happens to carry the same names.
setenv ei_bootpart
part uuid ${ei_boot} ei_bootpart
setexpr ei_sb ${ei_tmpl} + 0x10000
@V@# Where the slot's FIT is loaded: above the kernel's and the initrd's load addresses, below U-Boot
@V@# at the top of qemu_arm64's 512 MiB.
@V@setenv ei_fit 0x48000000

# A slot that fails here (nothing to load, or refused) is failed at once, in this run: a try rolls
# back to the known-good slot, the known-good slot is left for the other one (ei_leave). At most
# three attempts: a try, the known-good slot, the other slot. Never the refused file again.
for ei_attempt in 1 2 3; do
  if test -n "${ei_slot}"; then
    # --- The slot: the ext4 filesystem labelled system-<slot> among partitions 1-9 of the disk
    # this script came from, whatever their order (the gadget may put others first); never another
    # disk. U-Boot has no command that reads a filesystem label, so the superblock is read raw: the
    # first 8 blocks of each partition into scratch memory, the ext4 magic (0xef53 at byte 1024 +
    # 0x38) and the volume name (1024 + 0x78: "system-a" or "system-b", NUL-terminated) compared
    # as words. Partitions 1-9 only: `part start` takes a decimal number, the partition of `load`
    # a hex one, and they agree up to 9. The gadget rules keep the slots there
    # (packages/gadget/src/rules/roles.ts); the composer and edge-update label them.
    if test ${ei_slot} = b; then setenv ei_want 622d6d65; else setenv ei_want 612d6d65; fi
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
    # edgeimage.slot comes first, from the bootloader alone: the device takes its first occurrence.
    # loglevel=6 keeps the console short (no info messages) but shows the kernel's notices, among
    # them its command line. panic=5: a kernel that cannot go on reboots, so a bad try reaches the
    # rollback.
    setenv bootargs "console=ttyAMA0 edgeimage.slot=${ei_slot} edgeimage.bootpart=${ei_bootpart} panic=5 loglevel=6@KARGS@"
    echo "edgeimage-uboot: booting slot ${ei_slot} (${ei_why})"
    if test -z "${ei_part}"; then
      echo "edgeimage-uboot: FAILED: no ext4 partition labelled system-${ei_slot} among partitions 1-9 of ${devtype} ${devnum}"
@P@    elif load ${ei_slotdev} ${kernel_addr_r} boot/kernel.img; then
@P@      # A compressed (gzip) Image is unpacked by booti through kernel_comp_addr_r; Debian 12's
@P@      # arm64 vmlinuz is not compressed, but a kernel bundle may be. 0x50000000 is above the
@P@      # kernel and the initrd, below U-Boot at the top of qemu_arm64's 512 MiB.
@P@      if test -z "${kernel_comp_addr_r}"; then setenv kernel_comp_addr_r 0x50000000; fi
@P@      setenv kernel_comp_size ${filesize}
@P@      if test -e ${ei_slotdev} boot/initrd.img; then
@P@        if load ${ei_slotdev} ${ramdisk_addr_r} boot/initrd.img; then
@P@          booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
@P@          echo "edgeimage-uboot: FAILED: the kernel of slot ${ei_slot} did not start"
@P@        else
@P@          echo "edgeimage-uboot: FAILED: cannot load the initrd of slot ${ei_slot}"
@P@        fi
@P@      else
@P@        booti ${kernel_addr_r} - ${fdtcontroladdr}
@P@        echo "edgeimage-uboot: FAILED: the kernel of slot ${ei_slot} did not start"
@P@      fi
@P@    else
@P@      echo "edgeimage-uboot: FAILED: cannot load the kernel of slot ${ei_slot}"
@V@    elif load ${ei_slotdev} ${ei_fit} boot/boot.itb; then
@V@      # bootm also boots legacy uImages, which carry no signature: only a FIT (an FDT, magic
@V@      # d00dfeed) goes to bootm, which checks the signed configuration against the key in
@V@      # U-Boot's control device tree before it runs anything.
@V@      setexpr.l ei_magic *${ei_fit}
@V@      if test "${ei_magic}" = edfe0dd0; then
@V@        bootm ${ei_fit}#conf-1
@V@        echo "edgeimage-uboot: FAILED: the boot payload of slot ${ei_slot} does not verify or did not start"
@V@      else
@V@        echo "edgeimage-uboot: FAILED: boot/boot.itb of slot ${ei_slot} is not a FIT image"
@V@      fi
@V@    else
@V@      echo "edgeimage-uboot: FAILED: cannot load boot/boot.itb of slot ${ei_slot}"
    fi
    if test ${ei_trying} = 1; then
      setenv ei_trying 0
      setenv edge_failed_slot ${edge_try_slot}
      setenv edge_status
      setenv edge_try_slot
      setenv edge_boot_count 1
      run ei_save
      setenv ei_slot ${edge_slot}
      setenv ei_why "rollback, slot ${edge_failed_slot} failed to load"
    else
      setenv ei_how "failed to load"
      run ei_leave
    fi
  fi
done

if test -z "${ei_slot}"; then
  # Both slots have failed: nothing is left that may run. Power off rather than loop.
  echo "edgeimage-uboot: ${ei_why}"
  echo "edgeimage-uboot: FAILED: no bootable slot: powering off"
  poweroff
fi
# Never sit at a prompt: reset, and let the state machine decide again.
echo "edgeimage-uboot: resetting in 3 s"
sleep 3
reset
