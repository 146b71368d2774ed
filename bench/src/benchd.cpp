// benchd: the timing driver of bench/run.sh.
//
// Spawns each runtime process itself (clone(CLONE_VM|CLONE_VFORK), like posix_spawn, then execve;
// no shell), times it with CLOCK_MONOTONIC from before the clone to the return of wait4, and
// keeps wait4's rusage: ru_maxrss and ru_minflt cover the runtime process and every descendant
// it reaped itself (the kernel reports RUSAGE_BOTH to wait4).
//
// Every runtime can be run inside a private mount namespace ("ns"): the spawned child unshares
// CLONE_NEWNS, makes / rslave and, for "hide", detaches /sys/fs/cgroup/unified before execve,
// so crun sees a pure cgroup-v1 host (it refuses hybrid hosts). The host's mounts are untouched.
// The same path without the umount is used for the other runtimes, so every runtime pays the
// same wrapper cost; the "direct" variants measure without it.
//
// Iterations interleave the runtimes in an order that rotates by one every iteration. One CSV
// row per sample: measure,iter,pos,runtime,ns,status,maxrss_kb,minflt,load1.
//
// Usage: benchd [--csv FILE] [--load-csv FILE] [--iters N] [--warmup N] [--root DIR] [--rootfs DIR]
//               [--timeout SEC] [--rss-probe PATH]
//               --rt NAME=KIND:MODE:PATH ...  MEASURE [ARGS]
//   KIND  oci (a runc-compatible CLI), floor / floorcg (bench/src/floor.c, floorcg adds --cgroup),
//         plain (exec PATH without arguments)
//   MODE  direct | ns | hide
//   MEASURE  run BUNDLE | rss BUNDLE (run through --rss-probe PATH) | lifecycle BUNDLE | exec BUNDLE | seq BUNDLE COUNT | conc BUNDLE COUNT
//            | version | once -- ARGS (first --rt only; prints exit status)
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <string>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace {

enum class Kind { oci, floor, floorcg, plain };
enum class Mode { direct, ns, hide };

struct Runtime {
    std::string name;
    Kind kind;
    Mode mode;
    std::string path;
    std::string root; // --root for oci runtimes
    std::string tag;  // in container ids: ids (and so cgroup paths) differ between runtimes
};

struct Sample {
    long long ns = 0;
    int status = -1;
    long maxrss_kb = 0;
    long minflt = 0;
};

struct SpawnArgs {
    const Runtime* rt;
    char* const* argv;
    int out_fd;
    int err_fd;
    int failed_errno; // written by the child (shared VM) if anything before execve fails
};

std::vector<Runtime> g_rts;
FILE* g_csv = nullptr;
FILE* g_load_csv = nullptr;
std::string g_work = "/run/forker-bench";
int g_out = -1; // memfd for the child's stdout
int g_err = -1; // memfd for the child's stderr
int g_null = -1;
int g_timeout = 60;
std::string g_stub; // --rss-probe: prepended to every argv of the rss measure; prints maxrss, minflt
volatile sig_atomic_t g_alarm = 0;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "benchd: %s: %s\n", what, std::strerror(errno));
    std::exit(2);
}

long long now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

double load1() {
    double l = 0;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &l) != 1) l = 0;
        std::fclose(f);
    }
    return l;
}

// Total and busy jiffies of the machine (busy = all but idle and iowait).
void cpu_jiffies(unsigned long long& total, unsigned long long& busy) {
    total = busy = 0;
    FILE* f = std::fopen("/proc/stat", "r");
    if (!f) return;
    unsigned long long v[10] = {};
    if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                    &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
        for (int i = 0; i < 8; ++i) total += v[i];
        busy = total - v[3] - v[4];
    }
    std::fclose(f);
}

int child_main(void* p) {
    auto* a = static_cast<SpawnArgs*>(p);
    if (a->rt->mode != Mode::direct) {
        if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
            a->failed_errno = errno;
            _exit(127);
        }
        if (a->rt->mode == Mode::hide && umount2("/sys/fs/cgroup/unified", MNT_DETACH) != 0 && errno != EINVAL &&
            errno != ENOENT) {
            a->failed_errno = errno;
            _exit(127);
        }
    }
    if (dup2(g_null, 0) < 0 || dup2(a->out_fd, 1) < 0 || dup2(a->err_fd, 2) < 0) {
        a->failed_errno = errno;
        _exit(127);
    }
    execv(a->argv[0], a->argv);
    a->failed_errno = errno;
    _exit(127);
}

