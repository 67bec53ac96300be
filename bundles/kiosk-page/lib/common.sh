# kiosk-page's shared shell functions (sourced by bin/*): POSIX sh, busybox or dash.

# The KIOSK_* overrides are the tests': under systemd (INVOCATION_ID set) they count only on a
# grade dangerous image (PID 1's environment can be set from the kernel command line; a root
# launcher must not run a program or read a command line it names).
if [ -n "${INVOCATION_ID:-}" ] && [ "${EDGE_GRADE:-}" != dangerous ]; then
  unset KIOSK_FB_SYS KIOSK_FB_DEV KIOSK_MODEL KIOSK_PORT KIOSK_RUN KIOSK_CMDLINE KIOSK_BROWSER KIOSK_WAIT \
    KIOSK_MIN_AGE KIOSK_MEMORY_AFTER KIOSK_CRASH_AFTER KIOSK_VERBOSE KIOSK_VT \
    KIOSK_PROC KIOSK_VT_GRACE
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

# vt_restore: the virtual terminals much as SDL leaves them when it exits: the foreground VT in
# text mode, its keyboard in Unicode mode, VT switching unlocked (SDL also restores the keyboard
# mode it saved and switches back to the VT it came from). SDL 1.2's fbcon driver sets its VT to
# graphics mode and locks VT switching (VT_LOCKSWITCH, for every VT) while it runs; a browser
# killed (SIGKILL, the OOM killer) leaves both behind. The kernel refuses a switch while switching
# is locked, and also away from a graphics-mode VT whose owner does not handle switches (VT_AUTO,
# SDL's) — so both are undone — and VT_ACTIVATE says nothing of the refusal: the next browser,
# handed another free VT by VT_OPENQRY, waits in VT_WAITACTIVE for ever, the screen black.
# perl-base (Essential in Debian, in every base) makes the calls, with a clean environment and by
# its full path: a root perl takes code from PERL5OPT, PERL5DB and PERL5LIB, which the kernel
# command line can put into a service's environment (systemd.setenv=). O_NOCTTY is only caution
# (perl is no session leader, and /dev/tty0 never becomes a controlling terminal). Root's
# CAP_SYS_TTY_CONFIG allows the three calls on a VT that is not its own. Returns 1 and says which
# step failed and why on stderr when $VT_DEV (/dev/tty0: the foreground VT) cannot be opened or set.
vt_restore() {
  env -i VT_DEV="$VT_DEV" /usr/bin/perl -MFcntl -e '
    use strict;
    my $dev = $ENV{VT_DEV};
    sysopen(my $t, $dev, O_RDWR | O_NOCTTY) or do { print STDERR "open $dev: $!\n"; exit 1 };
    ioctl($t, 0x4B3A, 0) or do { print STDERR "KDSETMODE KD_TEXT: $!\n"; exit 1 };
    ioctl($t, 0x4B45, 3) or do { print STDERR "KDSKBMODE K_UNICODE: $!\n"; exit 1 };
    ioctl($t, 0x560C, 0) or do { print STDERR "VT_UNLOCKSWITCH: $!\n"; exit 1 };
  '
}

# vt_waiting PID: PID's main thread waits for a VT to become the active one (SDL's VT_WAITACTIVE:
# its wchan is __vt_event_wait); a browser that does cannot draw. $KIOSK_PROC: tests only.
vt_waiting() {
  w=$(head -c 128 "${KIOSK_PROC:-/proc}/$1/wchan" 2>/dev/null) || return 1
  case "$w" in *vt_event_wait*|vt_waitactive*) VT_WCHAN=$w; return 0 ;; *) return 1 ;; esac
}
