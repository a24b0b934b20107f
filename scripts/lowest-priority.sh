#!/bin/sh
# lowest-priority.sh COMMAND [ARGS...]: runs COMMAND at the lowest CPU priority the
# machine offers without privileges, so that it takes only what everything else leaves
# idle. Plain `nice -n 19` is not enough on Linux with autogroup scheduling
# (/proc/sys/kernel/sched_autogroup_enabled = 1, Debian's default): the scheduler first
# shares the CPU fairly between sessions, and nice only orders the processes inside
# one. A test's peer that starts a session of its own (Chromium does) would then share
# the cores evenly with a niced build. So COMMAND gets a session of its own (setsid),
# whose scheduling group is set to nice 19 (/proc/self/autogroup), and nice 19 inside
# it. It runs in place of this script (same PID, so killing that PID stops it) unless
# the caller made this script a process group leader: then setsid forks and waits.
if [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
  exec setsid --wait sh -c 'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' lowest-priority "$@"
fi
exec nice -n 19 "$@"