alignas(64) char g_stack[64 * 1024];

// Starts argv under rt's mode; returns the pid (or -1).
pid_t start(const Runtime& rt, const std::vector<std::string>& args, int out_fd, int err_fd) {
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    SpawnArgs a{&rt, argv.data(), out_fd, err_fd, 0};
    pid_t pid = clone(child_main, g_stack + sizeof g_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    if (pid < 0) die("clone");
    if (a.failed_errno != 0) {
        int st;
        waitpid(pid, &st, 0);
        errno = a.failed_errno;
        std::fprintf(stderr, "benchd: %s: cannot exec %s: %s\n", rt.name.c_str(), args[0].c_str(),
                     std::strerror(errno));
        return -1;
    }
    return pid;
}

Sample finish(pid_t pid, long long t0) {
    Sample s;
    if (pid < 0) return s;
    rusage ru{};
    int st = 0;
    g_alarm = 0;
    alarm(g_timeout);
    pid_t r;
    while ((r = wait4(pid, &st, 0, &ru)) < 0 && errno == EINTR) {
        if (g_alarm) {
            kill(pid, SIGKILL);
            g_alarm = 0;
        }
    }
    alarm(0);
    s.ns = now_ns() - t0;
    if (r < 0) die("wait4");
    s.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    s.maxrss_kb = ru.ru_maxrss;
    s.minflt = ru.ru_minflt;
    return s;
}

void reset(int fd) {
    if (ftruncate(fd, 0) != 0) die("ftruncate");
    lseek(fd, 0, SEEK_SET);
}

std::string slurp(int fd) {
    std::string s;
    char buf[4096];
    lseek(fd, 0, SEEK_SET);
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, n);
    return s;
}

// Runs one command to completion and times it.
Sample run_one(const Runtime& rt, const std::vector<std::string>& args) {
    reset(g_out);
    reset(g_err);
    long long t0 = now_ns();
    pid_t pid = start(rt, args, g_out, g_err);
    Sample s = finish(pid, t0);
    if (s.status != 0) {
        std::string err = slurp(g_err);
        std::fprintf(stderr, "benchd: %s: exit %d:", rt.name.c_str(), s.status);
        for (auto& a : args) std::fprintf(stderr, " %s", a.c_str());
        std::fprintf(stderr, "\n  %s\n", err.substr(0, 600).c_str());
    }
    return s;
}

void reap_strays() {
    int st;
    while (waitpid(-1, &st, WNOHANG | __WALL) > 0) {
    }
}

std::vector<std::string> oci(const Runtime& rt, std::initializer_list<std::string> rest) {
    std::vector<std::string> v{rt.path, "--root", rt.root};
    v.insert(v.end(), rest);
    return v;
}

void record(const char* measure, int iter, int pos, const Runtime& rt, const Sample& s) {
    if (iter < 0) return; // warm-up
    std::fprintf(g_csv, "%s,%d,%d,%s,%lld,%d,%ld,%ld,%.2f\n", measure, iter, pos, rt.name.c_str(), s.ns, s.status,
                 s.maxrss_kb, s.minflt, load1());
    std::fflush(g_csv);
}

std::string g_rootfs; // for floor runtimes: --rootfs, else BUNDLE/rootfs

std::vector<std::string> run_args(const Runtime& rt, const std::string& bundle, const std::string& id) {
    switch (rt.kind) {
    case Kind::oci:
        return oci(rt, {"run", "--bundle", bundle, id});
    case Kind::floor:
        return {rt.path, g_rootfs};
    case Kind::floorcg:
        return {rt.path, g_rootfs, "--cgroup"};
    case Kind::plain:
        return {rt.path};
    }
    return {};
}

int parse_pid(const std::string& json) {
    auto p = json.find("\"pid\"");
    if (p == std::string::npos) return -1;
    p = json.find(':', p);
    if (p == std::string::npos) return -1;
    return std::atoi(json.c_str() + p + 1);
}

