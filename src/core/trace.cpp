#include "core/trace.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>

namespace forker::trace {

namespace detail {
bool g_enabled = false;
}  // namespace detail

namespace {

enum : uint32_t { kFree = 0, kStarted = 1, kEnded = 2 };

// One slot of the shared buffer. STATE is published last (release), so a reader that sees
// kStarted or kEnded sees the fields written before it.
struct Record {
  std::atomic<uint32_t> state;
  int32_t pid;
  int32_t depth;
  int32_t err;
  int64_t start_ns;
  int64_t duration_ns;
  char text[kTextBytes + 1];
};

struct Buffer {
  std::atomic<uint32_t> next;
  Record records[kCapacity];
};

// The atomics are shared between processes: they must not hide a lock in process memory.
static_assert(std::atomic<uint32_t>::is_always_lock_free);

Buffer* g_buffer = nullptr;
int g_depth = 0;  // this process's nesting; a clone child resets its copy
std::string g_path_root;

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Claims a slot; -1 when the buffer is full (counted by dropped()).
int claim(std::string_view text, int depth) {
  if (!g_buffer) return -1;
  uint32_t i = g_buffer->next.fetch_add(1, std::memory_order_relaxed);
  if (i >= kCapacity) return -1;
  Record& r = g_buffer->records[i];
  r.pid = static_cast<int32_t>(getpid());
  r.depth = depth;
  r.err = 0;
  r.duration_ns = kOpen;
  std::string cut = truncate_text(text, kTextBytes);
  std::memcpy(r.text, cut.data(), cut.size());
  r.text[cut.size()] = '\0';
  r.start_ns = now_ns();
  r.state.store(kStarted, std::memory_order_release);
  return static_cast<int>(i);
}

std::string errno_name(int err) {
  if (err < 0) return "failed";
  const char* name = strerrorname_np(err);
  return name ? name : "errno " + std::to_string(err);
}

// Display columns of UTF-8 text (box drawing, "µ" and "…" are one column each).
size_t columns(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string micros(int64_t ns) { return std::to_string((ns + 500) / 1000) + " µs"; }

struct Node {
  const Step* step;
  std::vector<Node*> children;
};

std::string duration_text(const Step& s) {
  if (s.point) return "—";
  if (s.open) return "unfinished";
  return micros(s.duration_ns);
}

struct Line {
  std::string left;      // tree prefix and text
  std::string duration;  // right-aligned in its column
  std::string failure;   // after it: "  ✗ EPERM"
};

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

void flatten(const Node& n, const std::string& prefix, bool last, std::vector<Line>& out) {
  Line l;
  l.left = prefix + (last ? "└─ " : "├─ ") + abbreviate_ids(n.step->text);
  l.duration = duration_text(*n.step);
  if (n.step->err) l.failure = "  ✗ " + errno_name(n.step->err);
  out.push_back(std::move(l));
  std::string inner = prefix + (last ? "   " : "│  ");
  for (size_t i = 0; i < n.children.size(); ++i)
    flatten(*n.children[i], inner, i + 1 == n.children.size(), out);
}

}  // namespace

std::string abbreviate_ids(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && is_hex(text[j])) ++j;
    if (j - i == 64) {
      out += text.substr(i, 12);
      out += "…";
    } else {
      out += text.substr(i, std::max(j - i, size_t{1}));
    }
    i = std::max(j, i + 1);
  }
  return out;
}

std::string truncate_text(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  static constexpr std::string_view kEllipsis = "…";
  size_t keep = max >= kEllipsis.size() ? max - kEllipsis.size() : 0;
  // Back up to the first byte of a UTF-8 sequence.
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  std::string out(text.substr(0, keep));
  if (max >= kEllipsis.size()) out += kEllipsis;
  return out;
}

