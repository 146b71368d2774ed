#!/usr/bin/env bash
# Lists what forker or its tests could leave on the host: mounts, cgroups, state directories,
# forker processes, named network namespaces, forker's links, nftables table and live network
# state. Compared before and after the tests.
mounts=$(awk '$5 ~ /forker/ || $4 ~ /forker/ {print "mount " $5}' /proc/self/mountinfo | sort)
# forker's own parent cgroup (/forker in each hierarchy) stays once made, as docker's /docker
# does: what is below it is what counts.
cgroups=$( { find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d \( -name '*forker*' -o -name 'fkt-*' \) ! -name forker
             find /sys/fs/cgroup/forker /sys/fs/cgroup/*/forker -mindepth 1 -maxdepth 1 -type d; } 2>/dev/null | sort -u)
state=$(for d in /run/forker-oci /run/forker /tmp/forker-it-*; do [ -d "$d" ] && find "$d" -mindepth 1 -maxdepth 1; done 2>/dev/null | sort)
# `forker` itself too: a detached container's monitor is a forker process.
procs=$(ps -eo pid=,args= | grep -E '(^|/)(forker|forker-oci|forker-init|probe)( |$)' | grep -v grep | sort)
netns=$(ip netns list 2>/dev/null | sort)
links=$(ls /sys/class/net | grep -E '^(forker|fk)' | sed 's/^/link /')
table=$(nft list table inet forker >/dev/null 2>&1 && echo 'nftables table inet forker')
netstate=$(find /run/forker-network -name '*.json' 2>/dev/null | sort)
printf '%s\n' "$mounts" "$cgroups" "$state" "$procs" "$netns" "$links" "$table" "$netstate" | sed '/^$/d'
