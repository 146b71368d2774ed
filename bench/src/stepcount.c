/* stepcount: exact user-space instruction counts of one process, by address, for bench/run.sh.
 *
 * valgrind 3.19 (Debian 12) does not know openat2, so the container init that forker-oci
 * clones fails under callgrind (valgrind follows every fork); the machine has no PMU for perf.
 * This single-steps the traced process with ptrace instead. Processes it clones are not traced
 * (no PTRACE_O_TRACE* options) and run at full speed, so this counts the runtime's own
 * process only: the part of `run` that forker's code pays for.
 *
 * usage: stepcount [-n MAX] OUT -- PROG ARGS...   writes "ADDR COUNT" lines (hex address) to
 * OUT, prints the total on stderr and exits with PROG's status. After MAX instructions (if
 * given) it stops counting, writes "# capped" first and lets PROG run on untraced: single
 * stepping costs ~40 µs an instruction here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS (1u << 22)
static uint64_t keys[SLOTS];
static uint64_t counts[SLOTS];

static void add(uint64_t rip) {
    uint32_t h = (uint32_t)((rip * 0x9E3779B97F4A7C15ull) >> 42) & (SLOTS - 1);
    while (keys[h] != 0 && keys[h] != rip) h = (h + 1) & (SLOTS - 1);
    keys[h] = rip;
    counts[h]++;
}

int main(int argc, char **argv) {
    uint64_t max = UINT64_MAX;
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        max = strtoull(argv[2], NULL, 10);
        argv += 2;
        argc -= 2;
    }
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: stepcount [-n MAX] OUT -- PROG ARGS...\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execv(argv[3], argv + 3);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0); /* the SIGTRAP after execve */
    uint64_t total = 0;
    int sig = 0, capped = 0;
    for (;;) {
        if (total >= max) {
            capped = 1;
            ptrace(PTRACE_DETACH, pid, 0, sig);
            while (waitpid(pid, &st, 0) == pid && !WIFEXITED(st) && !WIFSIGNALED(st)) {
            }
            break;
        }
        if (ptrace(PTRACE_SINGLESTEP, pid, 0, sig) != 0) break;
        if (waitpid(pid, &st, 0) != pid) break;
        if (WIFEXITED(st) || WIFSIGNALED(st)) break;
        sig = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
        struct user_regs_struct regs;
        if (ptrace(PTRACE_GETREGS, pid, 0, &regs) != 0) break;
        add(regs.rip);
        total++;
    }
    FILE *f = fopen(argv[1], "w");
    if (!f) return 2;
    if (capped) fprintf(f, "# capped\n");
    for (uint32_t i = 0; i < SLOTS; ++i)
        if (keys[i]) fprintf(f, "%llx %llu\n", (unsigned long long)keys[i], (unsigned long long)counts[i]);
    fclose(f);
    fprintf(stderr, "stepcount: %llu instructions%s\n", (unsigned long long)total, capped ? " (capped)" : "");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
