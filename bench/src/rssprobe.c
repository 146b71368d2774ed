/* rssprobe: runs its arguments and prints "MAXRSS_KB MINFLT" of that process (wait4's rusage:
 * the process and every descendant it reaped), for bench/run.sh's peak-RSS measure.
 *
 * Why not wait4 in benchd itself: Linux charges the peak RSS of the mm a process leaves at
 * execve to that process (exec_mmap: setmax_mm_hiwater_rss), and a vfork/posix_spawn child
 * leaves its parent's mm, so benchd would see max(its own ~3 MiB, the runtime's). This static
 * probe is small; its own peak (the floor of the figure) is reported as "true" in the report.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 127;
    pid_t pid = vfork();
    if (pid == 0) {
        execv(argv[1], argv + 1);
        _exit(127);
    }
    if (pid < 0) return 127;
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid) return 127;
    printf("%ld %ld\n", ru.ru_maxrss, ru.ru_minflt);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
