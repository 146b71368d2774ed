#include "linux/seccomp.hpp"

#include "core/fd_passing.hpp"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "core/trace.hpp"
#include "core/unique_fd.hpp"

// Older uapi headers lack the newest flag; the value is ABI (Linux 5.19).
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

namespace forker::linux {
namespace {

// Linux system calls take at most six arguments.
constexpr uint32_t kMaxSyscallArgs = 6;
// libseccomp <= 2.5.4 builds a wrong binary tree for an empty rule set, so runc only asks for
// the tree above this many rules; we follow it.
constexpr size_t kBinaryTreeThreshold = 32;

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using FilterCtx = std::unique_ptr<void, FilterDeleter>;

struct NamedArch {
  std::string_view name;
  uint32_t token;
};

// The runtime-spec's architecture names; those this libseccomp predates are left out, so they
// read as unknown rather than failing the build.
constexpr NamedArch kArchs[] = {
    {"SCMP_ARCH_X86", SCMP_ARCH_X86},
    {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
    {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
    {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64},
    {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL},
    {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32},
    {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},
    {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390},
    {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
    {"SCMP_ARCH_PARISC", SCMP_ARCH_PARISC},
    {"SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64},
    {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
#ifdef SCMP_ARCH_LOONGARCH64
    {"SCMP_ARCH_LOONGARCH64", SCMP_ARCH_LOONGARCH64},
#endif
#ifdef SCMP_ARCH_M68K
    {"SCMP_ARCH_M68K", SCMP_ARCH_M68K},
#endif
#ifdef SCMP_ARCH_SH
    {"SCMP_ARCH_SH", SCMP_ARCH_SH},
#endif
};

struct NamedFlag {
  std::string_view name;
  unsigned int bit;
};

constexpr NamedFlag kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    {"SECCOMP_FILTER_FLAG_NEW_LISTENER", SECCOMP_FILTER_FLAG_NEW_LISTENER},
    {"SECCOMP_FILTER_FLAG_TSYNC_ESRCH", SECCOMP_FILTER_FLAG_TSYNC_ESRCH},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
};

// Asks the kernel whether it knows these filter flags without installing anything: flags are
// checked before the program is read, so a null program gives EFAULT for known flags and EINVAL
// for unknown ones (libseccomp probes the same way). Allocation-free: used in the child too.
std::optional<bool> kernel_accepts_flags(unsigned int flags) {
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, nullptr) == 0) return true;
  if (errno == EFAULT) return true;
  if (errno == EINVAL) return false;
  return std::nullopt;  // seccomp(2) itself unavailable or filtered: cannot tell
}

Result<uint32_t> parse_action(const std::string& name, std::optional<uint32_t> errno_ret,
                              const std::string& field) {
  // ERRNO and TRACE carry errnoRet in the low 16 bits; EPERM is the runtime-spec's default.
  const uint32_t data = errno_ret.value_or(EPERM);
  if ((name == "SCMP_ACT_ERRNO" || name == "SCMP_ACT_TRACE") && data > 0xffff)
    return make_error(field + " " + name + ": errnoRet " + std::to_string(data) +
                      " does not fit in 16 bits");
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(data);
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(data);
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_NOTIFY") return SCMP_ACT_NOTIFY;
  return make_error(field + " " + name + ": unknown action");
}

Result<scmp_compare> parse_op(const std::string& name, const std::string& field) {
  if (name == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (name == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (name == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (name == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (name == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (name == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (name == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return make_error(field + " " + name + ": unknown operator");
}

Result<std::vector<scmp_arg_cmp>> parse_args(const std::vector<oci::SeccompArg>& args,
                                             const std::string& field) {
  std::vector<scmp_arg_cmp> out;
  for (size_t j = 0; j < args.size(); ++j) {
    const oci::SeccompArg& arg = args[j];
    const std::string arg_field = field + ".args[" + std::to_string(j) + "]";
    if (arg.index >= kMaxSyscallArgs)
      return make_error(arg_field + ".index " + std::to_string(arg.index) + ": must be below 6");
    const scmp_compare op = FORKER_TRY(parse_op(arg.op, arg_field + ".op"));
    // For SCMP_CMP_MASKED_EQ libseccomp reads datum_a as the mask and datum_b as the value,
    // and the runtime-spec (as runc) passes value, valueTwo in that order.
    out.push_back(scmp_arg_cmp{arg.index, op, arg.value, arg.value_two});
  }
  return out;
}

// Adds one syscall's rule. libseccomp refuses two conditions on the same argument in one rule
// (EINVAL), so such a rule becomes one rule per condition, as runc does: any one matching
// condition then triggers the action.
Status add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const std::string& name,
                const std::vector<scmp_arg_cmp>& conditions, const std::string& field) {
  std::array<int, kMaxSyscallArgs> per_arg{};
  bool shared_arg = false;
  for (const scmp_arg_cmp& c : conditions) shared_arg |= ++per_arg[c.arg] > 1;

  const std::string what = field + " " + name + ": seccomp_rule_add";
  if (!shared_arg) {
    int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned int>(conditions.size()),
                                    conditions.empty() ? nullptr : conditions.data());
    if (rc < 0) return sys_error_errno(-rc, what);
    return ok();
  }
  for (const scmp_arg_cmp& c : conditions) {
    int rc = seccomp_rule_add_array(ctx, action, nr, 1, &c);
    if (rc < 0) return sys_error_errno(-rc, what);
  }
  return ok();
}

Result<unsigned int> parse_flags(const std::vector<std::string>& names) {
  unsigned int flags = 0;
  for (const std::string& name : names) {
    const NamedFlag* found = nullptr;
    for (const NamedFlag& f : kFlags)
      if (f.name == name) found = &f;
    // NEW_LISTENER and TSYNC_ESRCH are the runtime's business, not the config's.
    if (found == nullptr || found->bit == SECCOMP_FILTER_FLAG_NEW_LISTENER ||
        found->bit == SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
      return make_error("linux.seccomp.flags " + name + ": unknown flag");
    // TSYNC is accepted and dropped, as runc does: the child is single-threaded when it loads the
    // filter, and TSYNC with NEW_LISTENER would need TSYNC_ESRCH (Linux 5.7).
    if (found->bit == SECCOMP_FILTER_FLAG_TSYNC) continue;
    unsigned int probe = found->bit;
    // The kernel refuses WAIT_KILLABLE_RECV without NEW_LISTENER, so probe it with one.
    if (probe == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) probe |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if (kernel_accepts_flags(probe) == false)
      return make_error("linux.seccomp.flags " + name + ": not supported by this kernel");
    flags |= found->bit;
  }
  return flags;
}

std::string native_arch_name() {
  const uint32_t native = seccomp_arch_native();
  for (const NamedArch& a : kArchs)
    if (a.token == native) return std::string(a.name);
  return "the native architecture";
}

Status add_architectures(scmp_filter_ctx ctx, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    const NamedArch* found = nullptr;
    for (const NamedArch& a : kArchs)
      if (a.name == name) found = &a;
    if (found == nullptr)
      return make_error("linux.seccomp.architectures " + name + ": unknown architecture");
    int rc = seccomp_arch_add(ctx, found->token);
    // The native architecture is already in a new filter. EDOM: libseccomp cannot put
    // architectures of both byte orders in one filter, so this one can never run here.
    if (rc == -EDOM)
      return make_error("linux.seccomp.architectures " + name +
                        ": cannot be filtered on this host (its byte order differs from " +
                        native_arch_name() + ")");
    if (rc < 0 && rc != -EEXIST)
      return sys_error_errno(-rc, "linux.seccomp.architectures " + name + ": seccomp_arch_add");
  }
  return ok();
}

// seccomp_export_bpf writes to an fd; a memfd keeps the round trip off the disk.
Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  UniqueFd fd(memfd_create("forker-seccomp", MFD_CLOEXEC));
  if (!fd) return sys_error("memfd_create", "forker-seccomp");
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc < 0) return sys_error_errno(-rc, "seccomp_export_bpf");
  struct stat st {};
  if (fstat(fd.get(), &st) < 0) return sys_error("fstat", "seccomp bpf memfd");
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0 || size % sizeof(sock_filter) != 0)
    return make_error("seccomp_export_bpf: " + std::to_string(size) +
                      " bytes is not a whole BPF program");
  std::vector<sock_filter> filter(size / sizeof(sock_filter));
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd.get(), reinterpret_cast<char*>(filter.data()) + done, size - done,
                      static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return sys_error("pread", "seccomp bpf memfd");
    done += static_cast<size_t>(n);
  }
  // The kernel refuses longer programs with a bare EINVAL; say why here instead.
  if (filter.size() > BPF_MAXINSNS)
    return make_error("linux.seccomp: compiled filter has " + std::to_string(filter.size()) +
                      " instructions, the kernel allows " + std::to_string(BPF_MAXINSNS));
  return filter;
}

}  // namespace

std::string seccomp_flags_to_string(unsigned int flags) {
  std::string out;
  for (const NamedFlag& f : kFlags) {
    if ((flags & f.bit) == 0) continue;
    if (!out.empty()) out += '|';
    out += f.name.substr(std::string_view("SECCOMP_FILTER_FLAG_").size());
    flags &= ~f.bit;
  }
  if (flags != 0) {
    if (!out.empty()) out += '|';
    out += std::to_string(flags);
  }
  return out.empty() ? "0" : out;
}

Result<SeccompProgram> compile_seccomp(const oci::Seccomp& config) {
  const uint32_t default_action = FORKER_TRY(
      parse_action(config.default_action, config.default_errno_ret, "linux.seccomp.defaultAction"));
  // Every syscall, the child's report to the parent included, would wait for an agent that has
  // not been given the listener yet.
  if (default_action == SCMP_ACT_NOTIFY)
    return make_error("linux.seccomp.defaultAction SCMP_ACT_NOTIFY: not allowed as default");

  SeccompProgram program;
  program.flags = FORKER_TRY(parse_flags(config.flags));

  FilterCtx ctx(seccomp_init(default_action));
  if (!ctx)
    return make_error("linux.seccomp.defaultAction " + config.default_action +
                      ": seccomp_init failed (not supported by libseccomp or the kernel?)");
  FORKER_TRY(add_architectures(ctx.get(), config.architectures));
  if (config.syscalls.size() > kBinaryTreeThreshold) {
    // Only an optimisation; an older libseccomp without it still builds a correct filter.
    (void)seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  }

  for (size_t i = 0; i < config.syscalls.size(); ++i) {
    const oci::SeccompSyscall& call = config.syscalls[i];
    const std::string field = "linux.seccomp.syscalls[" + std::to_string(i) + "]";
    const uint32_t action =
        FORKER_TRY(parse_action(call.action, call.errno_ret, field + ".action"));
    const std::vector<scmp_arg_cmp> conditions = FORKER_TRY(parse_args(call.args, field));
    if (call.names.empty()) return make_error(field + ".names: must not be empty");
    for (const std::string& name : call.names) {
      if (name.empty()) return make_error(field + ".names: empty syscall name");
      // runc's rule: the child reports the listener fd to the parent with write(2), which must
      // not wait for an agent that does not have the fd yet.
      if (action == SCMP_ACT_NOTIFY && name == "write")
        return make_error(field + ".action SCMP_ACT_NOTIFY: cannot be used for write");
    }
    // libseccomp refuses a rule whose action is the default one (EACCES); it would be a no-op.
    if (action == default_action) continue;
    for (const std::string& name : call.names) {
      const int nr = seccomp_syscall_resolve_name(name.c_str());
      // Unknown to this libseccomp and architecture: skipped, as runc does, so one profile can
      // serve kernels old and new.
      if (nr == __NR_SCMP_ERROR) {
        program.skipped_syscalls.push_back(name);
        continue;
      }
      FORKER_TRY(add_rule(ctx.get(), action, nr, name, conditions, field));
      if (action == SCMP_ACT_NOTIFY) program.needs_listener = true;
    }
  }
  // The kernel refuses WAIT_KILLABLE_RECV without a listener; it only changes how a notified
  // task waits, so with no NOTIFY rule there is nothing for it to do.
  if (!program.needs_listener) program.flags &= ~SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;

  program.filter = FORKER_TRY(export_bpf(ctx.get()));
  return program;
}

Result<int> load_seccomp(const SeccompProgram& program) {
  if (program.filter.empty() || program.filter.size() > BPF_MAXINSNS)
    return make_error("seccomp: filter has no instructions or too many");
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.filter.size());
  prog.filter = const_cast<sock_filter*>(program.filter.data());
  unsigned int flags = program.flags;
  if (program.needs_listener) flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;

  trace::Scope step([&] {
    return "seccomp SECCOMP_SET_MODE_FILTER " + std::to_string(prog.len) + " instructions flags " +
           seccomp_flags_to_string(flags);
  });
  const long rc = step.result(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog));
  if (rc < 0) {
    const int err = errno;
    if (err == EINVAL && flags != 0 && kernel_accepts_flags(flags) == false)
      return sys_error_errno(
          err, "seccomp SECCOMP_SET_MODE_FILTER",
          "flags " + seccomp_flags_to_string(flags) + " not supported by this kernel");
    if (err == EACCES)
      return sys_error_errno(err, "seccomp SECCOMP_SET_MODE_FILTER",
                             "(needs no_new_privs or CAP_SYS_ADMIN)");
    return sys_error_errno(err, "seccomp SECCOMP_SET_MODE_FILTER",
                           "flags " + seccomp_flags_to_string(flags));
  }
  return program.needs_listener ? static_cast<int>(rc) : -1;
}

Result<std::string> container_process_state_json(const std::string& oci_version, int pid,
                                                 const std::string& metadata,
                                                 const std::string& state_json) {
  nlohmann::json state = nlohmann::json::parse(state_json, nullptr, /*allow_exceptions=*/false);
  if (state.is_discarded() || !state.is_object())
    return make_error("seccomp listener: container state is not a JSON object");
  nlohmann::json out = {
      {"ociVersion", oci_version},
      // The index of a name here is the index of the fd in the SCM_RIGHTS array.
      {"fds", {"seccompFd"}},
      {"pid", pid},
      {"state", std::move(state)},
  };
  if (!metadata.empty()) out["metadata"] = metadata;
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status send_seccomp_listener(int listener_fd, const std::string& listener_path,
                             const std::string& process_state_json) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (listener_path.empty() || listener_path.size() >= sizeof(addr.sun_path))
    return make_error("linux.seccomp.listenerPath " + listener_path +
                      ": empty or too long for a unix socket");
  std::memcpy(addr.sun_path, listener_path.data(), listener_path.size());

  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return sys_error("socket", "AF_UNIX");
  if (connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0)
    return sys_error("connect", listener_path);

  // The fd rides on the first chunk; a stream socket may take the rest in further sends.
  auto sent = send_with_fd(sock.get(), listener_fd, process_state_json);
  if (!sent) return std::move(sent).error().add_context("seccomp listener " + listener_path);
  size_t done = *sent;
  while (done < process_state_json.size()) {
    ssize_t n = send(sock.get(), process_state_json.data() + done, process_state_json.size() - done,
             MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("send", listener_path);
    done += static_cast<size_t>(n);
  }
  return ok();
}

}  // namespace forker::linux
