// Compiled seccomp filters, kept between starts. libseccomp builds docker's default profile in
// a few milliseconds and ~250 page faults, the same result on every start with the same profile;
// crun keeps compiled filters for the same reason. An entry holds the exact profile it was
// compiled from (compared whole, not by hash), the libseccomp version and the kernel release,
// so a change in any of them compiles afresh.
#pragma once

#include <string>

#include "core/error.hpp"
#include "linux/seccomp.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

// /run/forker-cache/seccomp for root, $XDG_RUNTIME_DIR/forker-cache/seccomp otherwise; empty
// (no cache) when neither applies. On tmpfs: a reboot, or a new kernel, starts it empty.
std::string default_seccomp_cache_dir();

// compile_seccomp, through the cache in DIR (made 0700 if missing). An unusable cache (not
// ours, unreadable, a stale or damaged entry) is never an error: the profile is compiled and,
// when DIR is writable, the entry replaced. Empty DIR: no cache.
Result<SeccompProgram> compile_seccomp_cached(const oci::Seccomp& config, const std::string& dir);

// What an entry is keyed by: a canonical text of CONFIG plus the libseccomp version and the
// kernel release. Exposed for tests.
std::string seccomp_cache_key(const oci::Seccomp& config);

}  // namespace forker::linux
