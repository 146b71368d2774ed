#!/usr/bin/env bash
# Lists what forker or its tests could leave on the host: mounts, cgroups, state directories,
# forker processes and named network namespaces. Compared before and after the tests.
mounts=$(awk '$5 ~ /forker/ || $4 ~ /forker/ {print "mount " $5}' /proc/self/mountinfo | sort)
cgroups=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d \( -name '*forker*' -o -name 'fkt-*' \) 2>/dev/null | sort)
state=$(for d in /run/forker-oci /run/forker /tmp/forker-it-*; do [ -d "$d" ] && find "$d" -mindepth 1 -maxdepth 1; done 2>/dev/null | sort)
# `forker` itself too: a detached container's monitor is a forker process.
procs=$(ps -eo pid=,args= | grep -E '(^|/)(forker|forker-oci|forker-init|probe)( |$)' | grep -v grep | sort)
netns=$(ip netns list 2>/dev/null | sort)
printf '%s\n' "$mounts" "$cgroups" "$state" "$procs" "$netns" | sed '/^$/d'
