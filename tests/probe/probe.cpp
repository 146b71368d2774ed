// A static probe that runs inside containers and reports what it sees, one query per run:
//   probe cat FILE | ls DIR | stat PATH | isatty FD | cwd | hostname | domainname | id |
//   status (/proc/self/status) | mountinfo | rlimit N | env | pid | sleep SECS | exit N |
//   write PATH TEXT | mknod-null PATH | getcwd-errno | fds | readlink PATH | umask |
//   uname (machine) | mknod-char PATH MAJOR MINOR |
//   winsize FD | trap FILE | selfkill N | exes | open-write PATH | hold-exe PATH |
//   alloc MIB | spin MS | open-read PATH |
//   escape attempts, each a raw syscall printing "ok" or "ERR what: errno text":
//   unshare FLAGS | clone3 | socket FAMILY TYPE | personality N | mknod-open PATH c|b MAJ MIN |
//   init-module | finit-module PATH | mount FSTYPE TARGET [DATA] | ptrace PID | setns PATH |
//   keyring (the session keyring's serial) | key-describe SERIAL
// Output is plain text on stdout; failures print "ERR <errno text>" and exit 1.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

extern char** environ;

namespace {

int err(const char* what) {
  std::printf("ERR %s: %s\n", what, strerror(errno));
  return 1;
}

int cat(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return err(path);
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, static_cast<size_t>(n), stdout);
  close(fd);
  return n < 0 ? err(path) : 0;
}

