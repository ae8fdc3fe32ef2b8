#!/usr/bin/env bash
# Runs a command beside a CPU hog: CAS_HOG_PROCESSES (default 2) pure CPU loops that keep that many
# cores busy for as long as the command runs, to check that the tests survive a loaded machine.
#
#   scripts/with-cpu-hog.sh npm test
#
# The hogs are killed when the command ends, fails, or the script is interrupted (Ctrl-C, SIGTERM,
# SIGHUP; the signal is passed on to the command). The script exits with the command's exit code
# (128 + signal number when interrupted) and prints the command's wall time.
set -u

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/with-cpu-hog.sh <command> [args...]   (e.g. scripts/with-cpu-hog.sh npm test)" >&2
  exit 2
fi

hog_count="${CAS_HOG_PROCESSES:-2}"
hog_pids=()
command_pid=''

stop_hogs() {
  if [ "${#hog_pids[@]}" -gt 0 ]; then
    kill "${hog_pids[@]}" 2>/dev/null
    wait "${hog_pids[@]}" 2>/dev/null
    hog_pids=()
  fi
}

# Passes the signal on to the command, waits for it to finish, then exits (the EXIT trap stops the hogs).
on_signal() {
  local signal="$1" code="$2"
  if [ -n "$command_pid" ]; then
    kill -s "$signal" "$command_pid" 2>/dev/null
    wait "$command_pid" 2>/dev/null
  fi
  exit "$code"
}

trap stop_hogs EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

for _ in $(seq 1 "$hog_count"); do
  bash -c 'while :; do :; done' &
  hog_pids+=("$!")
done
echo "[cpu-hog] ${hog_count} busy processes (pids ${hog_pids[*]}) beside: $*" >&2

started=$(date +%s)
# Started in the background so that a signal to this script runs its trap at once (bash defers
# traps while a foreground command runs). A background job of a script ignores SIGINT and reads
# /dev/null unless told otherwise: restore both, so Ctrl-C and an interactive command still work.
( trap - INT QUIT; exec "$@" ) <&0 &
command_pid=$!
wait "$command_pid"
status=$?
command_pid=''
echo "[cpu-hog] exit code ${status} after $(( $(date +%s) - started )) s" >&2
exit "$status"
