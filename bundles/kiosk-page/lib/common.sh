# kiosk-page's shared shell functions (sourced by bin/*): POSIX sh, busybox or dash.

# The KIOSK_* overrides are the tests': under systemd (INVOCATION_ID set) they count only on a
# grade dangerous image (PID 1's environment can be set from the kernel command line; a root
# launcher must not run a program or read a command line it names).
if [ -n "${INVOCATION_ID:-}" ] && [ "${EDGE_GRADE:-}" != dangerous ]; then
  unset KIOSK_FB_SYS KIOSK_FB_DEV KIOSK_MODEL KIOSK_PORT KIOSK_RUN KIOSK_CMDLINE KIOSK_BROWSER KIOSK_WAIT \
    KIOSK_MIN_AGE KIOSK_MEMORY_AFTER KIOSK_CRASH_AFTER KIOSK_VERBOSE KIOSK_VT \
    KIOSK_PROC KIOSK_VT_GRACE KIOSK_CRASH_LIMIT
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

# fb_stride: sets FB_STRIDE, the framebuffer's bytes per row (its sysfs stride, else width ×
# depth); after fb_geometry. (A stride with a leading zero or of more than 6 digits is no
# framebuffer's: the fallback, so that a read of "one row" stays a few KiB.)
fb_stride() {
  # (|| true: the launcher runs under set -e, and a framebuffer without stride is no error)
  FB_STRIDE=$(head -c 16 "$FB_SYS/stride" 2>/dev/null || true)
  case "$FB_STRIDE" in ''|*[!0-9]*|0*|???????*) FB_STRIDE=$((FB_W * FB_BPP / 8)) ;; esac
}

# fb_blank: zeros over the whole framebuffer (stride × height): a restarted browser's screen is
# its own, never the last frame of the one that died
fb_blank() {
  fb_stride
  { head -c "$((FB_STRIDE * FB_H))" /dev/zero > "$FB_DEV"; } 2>/dev/null || true
}

# page_colour: the page's colour, $SNAP/page/colour (#RRGGBB), on stdout; returns 1 and says what
# is wrong on stderr when it cannot be read or is no such colour
page_colour() {
  [ -r "$SNAP/page/colour" ] || { echo "$SNAP/page/colour: cannot be read" >&2; return 1; }
  _pc=$(head -c 16 "$SNAP/page/colour" | head -n 1)
  case "$_pc" in \#[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]) echo "$_pc" ;;
    *) echo "$SNAP/page/colour: expected #RRGGBB, found '$_pc'" >&2; return 1 ;; esac
}

# fb_shows #RRGGBB: the pixel at the centre of the page's coloured top half (row H/4, column W/2
# of the framebuffer, read from its start: its virtual size is the screen's and it is not panned,
# on both boards) has that colour, within ±8 on each channel, as the tests' screenshots count it.
# 32 bpp only (XRGB8888, little-endian: the DRM drivers' fbdev emulation on both boards); at other
# depths it never does. What it reads is the fbdev buffer, which the DRM driver copies to the
# screen up to 50 ms later (deferred I/O). One row read, four processes: the hook calls it every
# second on a one-CPU guest that is drawing the page. After fb_stride.
fb_shows() {
  [ "$FB_BPP" = 32 ] || return 1
  _fs_want=${1#\#}
  case "$_fs_want" in [0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]) ;; *) return 1 ;; esac
  _fs_r=${_fs_want%????}
  _fs_b=${_fs_want#????}
  _fs_g=${_fs_want#??}
  _fs_g=${_fs_g%??}
  # (od -tu1 prints decimal digits and spaces only, no leading zeros: blue, green, red, unused)
  set -- $(dd if="$FB_DEV" bs="$FB_STRIDE" skip="$((FB_H / 4))" count=1 2>/dev/null | od -An -v -tu1 -j "$((FB_W / 2 * 4))" -N 4)
  [ "$#" -eq 4 ] || return 1
  for _fs_d in $(($3 - 0x$_fs_r)) $(($2 - 0x$_fs_g)) $(($1 - 0x$_fs_b)); do
    [ "$_fs_d" -le 8 ] && [ "$_fs_d" -ge -8 ] || return 1
  done
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