int rlimit_of(const char* name) {
  struct {
    const char* n;
    int r;
  } kLimits[] = {{"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC},
                 {"RLIMIT_CORE", RLIMIT_CORE},     {"RLIMIT_STACK", RLIMIT_STACK},
                 {"RLIMIT_CPU", RLIMIT_CPU},       {"RLIMIT_AS", RLIMIT_AS}};
  for (auto& l : kLimits) {
    if (strcmp(l.n, name) != 0) continue;
    rlimit r{};
    if (getrlimit(l.r, &r) < 0) return err("getrlimit");
    std::printf("%llu %llu\n", static_cast<unsigned long long>(r.rlim_cur),
                static_cast<unsigned long long>(r.rlim_max));
    return 0;
  }
  std::printf("ERR unknown limit\n");
  return 1;
}

// "ok" when RC >= 0, else "ERR WHAT: errno text" (exit 1).
int report(long rc, const char* what) {
  if (rc < 0) return err(what);
  std::printf("ok\n");
  return 0;
}

unsigned long number(const char* s) { return std::strtoul(s, nullptr, 0); }

// Escape attempts: raw syscalls, so the errno is the kernel's (or seccomp's), not libc's.
int escape_query(const std::string& q, int argc, char** argv) {
  const char* a = argc > 2 ? argv[2] : "";
  const char* b = argc > 3 ? argv[3] : "";
  if (q == "unshare") return report(syscall(SYS_unshare, number(a)), "unshare");
  if (q == "clone3") {
    clone_args args{};
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
    return report(pid, "clone3");
  }
  if (q == "socket") {
    long fd = syscall(SYS_socket, static_cast<int>(number(a)), static_cast<int>(number(b)), 0);
    return report(fd, "socket");
  }
  if (q == "personality") return report(syscall(SYS_personality, number(a)), "personality");
  if (q == "mknod-open") {
    // mknod-open PATH c|b MAJOR MINOR: makes the node, then opens it read-write.
    mode_t type = b[0] == 'b' ? S_IFBLK : S_IFCHR;
    unsigned maj = argc > 4 ? static_cast<unsigned>(number(argv[4])) : 0;
    unsigned min = argc > 5 ? static_cast<unsigned>(number(argv[5])) : 0;
    if (syscall(SYS_mknodat, AT_FDCWD, a, type | 0666, makedev(maj, min)) < 0) return err("mknod");
    std::printf("mknod ok\n");
    return report(syscall(SYS_openat, AT_FDCWD, a, O_RDWR | O_CLOEXEC), "open");
  }
  if (q == "init-module") return report(syscall(SYS_init_module, nullptr, 0UL, ""), "init_module");
  if (q == "finit-module") {
    int fd = open(a, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err(a);
    return report(syscall(SYS_finit_module, fd, "", 0), "finit_module");
  }
  if (q == "mount") {
    const char* data = argc > 4 ? argv[4] : nullptr;
    return report(syscall(SYS_mount, a, b, a, 0UL, data), "mount");
  }
  if (q == "ptrace")
    return report(syscall(SYS_ptrace, PTRACE_ATTACH, static_cast<pid_t>(number(a)), 0, 0),
                  "ptrace");
  if (q == "setns") {
    int fd = open(a, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err("open");
    return report(syscall(SYS_setns, fd, 0), "setns");
  }
  if (q == "keyring") {
    // KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3), without creating one.
    long id = syscall(SYS_keyctl, 0, -3, 0);
    if (id < 0) return err("keyctl");
    std::printf("%ld\n", id);
    return 0;
  }
  if (q == "key-describe") {
    char buf[512] = {};
    long n = syscall(SYS_keyctl, 6 /* KEYCTL_DESCRIBE */,
                     static_cast<long>(std::strtol(a, nullptr, 0)), buf, sizeof buf - 1);
    if (n < 0) return err("keyctl describe");
    std::printf("%s\n", buf);
    return 0;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: probe QUERY [ARGS]\n");
    return 2;
  }
  std::string q = argv[1];
  const char* a = argc > 2 ? argv[2] : "";
  if (q == "cat") return cat(a);
  if (q == "ls") {
    DIR* d = opendir(a);
    if (!d) return err(a);
    while (dirent* e = readdir(d))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) std::printf("%s\n", e->d_name);
    closedir(d);
    return 0;
  }
  if (q == "stat") {
    struct stat st {};
    if (lstat(a, &st) < 0) return err(a);
    const char* type = S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" :
                       S_ISCHR(st.st_mode) ? "char" : S_ISBLK(st.st_mode) ? "block" :
                       S_ISLNK(st.st_mode) ? "symlink" : S_ISFIFO(st.st_mode) ? "fifo" : "other";
    std::printf("%s %o %u %u %u:%u\n", type, st.st_mode & 07777, st.st_uid, st.st_gid,
                major(st.st_rdev), minor(st.st_rdev));
    return 0;
  }
  if (q == "readlink") {
    char buf[4096];
    ssize_t n = readlink(a, buf, sizeof buf - 1);
    if (n < 0) return err(a);
    buf[n] = 0;
    std::printf("%s\n", buf);
    return 0;
  }
  if (q == "isatty") {
    std::printf("%s\n", isatty(atoi(a)) ? "yes" : "no");
    return 0;
  }
  if (q == "cwd") {
    char buf[4096];
    if (!getcwd(buf, sizeof buf)) return err("getcwd");
    std::printf("%s\n", buf);
    return 0;
  }
  if (q == "hostname" || q == "domainname") {
    utsname u{};
    uname(&u);
    std::printf("%s\n", q == "hostname" ? u.nodename : u.domainname);
    return 0;
  }
  if (q == "id") {
    gid_t groups[64];
    int n = getgroups(64, groups);
    std::printf("uid=%u gid=%u euid=%u egid=%u groups=", getuid(), getgid(), geteuid(), getegid());
    for (int i = 0; i < n; ++i) std::printf("%s%u", i ? "," : "", groups[i]);
    std::printf("\n");
    return 0;
  }
  if (q == "status") return cat("/proc/self/status");
  if (q == "mountinfo") return cat("/proc/self/mountinfo");
  if (q == "rlimit") return rlimit_of(a);
  if (q == "env") {
    for (char** e = environ; *e; ++e) std::printf("%s\n", *e);
    return 0;
  }
  if (q == "pid") {
    std::printf("%d\n", getpid());
    return 0;
  }
  if (q == "umask") {
    mode_t m = umask(0);
    std::printf("%04o\n", m);
    return 0;
  }
  if (q == "fds") {
    DIR* d = opendir("/proc/self/fd");
    if (!d) return err("/proc/self/fd");
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (atoi(e->d_name) == dirfd(d)) continue;
      char path[320], target[4096];
      snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
      ssize_t n = readlink(path, target, sizeof target - 1);
      target[n < 0 ? 0 : n] = 0;
      std::printf("%s %s\n", e->d_name, target);
    }
    closedir(d);
    return 0;
  }
  if (q == "sleep") {
    fflush(stdout);
    sleep(static_cast<unsigned>(atoi(a)));
    return 0;
  }
  if (q == "pause") {
    // Reports readiness, then waits for a signal; exits 0 on SIGTERM (PID 1 needs a handler).
    signal(SIGTERM, [](int) { _exit(0); });
    std::printf("ready\n");
    fflush(stdout);
    for (;;) pause();
  }
  if (q == "exit") return atoi(a);
  if (q == "write") {
    int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return err(a);
    const char* text = argc > 3 ? argv[3] : "";
    if (write(fd, text, strlen(text)) < 0) return err(a);
    close(fd);
    std::printf("ok\n");
    return 0;
  }
  if (q == "mknod") {
    if (mknod(a, S_IFCHR | 0666, makedev(1, 3)) < 0) return err(a);
    std::printf("ok\n");
    return 0;
  }
  if (q == "open") {
    int fd = open(a, O_RDWR);
    if (fd < 0) return err(a);
    std::printf("ok\n");
    return 0;
  }
  if (q == "uname") {
    // The machine field, which the personality (LINUX32) changes.
    utsname u{};
    if (uname(&u) < 0) return err("uname");
    std::printf("%s\n", u.machine);
    return 0;
  }
  if (q == "mknod-char") {
    // probe mknod-char PATH MAJOR MINOR: a char device node of any number, mode 0666.
    unsigned maj = argc > 3 ? static_cast<unsigned>(atoi(argv[3])) : 0;
    unsigned min = argc > 4 ? static_cast<unsigned>(atoi(argv[4])) : 0;
    if (mknod(a, S_IFCHR | 0666, makedev(maj, min)) < 0) return err(a);
    std::printf("ok\n");
    return 0;
  }
  if (q == "winsize") {
    // probe winsize FD: the terminal's window size as "ROWS COLS" (TIOCGWINSZ).
    winsize ws{};
    if (ioctl(atoi(a), TIOCGWINSZ, &ws) < 0) return err("TIOCGWINSZ");
    std::printf("%u %u\n", ws.ws_row, ws.ws_col);
    return 0;
  }
  if (q == "trap") {
    // probe trap FILE: handles every catchable signal by appending its number to FILE (one per
    // line); SIGTERM is recorded and then ends the probe with 0. Prints "ready" first.
    static const char* trap_file;
    trap_file = a;
    struct sigaction sa {};
    sa.sa_handler = [](int sig) {
      int fd = open(trap_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      char buf[16];
      int n = snprintf(buf, sizeof buf, "%d\n", sig);
      if (fd >= 0) {
        ssize_t ignored = write(fd, buf, static_cast<size_t>(n));
        (void)ignored;
        close(fd);
      }
      if (sig == SIGTERM) _exit(0);
    };
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < 32; ++s)
      if (s != SIGKILL && s != SIGSTOP && s != SIGCHLD) sigaction(s, &sa, nullptr);
    std::printf("ready\n");
    fflush(stdout);
    for (;;) pause();
  }
  if (q == "selfkill") {
    // probe selfkill N: sends itself signal N (a pid namespace's init cannot: run it without).
    fflush(stdout);
    kill(getpid(), atoi(a));
    for (int i = 0; i < 100; ++i) usleep(10000);
    std::printf("ERR still alive\n");
    return 1;
  }
  if (q == "exes") {
    // probe exes: "PID TARGET" of /proc/PID/exe for every process this probe can see.
    DIR* d = opendir("/proc");
    if (!d) return err("/proc");
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      char path[320], target[4096];
      snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
      ssize_t n = readlink(path, target, sizeof target - 1);
      if (n < 0) continue;  // kernel threads, or gone meanwhile
      target[n] = 0;
      std::printf("%s %s\n", e->d_name, target);
    }
    closedir(d);
    return 0;
  }
  if (q == "open-write") {
    // probe open-write PATH: open(O_WRONLY) without creating or truncating; "ok" or ERR.
    int fd = open(a, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return err(a);
    close(fd);
    std::printf("ok\n");
    return 0;
  }
  if (q == "hold-exe") {
    // probe hold-exe PATH: CVE-2019-5736's move. Opens PATH (say /proc/1/exe) with O_PATH and
    // prints "held" (or ERR), then for up to 10 s tries to reopen that file for writing through
    // /proc/self/fd. Prints "WRITABLE" the moment it could (it writes nothing), else "never".
    int fd = open(a, O_PATH | O_CLOEXEC);
    if (fd < 0) return err(a);
    std::printf("held\n");
    fflush(stdout);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    for (int i = 0; i < 1000; ++i) {
      int w = open(path, O_WRONLY | O_CLOEXEC);
      if (w >= 0) {
        close(w);
        std::printf("WRITABLE\n");
        return 0;
      }
      usleep(10000);
    }
    std::printf("never\n");
    return 0;
  }
  if (int rc = escape_query(q, argc, argv); rc >= 0) return rc;
  if (q == "alloc") {
    // probe alloc MIB: mallocs MIB MiB and touches every page, so all of it is charged to the
    // memory cgroup; "ok" when it survived.
    size_t size = static_cast<size_t>(atol(a)) << 20;
    char* p = static_cast<char*>(malloc(size));
    if (!p) return err("malloc");
    for (size_t i = 0; i < size; i += 4096) p[i] = 1;
    std::printf("ok\n");
    return 0;
  }
  if (q == "spin") {
    // probe spin MS: a busy loop for MS milliseconds of wall time (the CPU quota tests).
    timespec start{}, now{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    long ms = atol(a);
    volatile unsigned long n = 0;
    do {
      for (int i = 0; i < 100000; ++i) n = n + 1;
      clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
    std::printf("ok\n");
    return 0;
  }
  if (q == "open-read") {
    // probe open-read PATH: open(O_RDONLY); "ok" or ERR (device cgroup "r" access).
    int fd = open(a, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err(a);
    close(fd);
    std::printf("ok\n");
    return 0;
  }
  std::printf("ERR unknown query %s\n", q.c_str());
  return 2;
}
