/* spawntime: times whole commands, interleaved, for bench/cli-run.sh.
 *
 * Each command is started directly (clone(CLONE_VM|CLONE_VFORK) + execve, what posix_spawn does;
 * no shell) and timed with CLOCK_MONOTONIC from before the clone to the return of wait4. Every
 * iteration runs each command once, in an order that rotates by one per iteration.
 *
 * spawntime is a child subreaper: processes that outlive the command (podman's conmon, and what
 * conmon starts) come back to it. After each command it waits, untimed, until every such
 * descendant is gone, so no sample overlaps the leftovers of the previous one; that wait is
 * reported as tail_ns, and the leftovers' rusage as tail_maxrss_kb / tail_minflt (wait4's
 * figures of the command itself only cover the descendants it reaped).
 *
 * A command can run in a private mount namespace (MODE ns: unshare CLONE_NEWNS, make / rslave)
 * and also with /sys/fs/cgroup/unified detached there (MODE hide): crun refuses a cgroup-v1
 * host whose cgroup2 mount has a controller. The host's mounts are untouched.
 *
 * Peak RSS: a vfork child that execs is charged the peak RSS of the mm it leaves (the kernel's
 * exec_mmap keeps the high-water mark), so spawntime is linked static to keep that floor small;
 * /bin/true as one of the commands shows it.
 *
 * usage: spawntime [-n ITERS] [-w WARMUP] [-t TIMEOUT_S] [-o CSV] [-l LOADCSV]
 *                  NAME MODE PATH [ARG...] --- NAME MODE PATH [ARG...] [--- ...]
 *   MODE  direct | ns | hide
 * CSV rows (no header): iter,pos,name,ns,status,maxrss_kb,minflt,tail_ns,tail_maxrss_kb,tail_minflt,load1
 * LOADCSV, one row: seconds,load1_start,load1_end,busy_share,own_share,cpus (busy: the machine's
 * CPU time not idle or iowait; own: spawntime's children's CPU time, both shares of all CPUs).
 * A failing sample prints its status and the first 600 bytes of its output to stderr.
 * Exit status: 0, or 1 if any sample failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum mode { DIRECT, NS, HIDE };

struct cmd {
    const char *name;
    enum mode mode;
    char **argv; /* NULL-terminated, in place in main's argv */
};

struct spawn_args {
    const struct cmd *c;
    int failed_errno; /* written by the child (shared VM) when anything before execve fails */
};

static struct cmd cmds[16];
static int ncmds;
static int out_fd = -1; /* memfd: the command's stdout and stderr */
static int null_fd = -1;
static volatile sig_atomic_t alarmed;
static char stack[64 * 1024] __attribute__((aligned(64)));

static void die(const char *what) {
    fprintf(stderr, "spawntime: %s: %s\n", what, strerror(errno));
    exit(2);
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double load1(void) {
    double l = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = 0;
        fclose(f);
    }
    return l;
}

/* Total and busy (all but idle and iowait) jiffies of the machine. */
static void cpu_jiffies(unsigned long long *total, unsigned long long *busy) {
    unsigned long long v[8] = {0};
    *total = *busy = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; ++i) *total += v[i];
        *busy = *total - v[3] - v[4];
    }
    fclose(f);
}

static int child_main(void *p) {
    struct spawn_args *a = p;
    if (a->c->mode != DIRECT) {
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) goto fail;
        if (a->c->mode == HIDE && umount2("/sys/fs/cgroup/unified", MNT_DETACH) != 0 && errno != EINVAL &&
            errno != ENOENT)
            goto fail;
    }
    if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) goto fail;
    execv(a->c->argv[0], a->c->argv);
fail:
    a->failed_errno = errno;
    _exit(127);
}

static void on_alarm(int sig) {
    (void)sig;
    alarmed = 1;
}

struct sample {
    long long ns, tail_ns;
    int status;
    long maxrss_kb, minflt, tail_maxrss_kb, tail_minflt;
};

static int timeout_s = 120;

/* Waits for PID, or any child when PID is -1, with the timeout. On timeout PID is SIGKILLed
 * (and waited for); for -1 the wait gives up with ETIMEDOUT and the leftovers are left to the
 * next sample's wait. */
static pid_t wait_child(pid_t pid, int *st, struct rusage *ru) {
    pid_t r;
    alarmed = 0;
    alarm(timeout_s);
    while ((r = wait4(pid, st, __WALL, ru)) < 0 && errno == EINTR) {
        if (!alarmed) continue;
        alarmed = 0;
        if (pid < 0) {
            fprintf(stderr, "spawntime: leftover processes still running after %d s\n", timeout_s);
            errno = ETIMEDOUT;
            break;
        }
        fprintf(stderr, "spawntime: timeout after %d s, killing %d\n", timeout_s, (int)pid);
        kill(pid, SIGKILL);
        alarm(timeout_s);
    }
    alarm(0);
    return r;
}

