# The reading of a channel pointer a device must do, in busybox sh (README: "How the device must read it").
# A reference for the agent, run by pointer.test.ts over every pointer the parser refuses, signed as a
# leaked key would: nothing the TS parser refuses may be read here. Prints "OK ..." or "REFUSED why", exit 1.
# Arguments: DIR (pointer, pointer.sig, key.pem), BUSYBOX_BIN (applets first on PATH), BRAND MODEL CHANNEL NOW INSTALLED LAST_SEQUENCE.
set -eu
export PATH="$2:$PATH"
cd "$1"
brand=$3 model=$4 channel=$5 now=$6 installed=$7 lastseq=$8
no() { echo "REFUSED $*"; exit 1; }
s=$(wc -c < pointer); [ "$s" -le 16384 ] || no size
s=$(wc -c < pointer.sig); [ "$s" -ge 1 ] && [ "$s" -le 1024 ] || no signature size
openssl dgst -sha256 -verify key.pem -signature pointer.sig pointer >/dev/null 2>&1 || no signature
[ "$(tr -d ' -~\n' < pointer | wc -c)" -eq 0 ] || no bytes
[ "$(tail -c 1 pointer | od -An -tx1 | tr -d ' \n')" = 0a ] || no final newline
re() { printf '%s\n' "$1" | grep -qxE "$2"; }
get() { val=$(sed -n "$1p" pointer); case "$val" in "$2: "*) val=${val#"$2: "} ;; *) no "line $1: $2" ;; esac; }
num() { re "$1" '0|[1-9][0-9]{0,15}' && { [ ${#1} -lt 16 ] || ! [ "$1" \> 9007199254740991 ]; }; }
[ "$(sed -n 1p pointer)" = 'edgeimage-pointer: 1' ] || no line 1: format
get 2 brand-id; [ "$val" = "$brand" ] || no brand-id
get 3 model; [ "$val" = "$model" ] || no model
get 4 channel; [ "$val" = "$channel" ] || no channel
get 5 revision; num "$val" || no revision; rev=$val
get 6 sequence; num "$val" || no sequence; seq=$val
get 7 expires; exp=$val
re "$exp" '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z' || no expires
[ "$(date -u -D '%Y-%m-%dT%H:%M:%SZ' -d "$exp" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)" = "$exp" ] || no expires: not a real time
get 8 rollout; re "$val" '0|[1-9][0-9]?|100' || no rollout; rollout=$val
get 9 sign-key-sha3-384; re "$val" '[A-Za-z0-9_-]{64}' || no sign-key-sha3-384
n=$(wc -l < pointer); [ "$n" -ge 10 ] && [ "$n" -le 73 ] || no update count
seg='[A-Za-z0-9_][A-Za-z0-9._+-]*'
! sed -n '10,$p' pointer | grep -qvxE "update: (full|0|[1-9][0-9]{0,15}) [0-9a-f]{64} [1-9][0-9]{0,12} $seg(/$seg)*" || no update line
sed -n '10,$p' pointer > updates
i=10 prev=-1
while read -r _ from sha size path; do
  case "$path" in *..*) no "line $i: path with .." ;; esac
  [ ${#path} -le 255 ] || no "line $i: path length"
  [ ${#size} -lt 13 ] || ! [ "$size" \> 1099511627776 ] || no "line $i: size"
  if [ $i -eq 10 ]; then [ "$from" = full ] || no "line $i: not the full update"
  else [ "$from" != full ] && [ "$from" -gt "$prev" ] && [ "$from" -lt "$rev" ] || no "line $i: from"; prev=$from; fi
  i=$((i + 1))
done < updates
[ "$exp" \> "$now" ] || no expired
[ "$rev" -ge "$installed" ] || no rollback: revision
[ "$seq" -ge "$lastseq" ] || no replay: sequence
echo "OK revision=$rev sequence=$seq rollout=$rollout"
