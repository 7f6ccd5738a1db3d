#!/usr/bin/env bash
# Runs a command the way the tests must run: in a network namespace with only loopback up (nothing
# a test starts can reach another address) and a PID namespace of its own, so that afterwards any
# process a test left running is found, named, and the run fails. Needs root (or unprivileged user
# namespaces); elsewhere it runs the command on the host with a warning.
set -uo pipefail
if [ "${IVR_SANDBOXED:-}" != 1 ]; then
  if [ "$(id -u)" -eq 0 ] && unshare -n -p -f --mount-proc true 2>/dev/null; then
    exec unshare -n -p -f --mount-proc env IVR_SANDBOXED=1 "$0" "$@"
  fi
  if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
    echo "sandbox: warning: no PID namespace here; processes left behind are not checked" >&2
    exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
  fi
  echo "sandbox: warning: cannot create network and PID namespaces (needs root); running on the host" >&2
  exec "$@"
fi
ip link set lo up
"$@"
rc=$?
# PID 1 is this shell; anything else alive (not a zombie, not this ps) was left behind.
sleep 1
list=$(mktemp)
ps -eo pid=,stat=,comm=,args= > "$list"
left=$(awk '$1 != 1 && $2 !~ /^Z/ && $3 != "ps"' "$list")
rm -f "$list"
if [ -n "$left" ]; then
  echo "sandbox: error: processes left running after the tests:" >&2
  echo "$left" >&2
  kill -9 -1 2>/dev/null
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
