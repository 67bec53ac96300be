# kiosk-page's shared shell functions (sourced by bin/*): POSIX sh, busybox or dash.

# The KIOSK_* overrides are the tests': under systemd (INVOCATION_ID set) they count only on a
# grade dangerous image (PID 1's environment can be set from the kernel command line; a root
# launcher must not run a program or read a command line it names).
if [ -n "${INVOCATION_ID:-}" ] && [ "${EDGE_GRADE:-}" != dangerous ]; then
  unset KIOSK_FB_SYS KIOSK_FB_DEV KIOSK_MODEL KIOSK_PORT KIOSK_RUN KIOSK_CMDLINE KIOSK_BROWSER KIOSK_WAIT \
    KIOSK_MIN_AGE KIOSK_MEMORY_AFTER KIOSK_CRASH_AFTER KIOSK_VERBOSE KIOSK_VT
fi
# KIOSK_FB_SYS, KIOSK_FB_DEV, KIOSK_MODEL, KIOSK_PORT, KIOSK_VT: tests only (the device's paths and
# port by default; a test run on a host never touches the host's consoles).
FB_SYS=${KIOSK_FB_SYS:-/sys/class/graphics/fb0}
FB_DEV=${KIOSK_FB_DEV:-/dev/fb0}
VT_DEV=${KIOSK_VT:-/dev/tty0}
MODEL_ASSERT=${KIOSK_MODEL:-/run/edgeimage/slot/model.assert}
PORT=${KIOSK_PORT:-8080}
URL=http://127.0.0.1:$PORT/
VERSION=${SNAP_VERSION:-unknown}

# model_revision: the revision header of the running slot's model assertion (none: 0, as the
# agent's edge-update reads it), or "unknown" when the file cannot be read
model_revision() {
  [ -r "$MODEL_ASSERT" ] || { echo unknown; return; }
  # (the headers only, 64 KiB at most; a revision of more than 10 digits is no revision shown)
  r=$(head -c 65536 "$MODEL_ASSERT" | sed -n '/^$/q; s/^revision: //p' | head -n 1)
  case "$r" in '') echo 0 ;; *[!0-9]*) echo unknown ;; ???????????*) echo unknown ;; *) echo "$r" ;; esac
}

# fb_geometry SECONDS: sets FB_W FB_H FB_BPP from the framebuffer's sysfs, waiting up to SECONDS
# for it (the display driver may load after the services start); returns 1 without one
fb_geometry() {
  i=0
  while [ ! -r "$FB_SYS/virtual_size" ]; do
    [ "$i" -lt "$(($1 * 2))" ] || return 1
    sleep 0.5
    i=$((i + 1))
  done
  size=$(head -c 64 "$FB_SYS/virtual_size")
  FB_W=${size%%,*}
  FB_H=${size#*,}
  FB_BPP=$(head -c 16 "$FB_SYS/bits_per_pixel" 2>/dev/null)
  case "$FB_W$FB_H" in ''|*[!0-9]*) return 1 ;; esac
  case "$FB_BPP" in 8|16|24|32) ;; *) FB_BPP=32 ;; esac
  [ "$FB_W" -gt 0 ] && [ "$FB_H" -gt 0 ]
}

# page_answers: the page answers on 127.0.0.1 within 3 s and is kiosk-page's (coreutils' timeout:
# Debian bookworm's busybox 1.35 wget crashes on its own -T)
page_answers() {
  # (at most 64 KiB looked at: whatever answers there, a root process reads it)
  timeout 3 busybox wget -q -O - "$URL" 2>/dev/null | head -c 65536 | grep -q 'name="generator" content="kiosk-page'
}

# fb_blank: zeros over the whole framebuffer (stride × height, else width × height × depth): a
# restarted browser's screen is its own, never the last frame of the one that died
fb_blank() {
  # (|| true: the launcher runs under set -e, and a framebuffer without stride is no error)
  stride=$(head -c 16 "$FB_SYS/stride" 2>/dev/null || true)
  case "$stride" in ''|*[!0-9]*) stride=$((FB_W * FB_BPP / 8)) ;; esac
  bytes=$((stride * FB_H))
  { head -c "$bytes" /dev/zero > "$FB_DEV"; } 2>/dev/null || true
}

# vt_restore: the virtual terminals as SDL leaves them when it exits: the foreground VT in text
# mode, its keyboard in Unicode mode, switching unlocked. SDL 1.2's fbcon driver sets its VT to
# graphics mode and locks VT switching (VT_LOCKSWITCH, for every VT) while it runs; a browser
# killed (SIGKILL, the OOM killer) leaves both behind, and the next browser, given another free VT
# by VT_OPENQRY, asks to switch to it and waits in VT_WAITACTIVE for ever: the screen stays black.
# (perl-base: Essential in Debian, in every base. O_NOCTTY: the launcher is its service's session
# leader and must not take the VT as its controlling terminal. Root's CAP_SYS_TTY_CONFIG allows
# all three on a VT that is not its own.) Returns 1 when $VT_DEV (/dev/tty0: the foreground VT)
# cannot be opened or set.
vt_restore() {
  VT_DEV=$VT_DEV perl -MFcntl -e '
    sysopen(my $t, $ENV{VT_DEV}, O_RDWR | O_NOCTTY) or exit 1;
    ioctl($t, 0x4B3A, 0) or exit 1;   # KDSETMODE KD_TEXT
    ioctl($t, 0x4B45, 3) or exit 1;   # KDSKBMODE K_UNICODE
    ioctl($t, 0x560C, 0) or exit 1;   # VT_UNLOCKSWITCH
  ' 2>/dev/null
}