Session::Session(bool on, int print_fd) : print_fd_(print_fd) {
  if (!on || g_buffer) return;
  void* p =
      mmap(nullptr, sizeof(Buffer), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;         // explaining is best effort: the run goes on without it
  g_buffer = static_cast<Buffer*>(p);  // zero-filled: every slot kFree, next 0
  g_depth = 0;
  detail::g_enabled = true;
  active_ = true;
}

Session::~Session() {
  if (!active_) return;
  detail::g_enabled = false;
  // A detached start returns once the init is released: its execve record follows shortly.
  auto init_ready = [] {
    for (const Step& s : steps())
      if (s.depth == 0 && s.text == "init" && !s.open && s.err == 0) return true;
    return false;
  };
  if (init_ready()) {
    for (int i = 0; i < 1000 && !saw_exec(); ++i) usleep(1000);
  }
  if (print_fd_ >= 0) {
    std::string text = render(steps(), "forker run --explain", dropped());
    for (size_t off = 0; off < text.size();) {
      ssize_t n = write(print_fd_, text.data() + off, text.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }
  munmap(g_buffer, sizeof(Buffer));
  g_buffer = nullptr;
}

void stop_recording() { detail::g_enabled = false; }

void detail::begin_process() { g_depth = 0; }

void detail::set_path_root(std::string_view root) { g_path_root = root; }

static_assert(AT_FDCWD == -100);

std::string shown_path(int dirfd, const char* path, bool relative) {
  std::string p = path ? path : "";
  std::string base;
  if ((p.empty() || p[0] != '/') && dirfd != AT_FDCWD)
    base = "/proc/self/fd/" + std::to_string(dirfd);
  if (p.starts_with("/proc/self/fd/")) {
    size_t end = p.find('/', 14);
    base = p.substr(0, end);
    p = end == std::string::npos ? "" : p.substr(end + 1);
  }
  if (!base.empty()) {
    char buf[PATH_MAX];
    ssize_t n = readlink(base.c_str(), buf, sizeof buf - 1);
    if (n < 0) return path ? path : "";
    std::string resolved(buf, static_cast<size_t>(n));
    p = p.empty() ? resolved : (resolved == "/" ? "" : resolved) + "/" + p;
  }
  if (!relative || g_path_root.empty() || p.empty() || p[0] != '/') return p;
  if (p.starts_with(g_path_root) &&
      (p.size() == g_path_root.size() || p[g_path_root.size()] == '/'))
    return p.size() == g_path_root.size() ? "/" : p.substr(g_path_root.size());
  return "host:" + p;  // outside the container's root: never a path the container sees
}

void Scope::begin(std::string_view text) {
  slot_ = claim(text, g_depth);
  if (slot_ < 0) slot_ = kLost;
  ++g_depth;
}

void Scope::end() {
  if (slot_ == kOff) return;  // ended already, or never recording
  int saved = errno;          // a syscall's caller reads errno after this runs
  --g_depth;
  // A clone child unwinding a step its parent began (clone3 returns twice) leaves it alone.
  if (slot_ >= 0 && g_buffer && g_buffer->records[slot_].pid == getpid()) {
    Record& r = g_buffer->records[slot_];
    r.duration_ns = now_ns() - r.start_ns;
    r.state.store(kEnded, std::memory_order_release);
  }
  slot_ = kOff;
  errno = saved;
}

void Scope::append(std::string_view more) {
  if (!g_buffer) return;
  Record& r = g_buffer->records[slot_];
  std::string text = truncate_text(std::string(r.text) + std::string(more), kTextBytes);
  std::memcpy(r.text, text.data(), text.size());
  r.text[text.size()] = '\0';
}

void Scope::failed(int err) {
  if (slot_ >= 0 && g_buffer) g_buffer->records[slot_].err = err;
}

void record_point(std::string_view text) {
  int saved = errno;
  int i = claim(text, g_depth);
  if (i >= 0) {
    Record& r = g_buffer->records[i];
    r.duration_ns = kPoint;
    r.state.store(kEnded, std::memory_order_release);
  }
  errno = saved;
}

std::vector<Step> steps() {
  std::vector<Step> out;
  if (!g_buffer) return out;
  uint32_t n = std::min(g_buffer->next.load(std::memory_order_acquire), kCapacity);
  for (uint32_t i = 0; i < n; ++i) {
    const Record& r = g_buffer->records[i];
    uint32_t state = r.state.load(std::memory_order_acquire);
    if (state == kFree) continue;  // claimed, not yet written
    Step s;
    s.pid = r.pid;
    s.depth = r.depth;
    s.start_ns = r.start_ns;
    s.duration_ns = state == kEnded ? r.duration_ns : kOpen;
    s.point = s.duration_ns == kPoint;
    s.open = s.duration_ns == kOpen;
    s.err = r.err;
    s.text = r.text;
    out.push_back(std::move(s));
  }
  return out;
}

uint32_t dropped() {
  if (!g_buffer) return 0;
  uint32_t n = g_buffer->next.load(std::memory_order_acquire);
  return n > kCapacity ? n - kCapacity : 0;
}

bool saw_exec() {
  for (const Step& s : steps())
    if (s.point && s.text.starts_with("exec ")) return true;
  return false;
}

std::string render(const std::vector<Step>& steps, std::string_view title, uint32_t dropped) {
  // One tree per process, in the order its steps began; then the top-level steps of all of
  // them by start time.
  std::vector<Node> nodes(steps.size());
  std::vector<Node*> top;
  std::map<int, std::vector<Node*>> open_by_pid;  // a stack of ancestors per process
  int64_t first = INT64_MAX, last = INT64_MIN;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    nodes[i].step = &s;
    first = std::min(first, s.start_ns);
    last = std::max(last, s.start_ns + (s.duration_ns > 0 ? s.duration_ns : 0));
    auto& stack = open_by_pid[s.pid];
    while (!stack.empty() && stack.back()->step->depth >= s.depth) stack.pop_back();
    if (stack.empty())
      top.push_back(&nodes[i]);
    else
      stack.back()->children.push_back(&nodes[i]);
    stack.push_back(&nodes[i]);
  }
  std::stable_sort(top.begin(), top.end(), [](const Node* a, const Node* b) {
    return a->step->start_ns < b->step->start_ns;
  });
  std::vector<Line> lines;
  for (size_t i = 0; i < top.size(); ++i) flatten(*top[i], "", i + 1 == top.size(), lines);

  size_t width = 0;
  for (const Line& l : lines) width = std::max(width, columns(l.left));
  width = std::min<size_t>(width, 72);
  size_t right_width = 0;
  for (const Line& l : lines) right_width = std::max(right_width, columns(l.duration));

  std::string out = std::string(title) + ": " + std::to_string(steps.size()) + " steps, total " +
                    (steps.empty() ? std::string("0 µs") : micros(last - first)) + "\n";
  for (const Line& l : lines) {
    // Text past the width cap pushes its duration right rather than being cut.
    size_t used = columns(l.left);
    size_t pad = (used < width ? width - used : 0) + 2 + right_width - columns(l.duration);
    out += l.left + std::string(pad, ' ') + l.duration + l.failure + "\n";
  }
  if (dropped) out += "(" + std::to_string(dropped) + " more steps not recorded: buffer full)\n";
  return out;
}

}  // namespace forker::trace
