#include "linux/seccomp_cache.hpp"

#include <fcntl.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/file.hpp"
#include "core/unique_fd.hpp"

namespace forker::linux {

namespace {

constexpr char kMagic[8] = {'F', 'K', 'S', 'C', '1', 0, 0, 0};

// The entry's file name: a 64-bit FNV-1a of the key (the key itself is checked on load).
std::string entry_name(const std::string& key) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put_str(std::string& out, const std::string& s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool u32(uint32_t& v) {
    if (data_.size() < 4) return false;
    std::memcpy(&v, data_.data(), 4);
    data_.remove_prefix(4);
    return true;
  }
  bool str(std::string& s) {
    uint32_t n = 0;
    if (!u32(n) || data_.size() < n) return false;
    s.assign(data_.data(), n);
    data_.remove_prefix(n);
    return true;
  }
  bool bytes(void* out, size_t n) {
    if (data_.size() < n) return false;
    std::memcpy(out, data_.data(), n);
    data_.remove_prefix(n);
    return true;
  }
  bool done() const { return data_.empty(); }

 private:
  std::string_view data_;
};

std::string serialize(const std::string& key, const SeccompProgram& p) {
  std::string out(kMagic, sizeof kMagic);
  put_str(out, key);
  put_u32(out, p.flags);
  put_u32(out, p.needs_listener ? 1 : 0);
  put_u32(out, static_cast<uint32_t>(p.skipped_syscalls.size()));
  for (const auto& s : p.skipped_syscalls) put_str(out, s);
  put_u32(out, static_cast<uint32_t>(p.filter.size()));
  out.append(reinterpret_cast<const char*>(p.filter.data()), p.filter.size() * sizeof(sock_filter));
  return out;
}

std::optional<SeccompProgram> deserialize(const std::string& key, std::string_view data) {
  if (data.size() < sizeof kMagic || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0)
    return std::nullopt;
  Reader r(data.substr(sizeof kMagic));
  std::string stored_key;
  uint32_t flags = 0, listener = 0, skipped = 0, insns = 0;
  if (!r.str(stored_key) || stored_key != key || !r.u32(flags) || !r.u32(listener) ||
      !r.u32(skipped) || skipped > 4096)
    return std::nullopt;
  SeccompProgram p;
  p.flags = flags;
  p.needs_listener = listener != 0;
  p.skipped_syscalls.resize(skipped);
  for (auto& s : p.skipped_syscalls)
    if (!r.str(s)) return std::nullopt;
  if (!r.u32(insns) || insns == 0 || insns > BPF_MAXINSNS) return std::nullopt;
  p.filter.resize(insns);
  if (!r.bytes(p.filter.data(), insns * sizeof(sock_filter)) || !r.done()) return std::nullopt;
  return p;
}

// A directory only we can write, or nothing: an entry is trusted as a compiled filter.
bool usable_dir(const std::string& dir) {
  if (mkdir_all(dir, 0700) && chmod(dir.c_str(), 0700) == 0) {
    struct stat st {};
    return stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
           (st.st_mode & 077) == 0;
  }
  return false;
}

}  // namespace

std::string default_seccomp_cache_dir() {
  if (geteuid() == 0) return "/run/forker-cache/seccomp";
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg == '/') return std::string(xdg) + "/forker-cache/seccomp";
  return {};
}

std::string seccomp_cache_key(const oci::Seccomp& c) {
  std::string k = "forker-seccomp 1\n";
  const scmp_version* v = seccomp_version();
  if (v) k += "libseccomp " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
              std::to_string(v->micro) + "\n";
  utsname u{};
  if (uname(&u) == 0) k += std::string("kernel ") + u.release + " " + u.machine + "\n";
  // Every field compile_seccomp reads, each on its own line, lists '\x1f'-separated.
  k += "default " + c.default_action + " " +
       (c.default_errno_ret ? std::to_string(*c.default_errno_ret) : "-") + "\n";
  k += "arch";
  for (const auto& a : c.architectures) k += "\x1f" + a;
  k += "\nflags";
  for (const auto& f : c.flags) k += "\x1f" + f;
  k += "\n";
  for (const auto& s : c.syscalls) {
    k += "rule " + s.action + " " + (s.errno_ret ? std::to_string(*s.errno_ret) : "-");
    for (const auto& n : s.names) k += "\x1f" + n;
    for (const auto& a : s.args)
      k += "\x1e" + std::to_string(a.index) + " " + std::to_string(a.value) + " " +
           std::to_string(a.value_two) + " " + a.op;
    k += "\n";
  }
  return k;
}

Result<SeccompProgram> compile_seccomp_cached(const oci::Seccomp& config, const std::string& dir) {
  if (dir.empty()) return compile_seccomp(config);
  std::string key = seccomp_cache_key(config);
  std::string path = dir + "/" + entry_name(key);
  {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (fd && fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        (st.st_mode & 022) == 0 && st.st_size < (1 << 20)) {
      std::string data(static_cast<size_t>(st.st_size), '\0');
      if (read(fd.get(), data.data(), data.size()) == st.st_size)
        if (auto p = deserialize(key, data)) return std::move(*p);
    }
  }
  SeccompProgram program = FORKER_TRY(compile_seccomp(config));
  // Best effort: a cache we cannot write only means compiling next time too.
  if (usable_dir(dir))
    (void)write_file_replace(path, serialize(key, program), 0600, false);
  return program;
}

}  // namespace forker::linux
