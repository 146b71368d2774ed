#include "linux/capabilities.hpp"

#include <sys/capability.h>  // libcap: cap_from_name, cap_to_name; pulls in linux/capability.h
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <optional>

#include "core/file.hpp"
#include "core/strings.hpp"
#include "core/trace.hpp"

namespace forker::linux {
namespace {

constexpr char kLastCapPath[] = "/proc/sys/kernel/cap_last_cap";
// Bitmasks are 64 bits wide; the kernel's capability sets are too (two capset words).
constexpr int kMaxCap = 63;

bool has_cap(uint64_t set, int cap) { return (set >> cap) & 1U; }

// "CAP_NET_ADMIN" -> 12. libcap spells names in lower case ("cap_net_admin") and also takes
// numbers; the runtime-spec only has upper-case CAP_ names, so those alone are accepted.
std::optional<int> parse_capability(const std::string& name) {
  if (!starts_with(name, "CAP_") || name.size() == 4) return std::nullopt;
  std::string lower = name;
  for (char& c : lower) {
    if (!std::isupper(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c)) && c != '_')
      return std::nullopt;
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  cap_value_t value = 0;
  if (cap_from_name(lower.c_str(), &value) != 0 || value < 0) return std::nullopt;
  return static_cast<int>(value);
}

Result<uint64_t> plan_set(const std::vector<std::string>& names, const char* set, int last_cap,
                          std::vector<std::string>& warnings) {
  uint64_t mask = 0;
  for (const std::string& name : names) {
    const std::optional<int> cap = parse_capability(name);
    if (!cap)
      return make_error(std::string("process.capabilities.") + set + " " + name +
                        ": unknown capability");
    // Known to libcap but not to this kernel: runc warns and goes on, so a profile written for
    // a newer kernel still runs.
    if (*cap > last_cap) {
      warnings.push_back(std::string("process.capabilities.") + set + " " + name +
                         ": not supported by this kernel (last capability " +
                         std::to_string(last_cap) + "), ignored");
      continue;
    }
    mask |= uint64_t{1} << *cap;
  }
  return mask;
}

// glibc's set*id wrappers broadcast the change to every thread it knows of (nptl setxid); after
// clone(2) its thread list describes the parent, so the child calls the kernel directly.
#ifdef SYS_setresuid32
constexpr long kSysSetresuid = SYS_setresuid32;
constexpr long kSysSetresgid = SYS_setresgid32;
constexpr long kSysSetgroups = SYS_setgroups32;
#else
constexpr long kSysSetresuid = SYS_setresuid;
constexpr long kSysSetresgid = SYS_setresgid;
constexpr long kSysSetgroups = SYS_setgroups;
#endif

// "CAP_CHOWN|CAP_KILL", or "none" (for --explain).
std::string set_text(uint64_t set, int last_cap) {
  std::string out;
  for (int cap = 0; cap <= last_cap && cap <= kMaxCap; ++cap)
    if (has_cap(set, cap)) out += (out.empty() ? "" : "|") + capability_name(cap);
  return out.empty() ? "none" : out;
}

std::string ids_text(const std::vector<uint32_t>& ids) {
  std::string out;
  for (uint32_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return "[" + out + "]";
}

}  // namespace

std::string capability_name(int cap) {
  char* name = cap_to_name(static_cast<cap_value_t>(cap));
  if (name == nullptr) return "capability " + std::to_string(cap);
  std::string out(name);
  cap_free(name);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  // libcap prints capabilities it has no name for as a bare number.
  if (!starts_with(out, "CAP_")) out = "capability " + out;
  return out;
}

Result<int> read_last_cap() {
  const std::string text = FORKER_TRY(read_file(kLastCapPath));
  const std::optional<int64_t> value = parse_int(trim(text));
  if (!value || *value < 0 || *value > kMaxCap)
    return make_error(std::string("parse ") + kLastCapPath, std::string(trim(text)));
  return static_cast<int>(*value);
}

Result<CapabilityPlan> plan_capabilities(const oci::Capabilities& caps) {
  const int last_cap = FORKER_TRY(read_last_cap());
  return plan_capabilities(caps, last_cap);
}

Result<CapabilityPlan> plan_capabilities(const oci::Capabilities& caps, int last_cap) {
  if (last_cap < 0 || last_cap > kMaxCap)
    return make_error("capabilities: last capability " + std::to_string(last_cap) +
                      " out of range");
  CapabilityPlan plan;
  plan.last_cap = last_cap;
  plan.bounding = FORKER_TRY(plan_set(caps.bounding, "bounding", last_cap, plan.warnings));
  plan.effective = FORKER_TRY(plan_set(caps.effective, "effective", last_cap, plan.warnings));
  plan.inheritable = FORKER_TRY(plan_set(caps.inheritable, "inheritable", last_cap, plan.warnings));
  plan.permitted = FORKER_TRY(plan_set(caps.permitted, "permitted", last_cap, plan.warnings));
  plan.ambient = FORKER_TRY(plan_set(caps.ambient, "ambient", last_cap, plan.warnings));
  // PR_CAP_AMBIENT_RAISE refuses a capability missing from permitted or inheritable. runc warns
  // and goes on (its own default spec lists ambient caps with no inheritable set); we drop them
  // here, quietly, since every default config would warn.
  plan.ambient &= plan.permitted & plan.inheritable;
  return plan;
}

Status drop_bounding_set(const CapabilityPlan& plan) {
  trace::Scope step([&] { return "bounding set: keep " + set_text(plan.bounding, plan.last_cap); });
  int dropped = 0;
  for (int cap = 0; cap <= plan.last_cap && cap <= kMaxCap; ++cap) {
    if (has_cap(plan.bounding, cap)) continue;
    // Dropping needs CAP_SETPCAP even for a capability already gone; reading first lets a
    // process without it get as far as the set already allows.
    const int present = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (present == 0) continue;
    if (present < 0) {
      if (errno == EINVAL) continue;  // unknown to this kernel: nothing to drop
      return sys_error("prctl PR_CAPBSET_READ", capability_name(cap));
    }
    if (step.result(prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) < 0)
      return sys_error("prctl PR_CAPBSET_DROP", capability_name(cap));
    ++dropped;
  }
  step.note([&] { return "; PR_CAPBSET_DROP x" + std::to_string(dropped); });
  return ok();
}

Status keep_caps_across_setuid(bool keep) {
  trace::Scope step(keep ? "prctl PR_SET_KEEPCAPS 1" : "prctl PR_SET_KEEPCAPS 0");
  if (step.result(prctl(PR_SET_KEEPCAPS, keep ? 1 : 0, 0, 0, 0)) < 0)
    return sys_error("prctl PR_SET_KEEPCAPS", keep ? "1" : "0");
  return ok();
}

Status set_ids(const oci::User& user) {
  static_assert(sizeof(gid_t) == sizeof(uint32_t));
  trace::Scope groups_step([&] { return "setgroups " + ids_text(user.additional_gids); });
  if (groups_step.result(
          syscall(kSysSetgroups, user.additional_gids.size(), user.additional_gids.data())) < 0) {
    // In a user namespace whose /proc/self/setgroups says "deny", setgroups always fails with
    // EPERM; clearing the list is then impossible and also unneeded (the namespace's owner
    // chose it), so only a non-empty list is an error.
    if (!(errno == EPERM && user.additional_gids.empty()))
      return sys_error("setgroups", "process.user.additionalGids");
  }
  groups_step.end();
  trace::Scope gid_step([&] {
    std::string g = std::to_string(user.gid);
    return "setresgid " + g + " " + g + " " + g;
  });
  if (gid_step.result(syscall(kSysSetresgid, user.gid, user.gid, user.gid)) < 0)
    return sys_error("setresgid", std::to_string(user.gid));
  gid_step.end();
  trace::Scope uid_step([&] {
    std::string u = std::to_string(user.uid);
    return "setresuid " + u + " " + u + " " + u;
  });
  if (uid_step.result(syscall(kSysSetresuid, user.uid, user.uid, user.uid)) < 0)
    return sys_error("setresuid", std::to_string(user.uid));
  uid_step.end();
  if (user.umask) ::umask(static_cast<mode_t>(*user.umask & 0777));
  return ok();
}

Status apply_capabilities(const CapabilityPlan& plan) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  // Version 3 takes two 32-bit words per set: capabilities 0-31, then 32-63.
  __user_cap_data_struct data[2] = {};
  for (int word = 0; word < 2; ++word) {
    const int shift = 32 * word;
    data[word].effective = static_cast<uint32_t>(plan.effective >> shift);
    data[word].permitted = static_cast<uint32_t>(plan.permitted >> shift);
    data[word].inheritable = static_cast<uint32_t>(plan.inheritable >> shift);
  }
  trace::Scope capset_step([&] {
    std::string eff = set_text(plan.effective, plan.last_cap);
    std::string inh = set_text(plan.inheritable, plan.last_cap);
    if (plan.effective == plan.permitted)
      return "capset effective=permitted=" + eff + " inheritable=" + inh;
    return "capset effective=" + eff + " permitted=" + set_text(plan.permitted, plan.last_cap) +
           " inheritable=" + inh;
  });
  if (capset_step.result(syscall(SYS_capset, &header, data)) < 0)
    return sys_error("capset", "effective/permitted/inheritable");
  capset_step.end();

  // Ambient capabilities (Linux 4.3) survive execve of an unprivileged program. Start from an
  // empty set so nothing the runtime held leaks into the container.
  trace::Scope clear_step("prctl PR_CAP_AMBIENT_CLEAR_ALL");
  if (clear_step.result(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)) < 0) {
    if (errno == EINVAL && plan.ambient == 0) return ok();  // kernel without ambient sets
    return sys_error("prctl PR_CAP_AMBIENT_CLEAR_ALL");
  }
  clear_step.end();
  for (int cap = 0; cap <= plan.last_cap && cap <= kMaxCap; ++cap) {
    if (!has_cap(plan.ambient, cap)) continue;
    trace::Scope step([&] { return "prctl PR_CAP_AMBIENT_RAISE " + capability_name(cap); });
    if (step.result(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)) < 0)
      return sys_error("prctl PR_CAP_AMBIENT_RAISE", capability_name(cap));
  }
  return ok();
}

}  // namespace forker::linux