void wait_gone(int pid) {
    if (pid <= 0) return;
    int st;
    if (waitpid(pid, &st, __WALL) == pid) return;
    // Not our child (or already reaped): poll until it is gone or a zombie.
    for (int i = 0; i < 5000; ++i) {
        char path[64], buf[512];
        std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            const char* rp = std::strrchr(buf, ')');
            if (rp && rp[1] && rp[2] == 'Z') return;
        }
        usleep(1000);
    }
}

using Order = std::vector<const Runtime*>;
Order rotated(int iter) {
    Order o;
    int n = static_cast<int>(g_rts.size());
    for (int j = 0; j < n; ++j) o.push_back(&g_rts[(j + std::max(iter, 0)) % n]);
    return o;
}

struct LoadMark {
    const char* measure;
    long long t0;
    double l0;
    unsigned long long tot0, busy0;
    rusage self0;
};

LoadMark mark_begin(const char* measure) {
    LoadMark m{measure, now_ns(), load1(), 0, 0, {}};
    cpu_jiffies(m.tot0, m.busy0);
    getrusage(RUSAGE_CHILDREN, &m.self0);
    return m;
}

double tv(const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; }

void mark_end(const LoadMark& m) {
    if (!g_load_csv) return;
    unsigned long long tot, busy;
    cpu_jiffies(tot, busy);
    rusage self{};
    getrusage(RUSAGE_CHILDREN, &self);
    double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    double total_s = (tot - m.tot0) / hz;
    double busy_s = (busy - m.busy0) / hz;
    double ours = tv(self.ru_utime) + tv(self.ru_stime) - tv(m.self0.ru_utime) - tv(m.self0.ru_stime);
    std::fprintf(g_load_csv, "%s,%.3f,%.2f,%.2f,%.3f,%.3f,%ld\n", m.measure, (now_ns() - m.t0) / 1e9, m.l0, load1(),
                 total_s > 0 ? busy_s / total_s : 0, total_s > 0 ? ours / total_s : 0, sysconf(_SC_NPROCESSORS_ONLN));
    std::fflush(g_load_csv);
}

int g_iters = 20;
int g_warmup = 2;

void measure_run(const std::string& bundle, const char* name = "run") {
    if (g_rootfs.empty()) g_rootfs = bundle + "/rootfs";
    auto m = mark_begin(name);
    for (int it = -g_warmup; it < g_iters; ++it) {
        auto order = rotated(it);
        for (size_t pos = 0; pos < order.size(); ++pos) {
            const Runtime& rt = *order[pos];
            std::string id = "br-" + std::to_string(getpid()) + "-" + rt.tag + "-" + std::to_string(it + g_warmup);
            auto args = run_args(rt, bundle, id);
            if (!g_stub.empty()) args.insert(args.begin(), g_stub);
            Sample s = run_one(rt, args);
            if (!g_stub.empty()) { // the probe's figures, not the probe's own
                s.maxrss_kb = s.minflt = 0;
                std::sscanf(slurp(g_out).c_str(), "%ld %ld", &s.maxrss_kb, &s.minflt);
            }
            record(name, it, static_cast<int>(pos), rt, s);
            reap_strays();
        }
    }
    mark_end(m);
}

void measure_version() {
    auto m = mark_begin("version");
    for (int it = -g_warmup; it < g_iters; ++it) {
        auto order = rotated(it);
        for (size_t pos = 0; pos < order.size(); ++pos) {
            const Runtime& rt = *order[pos];
            record("version", it, static_cast<int>(pos), rt, run_one(rt, {rt.path, "--version"}));
        }
    }
    mark_end(m);
}

