# The writable paths of a read-only base (POSIX sh, busybox; part of the initramfs /init, which
# defines say, fail and edge_bind SRC DST = mount --bind).
#
# edge_writable_paths ROOT DATA: reads ROOT/etc/edgeimage/writable-paths (the base's list: one line
# `PATH MODE` each, MODE persistent or synced) and binds, for each PATH, its data copy DATA/PATH
# over ROOT/PATH. A data copy that does not exist yet is made first: `synced`, a copy of the base's
# item (cp -a, made under a temporary name and renamed: a power cut leaves no half copy in use);
# `persistent`, an empty item of the base item's type, owner and mode. No list: nothing is bound.
#
# The list comes from the (verified) base but is still read as data: bounded (64 KiB, 256 lines),
# each PATH absolute, of [A-Za-z0-9._/-] only, without `.`/`..` components or `//`, not `/` and
# not under /writable, /run, /proc, /sys or /dev (the data itself, the initramfs's /run and the
# kernel's filesystems); a bad line fails the boot, naming it. DATA is system-data, writable by
# whatever runs on the device, so nothing found there is trusted: a component of a data path that
# is a symbolic link (a link would send the copy and the bind elsewhere) or an item of another type
# than the base's is removed (said on the console) and the copy made again. A base item that is a
# symbolic link, or missing, or neither a file nor a folder, is left as it is with a say line (a
# bind would follow the link into the initramfs's root).
EDGE_WP_MAX_LINES=256
EDGE_WP_MAX_BYTES=65536

# edge_wp_type PATH: dir, file, link, none or other (never follows a link)
edge_wp_type() {
  if [ -L "$1" ]; then echo link
  elif [ -d "$1" ]; then echo dir
  elif [ -f "$1" ]; then echo file
  elif [ -e "$1" ]; then echo other
  else echo none
  fi
}

# edge_wp_check_line N LINE: sets wp_path and wp_mode, or fails the boot naming the line
edge_wp_check_line() {
  _wl_bad() { fail "$EDGE_WP_LIST line $1: \"$(echo "$2" | head -c 120)\": $3"; }
  case "$2" in
    *"	"*) _wl_bad "$1" "$2" "a tab; expected PATH MODE separated by one space" ;;
    *" "*" "*) _wl_bad "$1" "$2" "more than two fields; expected PATH MODE" ;;
    *" "*) ;;
    *) _wl_bad "$1" "$2" "expected PATH MODE (MODE persistent or synced)" ;;
  esac
  wp_path=${2% *}
  wp_mode=${2#* }
  case "$wp_mode" in persistent|synced) ;; *) _wl_bad "$1" "$2" "mode \"$wp_mode\"; expected persistent or synced" ;; esac
  case "$wp_path" in
    /) _wl_bad "$1" "$2" "the root itself cannot be a writable path" ;;
    /*) ;;
    *) _wl_bad "$1" "$2" "the path is not absolute" ;;
  esac
  case "$wp_path" in *[!A-Za-z0-9._/-]*) _wl_bad "$1" "$2" "the path has a character other than A-Z a-z 0-9 . _ / -" ;; esac
  case "$wp_path/" in *//*|*/./*|*/../*) _wl_bad "$1" "$2" "the path has an empty, . or .. component" ;; esac
  case "$wp_path" in
    /writable|/writable/*|/run|/run/*|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) _wl_bad "$1" "$2" "the path is under /writable, /run, /proc, /sys or /dev" ;;
  esac
  # the kernel's modules come from the verified kernel bundle only: no data copy over them or
  # over a folder that holds them
  case "$wp_path" in
    /usr|/usr/lib|/usr/lib/modules|/usr/lib/modules/*|/lib|/lib/modules|/lib/modules/*) _wl_bad "$1" "$2" "the path is or holds /usr/lib/modules (the kernel bundle's modules are never writable)" ;;
  esac
  [ "${#wp_path}" -le 1024 ] || _wl_bad "$1" "$2" "the path is longer than 1024 characters"
}

# edge_wp_clean DATA PATH: every existing component of DATA/PATH below DATA that is a symbolic
# link (planted on system-data), and every one above the last that is not a folder, is removed;
# DATA itself must be a folder
edge_wp_clean() {
  _wc_at=$1
  _wc_rest=${2#/}
  while [ -n "$_wc_rest" ]; do
    _wc_part=${_wc_rest%%/*}
    case "$_wc_rest" in */*) _wc_rest=${_wc_rest#*/} ;; *) _wc_rest= ;; esac
    _wc_at=$_wc_at/$_wc_part
    if [ -L "$_wc_at" ]; then
      say "writable path $2: the data copy $_wc_at is a symbolic link (to $(readlink "$_wc_at" | head -c 120)): removed, made again"
      rm -f "$_wc_at" || fail "cannot remove the symbolic link $_wc_at"
    fi
    [ -e "$_wc_at" ] || return 0
    # a folder above the copy that is not a folder (a file planted at system-data/etc) would fail
    # every boot of both slots at mkdir: removed as a link is
    if [ -n "$_wc_rest" ] && [ ! -d "$_wc_at" ]; then
      say "writable path $2: $_wc_at on system-data is not a folder: removed, made again"
      rm -f "$_wc_at" || fail "cannot remove $_wc_at"
      return 0
    fi
  done
}

