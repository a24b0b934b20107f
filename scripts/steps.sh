# Step timing for .ci/run and the scripts it calls (sourced, not run).
#
#   step NAME         ends the step before (if any) and starts NAME; prints a header
#   step_end          ends the current step
#   steps_table       prints every step so far: wall time, share of the total, result
#
# Every script that sources this file appends its steps to one file, $STREAMHUB_STEPS
# (exported; made on first use), so the table .ci/run prints at its end holds the steps
# of scripts/test.sh, scripts/install-test-deps.sh and scripts/fuzz.sh too. A step still
# open when the script exits is ended by the EXIT trap of `steps_trap` and marked
# FAILED when the exit status is not 0.

if [ -z "${STREAMHUB_STEPS:-}" ]; then
  STREAMHUB_STEPS=$(mktemp "${TMPDIR:-/tmp}/streamhub-steps.XXXXXX")
  export STREAMHUB_STEPS
fi
_step_name=""
_step_start=""

step() {
  step_end
  _step_name="$*"
  _step_start=$EPOCHREALTIME
  echo
  echo "=== $* ($(date +%T))"
}

# step_end [RESULT]: records the current step (RESULT defaults to ok).
step_end() {
  [ -n "$_step_name" ] || return 0
  printf '%s\t%s\t%s\t%s\n' "$_step_start" "$EPOCHREALTIME" "${1:-ok}" "$_step_name" >>"$STREAMHUB_STEPS"
  _step_name=""
}

# steps_trap: on exit, ends an open step (FAILED unless the status is 0).
steps_trap() {
  trap '_steps_status=$?; [ $_steps_status -eq 0 ] && step_end ok || step_end FAILED; exit $_steps_status' EXIT
}

# steps_table: the steps recorded so far, in the order they started.
steps_table() {
  [ -s "$STREAMHUB_STEPS" ] || return 0
  sort -n "$STREAMHUB_STEPS" | awk -F'\t' '
    { start[NR] = $1; end[NR] = $2; result[NR] = $3; name[NR] = $4
      if (NR == 1 || $1 < first) first = $1
      if ($2 > last) last = $2 }
    END {
      total = last - first
      printf "\n%-84s %9s %7s  %s\n", "step", "wall", "share", "result"
      for (i = 1; i <= NR; i++) {
        d = end[i] - start[i]
        share = total > 0 ? 100 * d / total : 0
        printf "%-84s %6d:%02d %6.1f%%  %s\n", substr(name[i], 1, 84), int(d / 60), int(d) % 60, share, result[i]
      }
      printf "%-84s %6d:%02d %6.1f%%\n", "total (first start to last end)", int(total / 60), int(total) % 60, 100
      print "(steps marked \"beside\" ran at the same time as others: the shares add up to more than 100 %)"
    }'
}

# step_beside NAME COMMAND...: runs COMMAND in the background as a step of its own,
# beside the steps that follow; its output goes to a log that step_wait prints.
step_beside() {
  local name=$1
  shift
  _beside_name=$name
  _beside_log=$(mktemp "${TMPDIR:-/tmp}/streamhub-step.XXXXXX")
  echo
  echo "=== started beside the next steps: $name ($(date +%T))"
  (
    start=$EPOCHREALTIME
    if "$@" >"$_beside_log" 2>&1; then result=ok; else result=FAILED; fi
    printf '%s\t%s\t%s\t%s\n' "$start" "$EPOCHREALTIME" "$result" "$name (beside)" >>"$STREAMHUB_STEPS"
    [ "$result" = ok ]
  ) &
  _beside_pid=$!
}

# step_wait: waits for the step_beside command, prints its output, fails if it failed.
step_wait() {
  local status=0
  wait "$_beside_pid" || status=$?
  echo "--- output of: $_beside_name"
  cat "$_beside_log"
  rm -f "$_beside_log"
  return "$status"
}