void measure_lifecycle(const std::string& bundle) {
    auto m = mark_begin("lifecycle");
    for (int it = -g_warmup; it < g_iters; ++it) {
        auto order = rotated(it);
        for (size_t pos = 0; pos < order.size(); ++pos) {
            const Runtime& rt = *order[pos];
            int p = static_cast<int>(pos);
            std::string id = "bl-" + std::to_string(getpid()) + "-" + rt.tag + "-" + std::to_string(it + g_warmup);
            record("create", it, p, rt, run_one(rt, oci(rt, {"create", "--bundle", bundle, id})));
            Sample st = run_one(rt, oci(rt, {"state", id}));
            record("state", it, p, rt, st);
            int pid = parse_pid(slurp(g_out));
            record("start", it, p, rt, run_one(rt, oci(rt, {"start", id})));
            record("kill", it, p, rt, run_one(rt, oci(rt, {"kill", id, "KILL"})));
            wait_gone(pid);
            record("delete", it, p, rt, run_one(rt, oci(rt, {"delete", id})));
            reap_strays();
        }
    }
    mark_end(m);
}

void measure_exec(const std::string& bundle) {
    std::vector<int> pids;
    std::vector<std::string> ids;
    for (auto& rt : g_rts) {
        std::string id = "be-" + std::to_string(getpid()) + "-" + rt.tag;
        ids.push_back(id);
        if (run_one(rt, oci(rt, {"create", "--bundle", bundle, id})).status != 0) std::exit(1);
        run_one(rt, oci(rt, {"state", id}));
        pids.push_back(parse_pid(slurp(g_out)));
        if (run_one(rt, oci(rt, {"start", id})).status != 0) std::exit(1);
    }
    auto m = mark_begin("exec");
    for (int it = -g_warmup; it < g_iters; ++it) {
        auto order = rotated(it);
        for (size_t pos = 0; pos < order.size(); ++pos) {
            const Runtime& rt = *order[pos];
            size_t k = static_cast<size_t>(&rt - g_rts.data());
            record("exec", it, static_cast<int>(pos), rt, run_one(rt, oci(rt, {"exec", ids[k], "/bin/true"})));
            reap_strays();
        }
    }
    mark_end(m);
    for (size_t k = 0; k < g_rts.size(); ++k) {
        run_one(g_rts[k], oci(g_rts[k], {"kill", ids[k], "KILL"}));
        wait_gone(pids[k]);
        run_one(g_rts[k], oci(g_rts[k], {"delete", ids[k]}));
    }
    reap_strays();
}

// COUNT runs of /bin/true one after the other (seq) or all at once (conc); one wall-time sample.
void measure_many(const std::string& bundle, int count, bool concurrent) {
    if (g_rootfs.empty()) g_rootfs = bundle + "/rootfs";
    const char* name = concurrent ? "conc" : "seq";
    auto m = mark_begin(name);
    for (int it = -g_warmup; it < g_iters; ++it) {
        auto order = rotated(it);
        for (size_t pos = 0; pos < order.size(); ++pos) {
            const Runtime& rt = *order[pos];
            std::string base = std::string("b") + name[0] + "-" + std::to_string(getpid()) + "-" + rt.tag + "-" +
                               std::to_string(it + g_warmup) + "-";
            Sample total{0, 0, 0, 0};
            long long t0 = now_ns();
            auto fold = [&](const Sample& s) {
                if (s.status != 0) total.status = s.status;
                total.maxrss_kb = std::max(total.maxrss_kb, s.maxrss_kb);
                total.minflt += s.minflt;
            };
            if (concurrent) {
                std::vector<pid_t> pids;
                for (int k = 0; k < count; ++k)
                    pids.push_back(start(rt, run_args(rt, bundle, base + std::to_string(k)), g_null, g_null));
                for (pid_t p : pids) fold(finish(p, t0));
            } else {
                for (int k = 0; k < count; ++k) {
                    long long t = now_ns();
                    fold(finish(start(rt, run_args(rt, bundle, base + std::to_string(k)), g_null, g_null), t));
                }
            }
            total.ns = now_ns() - t0;
            if (total.status != 0) std::fprintf(stderr, "benchd: %s: %s: a run failed\n", rt.name.c_str(), name);
            record(name, it, static_cast<int>(pos), rt, total);
            reap_strays();
        }
    }
    mark_end(m);
}

