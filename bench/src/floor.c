/* floor: the physical floor of a container start, for bench/run.sh.
 *
 * The least a runtime must do for `run` of /bin/true with runc's default namespaces: clone into
 * new mount, pid, uts, ipc and network namespaces, make the mounts private, bind the rootfs,
 * pivot_root into it, mount /proc, exec /bin/true, wait. No config parsing, no /dev, no
 * cgroup, no capabilities, no seccomp.
 *
 * usage: floor ROOTFS [--cgroup]
 * --cgroup also creates a memory cgroup (v1 /sys/fs/cgroup/memory or v2 /sys/fs/cgroup), moves
 * the child into it before it goes on, and removes it afterwards: the price of one cgroup
 * migration on this host (on cgroup v1 the first cgroup.procs write waits for an RCU grace
 * period).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *rootfs;
static int sync_fd[2] = {-1, -1};

static void fail(const char *what) {
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    _exit(126);
}

static int child(void *arg) {
    (void)arg;
    if (sync_fd[0] >= 0) {
        char c;
        close(sync_fd[1]);
        if (read(sync_fd[0], &c, 1) != 1) _exit(125);
        close(sync_fd[0]);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("make / private");
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) fail("bind rootfs");
    if (chdir(rootfs) != 0) fail("chdir rootfs");
    if (syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root");
    if (umount2(".", MNT_DETACH) != 0) fail("umount old root");
    if (chdir("/") != 0) fail("chdir /");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) fail("mount /proc");
    char *const argv[] = {"/bin/true", NULL};
    char *const envp[] = {"PATH=/bin", NULL};
    execve(argv[0], argv, envp);
    fail("execve /bin/true");
    return 0;
}

static char stack[64 * 1024] __attribute__((aligned(16)));

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: floor ROOTFS [--cgroup]\n");
        return 2;
    }
    rootfs = argv[1];
    int use_cgroup = argc > 2 && strcmp(argv[2], "--cgroup") == 0;
    char cg[256] = "";
    if (use_cgroup) {
        const char *base = access("/sys/fs/cgroup/memory", F_OK) == 0 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup";
        snprintf(cg, sizeof cg, "%s/floor-%d", base, (int)getpid());
        if (mkdir(cg, 0755) != 0) fail("mkdir cgroup");
        if (pipe2(sync_fd, O_CLOEXEC) != 0) fail("pipe");
    }
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD;
    pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
    if (pid < 0) fail("clone");
    if (use_cgroup) {
        char path[300], buf[32];
        snprintf(path, sizeof path, "%s/cgroup.procs", cg);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        int n = snprintf(buf, sizeof buf, "%d", (int)pid);
        if (fd < 0 || write(fd, buf, n) != n) fail("cgroup.procs");
        close(fd);
        close(sync_fd[0]);
        if (write(sync_fd[1], "g", 1) != 1) fail("sync");
        close(sync_fd[1]);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) fail("waitpid");
    for (int i = 0; use_cgroup && i < 100 && rmdir(cg) != 0 && errno == EBUSY; ++i) usleep(1000);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
