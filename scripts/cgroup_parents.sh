# Sourced by setup.sh and test.sh. forker keeps its parent cgroup (/forker in each hierarchy)
# once made, as docker keeps /docker; a script that runs containers on a host that had none
# removes them again at its end (only the empty ones it made), so that it leaves the host as it
# found it.
forker_cgroup_parents() { ls -d /sys/fs/cgroup/forker /sys/fs/cgroup/*/forker 2>/dev/null || true; }
# remove_new_forker_cgroup_parents BEFORE: rmdir of every parent not listed in BEFORE.
remove_new_forker_cgroup_parents() {
  local dir
  for dir in $(forker_cgroup_parents); do
    grep -qxF "$dir" <<<"$1" || rmdir "$dir" 2>/dev/null || true
  done
}