Runtime parse_rt(const std::string& spec) {
    // NAME=KIND:MODE:PATH
    auto eq = spec.find('=');
    auto c1 = spec.find(':', eq);
    auto c2 = spec.find(':', c1 + 1);
    if (eq == std::string::npos || c1 == std::string::npos || c2 == std::string::npos) {
        std::fprintf(stderr, "benchd: bad --rt %s\n", spec.c_str());
        std::exit(2);
    }
    Runtime rt;
    rt.name = spec.substr(0, eq);
    std::string kind = spec.substr(eq + 1, c1 - eq - 1), mode = spec.substr(c1 + 1, c2 - c1 - 1);
    rt.path = spec.substr(c2 + 1);
    rt.kind = kind == "floor"     ? Kind::floor
              : kind == "floorcg" ? Kind::floorcg
              : kind == "plain"   ? Kind::plain
                                  : Kind::oci;
    rt.mode = mode == "hide" ? Mode::hide : mode == "ns" ? Mode::ns : Mode::direct;
    return rt;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> rest;
    std::string csv_path = "/dev/stdout", load_path;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "benchd: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return std::string(argv[++i]);
        };
        if (a == "--csv") csv_path = next();
        else if (a == "--load-csv") load_path = next();
        else if (a == "--iters") g_iters = std::atoi(next().c_str());
        else if (a == "--warmup") g_warmup = std::atoi(next().c_str());
        else if (a == "--root") g_work = next();
        else if (a == "--timeout") g_timeout = std::atoi(next().c_str());
        else if (a == "--rt") g_rts.push_back(parse_rt(next()));
        else if (a == "--rss-probe") g_stub = next();
        else if (a == "--rootfs") g_rootfs = next();
        else {
            for (; i < argc; ++i) rest.emplace_back(argv[i]);
        }
    }
    if (rest.empty() || g_rts.empty()) {
        std::fprintf(stderr, "usage: benchd [options] --rt NAME=KIND:MODE:PATH ... MEASURE [ARGS]\n");
        return 2;
    }
    g_csv = std::fopen(csv_path.c_str(), "a");
    if (!g_csv) die(csv_path.c_str());
    if (!load_path.empty() && !(g_load_csv = std::fopen(load_path.c_str(), "a"))) die(load_path.c_str());
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_alarm = 1; };
    sigaction(SIGALRM, &sa, nullptr); // no SA_RESTART: wait4 returns EINTR
    // Container inits orphaned by create are reparented here, so kill can wait for them and no
    // zombie is left with a pid 1 that may not reap.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    mkdir(g_work.c_str(), 0700);
    for (size_t k = 0; k < g_rts.size(); ++k) {
        g_rts[k].root = g_work + "/" + g_rts[k].name;
        g_rts[k].tag = std::to_string(k);
    }
    if ((g_out = memfd_create("out", MFD_CLOEXEC)) < 0 || (g_err = memfd_create("err", MFD_CLOEXEC)) < 0 ||
        (g_null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        die("setup");
    // The child dup2s these onto 0-2; dup2 clears CLOEXEC on the copies.

    const std::string& m = rest[0];
    auto arg = [&](size_t k) {
        if (rest.size() <= k) {
            std::fprintf(stderr, "benchd: %s: missing argument\n", m.c_str());
            std::exit(2);
        }
        return rest[k];
    };
    if (m == "run") measure_run(arg(1));
    else if (m == "rss") {
        if (g_stub.empty()) {
            std::fprintf(stderr, "benchd: rss needs --rss-probe PATH\n");
            return 2;
        }
        measure_run(arg(1), "rss");
    }
    else if (m == "lifecycle") measure_lifecycle(arg(1));
    else if (m == "exec") measure_exec(arg(1));
    else if (m == "seq") measure_many(arg(1), std::atoi(arg(2).c_str()), false);
    else if (m == "conc") measure_many(arg(1), std::atoi(arg(2).c_str()), true);
    else if (m == "version") measure_version();
    else if (m == "once") {
        std::vector<std::string> args(rest.begin() + 1, rest.end());
        if (!args.empty() && args[0] == "--") args.erase(args.begin());
        args.insert(args.begin(), g_rts[0].path);
        Sample s = run_one(g_rts[0], args);
        std::printf("%d %lld %ld\n", s.status, s.ns, s.maxrss_kb);
        reap_strays();
        return s.status;
    } else {
        std::fprintf(stderr, "benchd: unknown measure %s\n", m.c_str());
        return 2;
    }
    reap_strays();
    return 0;
}