static struct sample run_one(const struct cmd *c) {
    struct sample s = {0};
    s.status = -1;
    if (ftruncate(out_fd, 0) != 0) die("ftruncate");
    lseek(out_fd, 0, SEEK_SET);
    struct spawn_args a = {c, 0};
    long long t0 = now_ns();
    pid_t pid = clone(child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    if (pid < 0) die("clone");
    struct rusage ru = {0};
    int st = 0;
    if (wait_child(pid, &st, &ru) != pid) die("wait4");
    s.ns = now_ns() - t0;
    if (a.failed_errno) {
        fprintf(stderr, "spawntime: %s: cannot start %s: %s\n", c->name, c->argv[0], strerror(a.failed_errno));
        return s;
    }
    s.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    s.maxrss_kb = ru.ru_maxrss;
    s.minflt = ru.ru_minflt;
    /* Leftover descendants (reparented to us, the subreaper): wait until none is left. A living
     * descendant always has an ancestor that is our child, so ECHILD means all are gone. */
    long long t1 = now_ns();
    pid_t r;
    while ((r = wait_child(-1, &st, &ru)) > 0) {
        if (ru.ru_maxrss > s.tail_maxrss_kb) s.tail_maxrss_kb = ru.ru_maxrss;
        s.tail_minflt += ru.ru_minflt;
    }
    if (errno != ECHILD && errno != ETIMEDOUT) die("wait4 (leftovers)");
    s.tail_ns = now_ns() - t1;
    if (s.status != 0) {
        char buf[601];
        ssize_t n = pread(out_fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = 0;
        fprintf(stderr, "spawntime: %s: exit %d:", c->name, s.status);
        for (char **p = c->argv; *p; ++p) fprintf(stderr, " %s", *p);
        fprintf(stderr, "\n  %s\n", buf);
    }
    return s;
}

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

int main(int argc, char **argv) {
    int iters = 20, warmup = 1;
    const char *csv_path = NULL, *load_path = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] && !argv[i][2]; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "spawntime: %s needs a value\n", argv[i]);
            return 2;
        }
        switch (argv[i][1]) {
        case 'n': iters = atoi(argv[i + 1]); break;
        case 'w': warmup = atoi(argv[i + 1]); break;
        case 't': timeout_s = atoi(argv[i + 1]); break;
        case 'o': csv_path = argv[i + 1]; break;
        case 'l': load_path = argv[i + 1]; break;
        default: fprintf(stderr, "spawntime: unknown option %s\n", argv[i]); return 2;
        }
    }
    /* NAME MODE PATH [ARG...] separated by "---"; each argv is NULL-terminated in place. */
    while (i < argc) {
        if (ncmds == (int)(sizeof cmds / sizeof cmds[0]) || i + 2 >= argc) {
            fprintf(stderr, "spawntime: bad command list (NAME MODE PATH [ARG...] --- ...)\n");
            return 2;
        }
        struct cmd *c = &cmds[ncmds++];
        c->name = argv[i];
        const char *m = argv[i + 1];
        c->mode = !strcmp(m, "hide") ? HIDE : !strcmp(m, "ns") ? NS : DIRECT;
        if (c->mode == DIRECT && strcmp(m, "direct")) {
            fprintf(stderr, "spawntime: %s: mode %s is not direct, ns or hide\n", c->name, m);
            return 2;
        }
        c->argv = &argv[i + 2];
        for (i += 2; i < argc && strcmp(argv[i], "---"); ++i) {
        }
        if (i < argc) argv[i++] = NULL; /* the separator ends this argv */
    }
    if (ncmds == 0) {
        fprintf(stderr, "usage: spawntime [-n N] [-w W] [-t S] [-o CSV] [-l LOADCSV] NAME MODE PATH [ARG...] "
                        "[--- NAME MODE PATH [ARG...]]...\n");
        return 2;
    }
    FILE *csv = csv_path ? fopen(csv_path, "a") : stdout;
    if (!csv) die(csv_path);
    if ((out_fd = memfd_create("out", MFD_CLOEXEC)) < 0 || (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        die("setup");
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: wait4 returns EINTR */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) die("PR_SET_CHILD_SUBREAPER");

    unsigned long long tot0, busy0, tot1, busy1;
    double l0 = load1();
    long long t0 = now_ns();
    cpu_jiffies(&tot0, &busy0);
    int failed = 0;
    for (int it = -warmup; it < iters; ++it) {
        for (int pos = 0; pos < ncmds; ++pos) {
            const struct cmd *c = &cmds[(pos + (it < 0 ? 0 : it)) % ncmds];
            struct sample s = run_one(c);
            if (s.status != 0) failed = 1;
            if (it < 0) continue; /* warm-up */
            fprintf(csv, "%d,%d,%s,%lld,%d,%ld,%ld,%lld,%ld,%ld,%.2f\n", it, pos, c->name, s.ns, s.status,
                    s.maxrss_kb, s.minflt, s.tail_ns, s.tail_maxrss_kb, s.tail_minflt, load1());
            fflush(csv);
        }
    }
    cpu_jiffies(&tot1, &busy1);
    if (load_path) {
        FILE *f = fopen(load_path, "a");
        if (!f) die(load_path);
        struct rusage self;
        getrusage(RUSAGE_CHILDREN, &self);
        double hz = (double)sysconf(_SC_CLK_TCK);
        double total_s = (tot1 - tot0) / hz, busy_s = (busy1 - busy0) / hz;
        double ours = tv(self.ru_utime) + tv(self.ru_stime);
        fprintf(f, "%.3f,%.2f,%.2f,%.3f,%.3f,%ld\n", (now_ns() - t0) / 1e9, l0, load1(),
                total_s > 0 ? busy_s / total_s : 0, total_s > 0 ? ours / total_s : 0, sysconf(_SC_NPROCESSORS_ONLN));
        fclose(f);
    }
    if (csv != stdout) fclose(csv);
    return failed;
}
