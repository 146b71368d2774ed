// `forker run --explain`: a recorder of the kernel steps one start takes, made by the code that
// takes them. Off, every record call is one load and one predictable branch, and no text is
// formatted (callers pass a lambda that builds it). On, records go to a fixed buffer in a
// MAP_SHARED anonymous mapping made before the clone, so the container's init (a clone child that
// runs our code until execve) appends to the buffer the parent later prints: no IPC.
//
// Each process keeps its own nesting depth; a clone child starts its own tree (begin_process).
// The renderer builds one tree per pid and merges their top-level steps by start time.
#pragma once

#include <cerrno>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forker::trace {

namespace detail {
extern bool g_enabled;
void begin_process();
void set_path_root(std::string_view root);
}  // namespace detail

inline bool enabled() { return detail::g_enabled; }

// One recorded step, as read back from the buffer.
struct Step {
  int pid = 0;
  int depth = 0;
  int64_t start_ns = 0;     // CLOCK_MONOTONIC
  int64_t duration_ns = 0;  // kPoint: no duration (execve); kOpen: never ended
  int err = 0;              // errno of a failed step
  bool point = false;
  bool open = false;
  std::string text;
};

constexpr int64_t kPoint = -1;
constexpr int64_t kOpen = -2;
// Text longer than this is cut, ending in "…".
constexpr size_t kTextBytes = 240;
constexpr uint32_t kCapacity = 1024;

// Owns the shared buffer while recording is on. Off (on == false), or inside another session, it
// does nothing at all. On,
// its destruction waits briefly for the init's execve record (a detached start returns before
// it), writes the rendered tree to print_fd (if >= 0), and turns recording off.
class Session {
 public:
  Session(bool on, int print_fd);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  bool active() const { return active_; }

 private:
  bool active_ = false;
  int print_fd_ = -1;
};

// Stops recording in this process only (a clone child that already runs keeps its copy on).
void stop_recording();
// In a clone or fork child: its steps start a tree of their own, at depth 0.
inline void begin_process() {
  if (enabled()) detail::begin_process();
}

// Paths the kernel sees through /proc/self/fd/N are shown as the file they name; under ROOT
// (the container's rootfs before pivot_root) they are shown relative to it, and other absolute
// paths as "host:PATH". "" clears it.
inline void set_path_root(std::string_view root) {
  if (enabled()) detail::set_path_root(root);
}
// The path to show for DIRFD/PATH (AT_FDCWD, "" with AT_EMPTY_PATH, /proc/self/fd/N), relative
// to the path root unless RELATIVE is false (a bind source is a host path).
std::string shown_path(int dirfd, const char* path, bool relative = true);
inline std::string shown_path(const char* path) { return shown_path(-100 /* AT_FDCWD */, path); }

// A step with a duration: from construction to end() or destruction.
class Scope {
 public:
  explicit Scope(std::string_view text) {
    if (enabled()) begin(text);
  }
  template <std::invocable F>
  explicit Scope(F&& make_text) {
    if (enabled()) begin(make_text());
  }
  ~Scope() {
    if (slot_ != kOff) end();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  // Ends the step now (a phase that does not match a C++ block).
  void end();
  // Adds to the step's text what is known only afterwards (how many calls a loop made).
  template <std::invocable F>
  void note(F&& more) {
    if (slot_ >= 0) append(more());
  }
  // A syscall's return value: a negative one marks the step failed with errno. Returns RC.
  template <typename T>
  T result(T rc) {
    if (slot_ >= 0 && rc < 0) failed(errno);
    return rc;
  }
  // A Status or Result: a failure marks the step with the error's errno (or -1).
  template <typename R>
  requires requires(const R& r) { r.error().err; }
  R&& status(R&& r) {
    if (slot_ >= 0 && !r.has_value()) failed(r.error().err ? r.error().err : -1);
    return std::forward<R>(r);
  }

 private:
  static constexpr int kOff = -1;   // not recording, or ended
  static constexpr int kLost = -2;  // recording, but the buffer was full
  void begin(std::string_view text);
  void failed(int err);
  void append(std::string_view more);
  int slot_ = kOff;
};

void record_point(std::string_view text);
// A step with no duration to measure: the last thing before execve.
template <std::invocable F>
void point(F&& make_text) {
  if (enabled()) record_point(make_text());
}

// Reads every record in the buffer (tests and the renderer).
std::vector<Step> steps();
// Records lost to a full buffer.
uint32_t dropped();
// Whether some process recorded a point step starting with "exec ".
bool saw_exec();

// The tree: a header line with the step count and the total wall time, then one line per step,
// children indented under their parent, each with its duration in µs ("—" for a point step).
std::string render(const std::vector<Step>& steps, std::string_view title, uint32_t dropped = 0);

// Container ids (64 hex digits) shortened to their first 12 and "…", as docker shows them.
std::string abbreviate_ids(std::string_view text);

// "ab…": TEXT cut to at most MAX bytes on a UTF-8 boundary, ending in "…" when cut.
std::string truncate_text(std::string_view text, size_t max);

}  // namespace forker::trace