# edge_wp_base_links ROOT PATH: succeeds when a folder above PATH in ROOT is a symbolic link
edge_wp_base_links() {
  _wb_at=$1
  _wb_rest=${2#/}
  while :; do
    case "$_wb_rest" in */*) ;; *) return 1 ;; esac
    _wb_at=$_wb_at/${_wb_rest%%/*}
    _wb_rest=${_wb_rest#*/}
    [ -L "$_wb_at" ] && return 0
  done
}

edge_writable_paths() {
  _wp_root=$1
  _wp_data=$2
  EDGE_WP_LIST=/etc/edgeimage/writable-paths
  _wp_list=$_wp_root$EDGE_WP_LIST
  case "$(edge_wp_type "$_wp_list")" in
    none) say "the base has no $EDGE_WP_LIST: no writable paths"; return 0 ;;
    file) ;;
    *) fail "$EDGE_WP_LIST of the base is not a regular file" ;;
  esac
  _wp_size=$(stat -c %s "$_wp_list") || fail "cannot read $EDGE_WP_LIST of the base"
  [ "$_wp_size" -le "$EDGE_WP_MAX_BYTES" ] || fail "$EDGE_WP_LIST of the base is $_wp_size bytes, more than $EDGE_WP_MAX_BYTES"
  # every line checked before anything is made or bound
  _wp_n=0
  while IFS= read -r _wp_line || [ -n "$_wp_line" ]; do
    _wp_n=$((_wp_n + 1))
    [ "$_wp_n" -le "$EDGE_WP_MAX_LINES" ] || fail "$EDGE_WP_LIST of the base has more than $EDGE_WP_MAX_LINES lines"
    [ -n "$_wp_line" ] || continue
    edge_wp_check_line "$_wp_n" "$_wp_line"
  done < "$_wp_list"
  if [ -L "$_wp_data" ]; then
    say "the data folder $_wp_data is a symbolic link: removed, made again"
    rm -f "$_wp_data" || fail "cannot remove the symbolic link $_wp_data"
  fi
  mkdir -p "$_wp_data" || fail "cannot create $_wp_data"
  [ -d "$_wp_data" ] && [ ! -L "$_wp_data" ] || fail "$_wp_data is not a folder"
  _wp_bound=0
  while IFS= read -r _wp_line || [ -n "$_wp_line" ]; do
    [ -n "$_wp_line" ] || continue
    wp_path=${_wp_line% *}
    wp_mode=${_wp_line#* }
    _wp_base=$_wp_root$wp_path
    _wp_copy=$_wp_data$wp_path
    if edge_wp_base_links "$_wp_root" "$wp_path"; then
      say "writable path $wp_path: a folder above it in the base is a symbolic link: not made writable"
      continue
    fi
    _wp_type=$(edge_wp_type "$_wp_base")
    case "$_wp_type" in
      dir|file) ;;
      link) say "writable path $wp_path is a symbolic link in the base: not made writable (a bind would follow it)"; continue ;;
      none) say "writable path $wp_path is not in the base: not made writable (nothing to bind over)"; continue ;;
      *) say "writable path $wp_path is neither a file nor a folder in the base: not made writable"; continue ;;
    esac
    edge_wp_clean "$_wp_data" "$wp_path"
    _wp_have=$(edge_wp_type "$_wp_copy")
    if [ "$_wp_have" != none ] && [ "$_wp_have" != "$_wp_type" ]; then
      say "writable path $wp_path: the data copy is a $_wp_have, the base's item a $_wp_type: removed, made again"
      rm -rf "$_wp_copy" || fail "cannot remove $_wp_copy"
      _wp_have=none
    fi
    if [ "$_wp_have" = none ]; then
      mkdir -p "${_wp_copy%/*}" || fail "cannot create the folder of $_wp_copy"
      _wp_tmp=$_wp_copy.edgeimage-new
      rm -rf "$_wp_tmp"
      if [ "$wp_mode" = synced ]; then
        cp -a "$_wp_base" "$_wp_tmp" || fail "cannot copy $wp_path of the base to $_wp_copy"
      else
        if [ "$_wp_type" = dir ]; then mkdir "$_wp_tmp"; else : > "$_wp_tmp"; fi || fail "cannot create $_wp_copy"
        chown "$(stat -c %u:%g "$_wp_base")" "$_wp_tmp" && chmod "$(stat -c %a "$_wp_base")" "$_wp_tmp" || fail "cannot give $_wp_copy the owner and mode of $wp_path"
      fi
      sync
      mv "$_wp_tmp" "$_wp_copy" || fail "cannot rename $_wp_tmp to $_wp_copy"
      say "writable path $wp_path: data copy made ($wp_mode)"
    fi
    # /etc/machine-id: the device's identity is made here, once, on system-data. Left empty,
    # systemd makes one and writes it but then fsyncs its folder, which a squashfs /etc refuses
    # ("Failed to write /etc/machine-id: Invalid argument" on every first boot). 32 lowercase hex
    # digits from the kernel's random UUID, as systemd-machine-id-setup writes it.
    if [ "$wp_path" = /etc/machine-id ] && [ "$_wp_type" = file ] && [ ! -s "$_wp_copy" ]; then
      _wp_id=$(tr -d '-' < /proc/sys/kernel/random/uuid)
      case "$_wp_id" in ????????????????????????????????) ;; *) fail "the kernel gave no random UUID for /etc/machine-id (found \"$_wp_id\")" ;; esac
      case "$_wp_id" in *[!0-9a-f]*) fail "the kernel gave no random UUID for /etc/machine-id (found \"$_wp_id\")" ;; esac
      # the temporary name is on system-data too: whatever was planted there (a link out of it, a
      # FIFO that would hang the boot, a folder) goes first; the mode is the verified base's
      rm -rf "$_wp_copy.edgeimage-new" || fail "cannot remove $_wp_copy.edgeimage-new"
      echo "$_wp_id" > "$_wp_copy.edgeimage-new" && chmod "$(stat -c %a "$_wp_base")" "$_wp_copy.edgeimage-new" && sync && mv "$_wp_copy.edgeimage-new" "$_wp_copy" || fail "cannot write the machine id to $_wp_copy"
      say "writable path /etc/machine-id: machine id made"
    fi
    # nothing else runs now, but the last word is the check right before the bind
    [ "$(edge_wp_type "$_wp_copy")" = "$_wp_type" ] || fail "writable path $wp_path: the data copy $_wp_copy is not a $_wp_type"
    edge_bind "$_wp_copy" "$_wp_base" || fail "cannot bind $_wp_copy over $wp_path"
    _wp_bound=$((_wp_bound + 1))
  done < "$_wp_list"
  say "$_wp_bound writable path(s) bound from system-data"
}
