// A detached container's monitor (conmon's job, inside forker): it owns the container's stdio,
// writes the log, records each exit, applies the restart policy, and removes the container at
// the end when --rm asked for it. It is a grandchild of `forker run -d` in a session of its own.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/file.hpp"
#include "core/log.hpp"
#include "engine/engine_internal.hpp"
#include "oci/state.hpp"

namespace forker::engine::detail {

namespace {

void report(int fd, const std::string& text) {
  if (fd < 0) return;
  std::string line = text + "\n";
  (void)!write(fd, line.data(), line.size());
}

bool should_restart(const ContainerRecord& r, const ExitRecord& e, const std::string& dir) {
  if (marker_present(dir, kRemoving)) return false;
  if (r.restart_policy == "always") return !marker_present(dir, kStopRequested);
  if (r.restart_policy == "unless-stopped") return !marker_present(dir, kStopRequested);
  if (r.restart_policy == "on-failure")
    return e.exit_code != 0 && !marker_present(dir, kStopRequested) &&
           (r.restart_max == 0 || e.restart_count < r.restart_max);
  return false;
}

// Points fds 0, 1, 2 at what the container should inherit; restores ours on destruction.
class StdioSwap {
 public:
  StdioSwap(int in, int out, int err) {
    for (int i = 0; i < 3; ++i) saved_[i] = UniqueFd(fcntl(i, F_DUPFD_CLOEXEC, 3));
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
  }
  ~StdioSwap() {
    for (int i = 0; i < 3; ++i)
      if (saved_[i]) dup2(saved_[i].get(), i);
  }

 private:
  UniqueFd saved_[3];
};

}  // namespace

[[noreturn]] void run_monitor(Engine& engine, StartPlan plan, int status_fd) {
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  prctl(PR_SET_NAME, "forker-monitor");
  // Our own messages go to the log's neighbour: nobody is left to read a terminal.
  UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  UniqueFd own_log(open((plan.dir + "/monitor.log").c_str(),
                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  dup2(null.get(), 0);
  dup2(own_log ? own_log.get() : null.get(), 1);
  dup2(own_log ? own_log.get() : null.get(), 2);
  own_log.reset();
  (void)write_monitor_pid(plan.dir);

  const ContainerRecord& rec = plan.record;
  auto log = LogWriter::open(plan.dir + "/" + kLogFile, kLogMaxBytes, kLogMaxFiles);
  if (!log) {
    report(status_fd, std::to_string(kExitEngineFailed) + " " + log.error().message());
    _exit(1);
  }
  ExitRecord exit;
  int delay_ms = 100;
  for (bool first = true;; first = false) {
    if (first) clear_marker(plan.dir, kStopRequested);
    clear_marker(plan.dir, kIgnoredSigterm);
    int out[2], err[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) < 0 || (!rec.tty && pipe2(err, O_CLOEXEC) < 0)) {
      report(status_fd, std::to_string(kExitEngineFailed) + " pipe2: " + std::strerror(errno));
      _exit(1);
    }
    UniqueFd out_read(out[0]), out_write(out[1]), err_read(err[0]), err_write(err[1]);
    Result<runtime::Created> created = make_error("not started");
    {
      StdioSwap swap(null.get(), out_write.get(), rec.tty ? out_write.get() : err_write.get());
      created = start_container(engine.runtime_options(), plan);
    }
    out_write.reset();
    err_write.reset();
    if (!created) {
      Error e = std::move(created).error();
      e.add_context("run " + rec.name);
      if (first) {
        report(status_fd, std::to_string(exit_code_for(e)) + " " + e.message());
        _exit(1);
      }
      // A restart that cannot start: recorded, and the policy ends here.
      exit.error = e.message();
      exit.exit_code = exit_code_for(e);
      exit.finished = oci::rfc3339_now();
      (void)engine.containers().save_exit(rec.id, exit);
      break;
    }
    if (first) {
      report(status_fd, "ok");
      close(status_fd);
      status_fd = -1;
    }
    auto started_at = std::chrono::steady_clock::now();
    exit.started = created->state.created;
    exit.finished.clear();
    (void)engine.containers().save_exit(rec.id, exit);
    int source = created->pty_master ? created->pty_master.get() : out_read.get();
    if (auto p = pump_output(source, rec.tty ? -1 : err_read.get(), created->child.pidfd(), *log);
        !p)
      log::warn(p.error().message());
    (void)log->flush();
    auto code = created->child.wait();
    exit.exit_code = code ? *code : kExitEngineFailed;
    exit.finished = oci::rfc3339_now();
    exit.oom_killed = oom_killed(created->state);
    exit.stopped_by_user = marker_present(plan.dir, kStopRequested);
    exit.ignored_sigterm = marker_present(plan.dir, kIgnoredSigterm);
    if (auto d = runtime::destroy_impl(created->dir, created->state); !d)
      log::warn(d.error().message());
    engine.networking().detach(rec.id);  // a replica leaves its published port at once
    bool again = should_restart(rec, exit, plan.dir);
    if (again) ++exit.restart_count;
    (void)engine.containers().save_exit(rec.id, exit);
    if (!again) break;
    // docker's back-off: doubling from 100 ms, reset after a run of 10 s or more.
    if (std::chrono::steady_clock::now() - started_at >= std::chrono::seconds(10)) delay_ms = 100;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    delay_ms = std::min(delay_ms * 2, 10000);
    // A stop or rm during the back-off ends the policy.
    if (marker_present(plan.dir, kStopRequested) || marker_present(plan.dir, kRemoving)) {
      exit.stopped_by_user = true;
      (void)engine.containers().save_exit(rec.id, exit);
      break;
    }
  }
  if (rec.auto_remove && !marker_present(plan.dir, kRemoving)) {
    engine.networking().release(rec);
    (void)engine.store().remove_snapshot(rec.id);
    (void)engine.containers().release_name(rec.name);
  } else {
    (void)unlink((plan.dir + "/" + kMonitorPid).c_str());
  }
  _exit(0);
}

}  // namespace forker::engine::detail
