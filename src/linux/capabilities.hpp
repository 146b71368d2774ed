// process.capabilities and process.user: names become bitmasks in the parent; the child applies
// them with prctl(2), capset(2) and the set*id(2) calls, without libcap and without allocating
// on the success path.
//
// Child order: drop_bounding_set, keep_caps_across_setuid(true), set_ids, apply_capabilities.
// The bounding set and the ids change while the process still holds CAP_SETPCAP/CAP_SETUID;
// KEEPCAPS keeps the permitted set across a change to a non-zero uid, so capset can still
// select from it afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

struct CapabilityPlan {
  // Bit N set = capability N in that set.
  uint64_t bounding = 0;
  uint64_t effective = 0;
  uint64_t inheritable = 0;
  uint64_t permitted = 0;
  uint64_t ambient = 0;
  int last_cap = 0;  // the running kernel's CAP_LAST_CAP
  // Names this kernel lacks (above last_cap), skipped as runc does: one line each, for the log.
  std::vector<std::string> warnings;
};

// Reads /proc/sys/kernel/cap_last_cap.
Result<int> read_last_cap();

// Converts process.capabilities. An unknown name is an Error naming the set
// ("process.capabilities.bounding CAP_FOO: unknown capability"); a known name above the kernel's
// last capability is skipped with a warning.
Result<CapabilityPlan> plan_capabilities(const oci::Capabilities& caps);
// Same, for a given last capability (tests, or a caller that already read it).
Result<CapabilityPlan> plan_capabilities(const oci::Capabilities& caps, int last_cap);

// "CAP_CHOWN": the runtime-spec's name for capability number cap (libcap's name, upper-cased).
std::string capability_name(int cap);

// Child side. Drops from the bounding set every capability up to last_cap that is not in
// plan.bounding. Needs CAP_SETPCAP.
Status drop_bounding_set(const CapabilityPlan& plan);
// PR_SET_KEEPCAPS: keep the permitted set when the uids change away from 0.
Status keep_caps_across_setuid(bool keep);
// setgroups(additional_gids), setresgid, setresuid, then umask when set. An empty setgroups is
// skipped where a user namespace denies it (/proc/self/setgroups "deny").
Status set_ids(const oci::User& user);
// capset(2) effective, permitted and inheritable, then clears the ambient set and raises each
// ambient capability (the kernel wants those in both permitted and inheritable).
Status apply_capabilities(const CapabilityPlan& plan);

}  // namespace forker::linux
