#include "linux/cgroup_bpf.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "core/trace.hpp"
#include "core/unique_fd.hpp"

namespace forker::linux {
namespace {

// The fields of struct bpf_cgroup_dev_ctx: access_type (type | access << 16), major, minor.
constexpr int16_t kAccessTypeOffset = 0, kMajorOffset = 4, kMinorOffset = 8;
// Registers: r1 ctx, r2 device type, r3 requested access, r4 major, r5 minor, r6 scratch.
enum Reg : uint8_t { R0 = 0, R1 = 1, R2, R3, R4, R5, R6 };

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
bpf_insn load_u32(Reg dst, int16_t off) { return insn(BPF_LDX | BPF_MEM | BPF_W, dst, R1, off, 0); }
bpf_insn mov_reg(Reg dst, Reg src) { return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn mov_imm(Reg dst, int32_t v) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, v); }
bpf_insn and_imm(Reg dst, int32_t v) { return insn(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, v); }
bpf_insn rsh_imm(Reg dst, int32_t v) { return insn(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, v); }
bpf_insn jne_imm(Reg dst, int32_t v, int16_t skip) {
  return insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, skip, v);
}
bpf_insn jeq_imm(Reg dst, int32_t v, int16_t skip) {
  return insn(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, skip, v);
}
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

Result<int32_t> access_mask(const std::string& access, const std::string& where) {
  if (access.empty()) return BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
  int32_t mask = 0;
  for (char c : access) {
    if (c == 'r') mask |= BPF_DEVCG_ACC_READ;
    else if (c == 'w') mask |= BPF_DEVCG_ACC_WRITE;
    else if (c == 'm') mask |= BPF_DEVCG_ACC_MKNOD;
    else return make_error(where + ".access " + access + ": unknown access letter");
  }
  return mask;
}

}  // namespace

Result<std::vector<bpf_insn>> device_filter_program(const std::vector<oci::DeviceRule>& rules) {
  std::vector<bpf_insn> p = {
      load_u32(R2, kAccessTypeOffset), mov_reg(R3, R2), and_imm(R2, 0xffff), rsh_imm(R3, 16),
      load_u32(R4, kMajorOffset),      load_u32(R5, kMinorOffset),
  };
  // Last rule first: the first match in the program is the last in the config.
  for (size_t n = rules.size(); n-- > 0;) {
    const auto& r = rules[n];
    std::string where = "linux.resources.devices[" + std::to_string(n) + "]";
    std::vector<bpf_insn> checks;  // each jumps past the block on mismatch; offsets fixed below
    if (r.type == "c" || r.type == "b")
      checks.push_back(jne_imm(R2, r.type == "c" ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0));
    else if (!r.type.empty() && r.type != "a")
      return make_error(where + ".type " + r.type + ": must be a, c or b");
    int32_t mask = FORKER_TRY(access_mask(r.access, where));
    int32_t full = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
    if (mask != full) {
      // An allow rule matches when every requested access is in it: (access & ~mask) == 0.
      // A deny rule matches when any requested access is in it: (access & mask) != 0.
      checks.push_back(mov_reg(R6, R3));
      if (r.allow) {
        checks.push_back(and_imm(R6, ~mask & full));
        checks.push_back(jne_imm(R6, 0, 0));
      } else {
        checks.push_back(and_imm(R6, mask));
        checks.push_back(jeq_imm(R6, 0, 0));
      }
    }
    if (r.major && *r.major >= 0) checks.push_back(jne_imm(R4, static_cast<int32_t>(*r.major), 0));
    if (r.minor && *r.minor >= 0) checks.push_back(jne_imm(R5, static_cast<int32_t>(*r.minor), 0));
    bool unconditional = checks.empty();
    checks.push_back(mov_imm(R0, r.allow ? 1 : 0));
    checks.push_back(exit_insn());
    for (size_t i = 0; i < checks.size(); ++i)
      if (checks[i].code == (BPF_JMP | BPF_JNE | BPF_K) ||
          checks[i].code == (BPF_JMP | BPF_JEQ | BPF_K))
        checks[i].off = static_cast<int16_t>(checks.size() - 1 - i);
    p.insert(p.end(), checks.begin(), checks.end());
    // Nothing after a rule that matches everything is reachable, and the verifier refuses
    // unreachable instructions.
    if (unconditional) return p;
  }
  p.push_back(mov_imm(R0, 0));
  p.push_back(exit_insn());
  return p;
}

Status attach_device_filter(int cgroup_fd, const std::vector<bpf_insn>& program,
                            const std::string& cgroup_dir) {
  static const char kLicense[] = "GPL";
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(program.data());
  load.insn_cnt = static_cast<uint32_t>(program.size());
  load.license = reinterpret_cast<uint64_t>(kLicense);
  trace::Scope load_step([&] {
    return "bpf BPF_PROG_LOAD BPF_PROG_TYPE_CGROUP_DEVICE " + std::to_string(program.size()) +
           " instructions";
  });
  long fd = load_step.result(syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load));
  if (fd < 0 && errno == EINVAL) {
    // Load again with the verifier's log, whose first line says what it refused.
    std::string log(64 * 1024, '\0');
    load.log_level = 1;
    load.log_buf = reinterpret_cast<uint64_t>(log.data());
    load.log_size = static_cast<uint32_t>(log.size());
    fd = syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
    if (fd < 0) {
      int saved = errno;
      log.resize(strlen(log.c_str()));
      while (!log.empty() && log.back() == '\n') log.pop_back();
      std::string last = log.substr(0, log.find('\n'));
      return sys_error_errno(saved, "bpf BPF_PROG_LOAD device filter (verifier: " + last + ") for",
                             cgroup_dir);
    }
  }
  if (fd < 0) return sys_error("bpf BPF_PROG_LOAD device filter for", cgroup_dir);
  UniqueFd prog(static_cast<int>(fd));
  load_step.end();
  trace::Scope attach_step(
      [&] { return "bpf BPF_PROG_ATTACH BPF_CGROUP_DEVICE BPF_F_ALLOW_MULTI to " + cgroup_dir; });
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cgroup_fd);
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (attach_step.result(syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach)) < 0)
    return sys_error("bpf BPF_PROG_ATTACH device filter to", cgroup_dir);
  return ok();  // the attachment keeps the program alive; it goes with the cgroup
}

}  // namespace forker::linux
