/* sysprobe: makes one raw system call and prints what came back, for the
 * seccomp tests of capsa-runtime (built static by the tests with gcc).
 *
 *   sysprobe [--trap] [--thread] ABI NR [ARG...]
 *
 * ABI is native (x86_64 syscall), x32 (NR | __X32_SYSCALL_BIT) or i386
 * (int 0x80, up to five arguments). Numbers may be decimal or 0x-hex; "-1"
 * is all ones. Prints "ret=R errno=E". --trap installs a SIGSYS handler
 * that prints "sigsys nr=N arch=0xA" (SCMP_ACT_TRAP); --thread makes the
 * call in a second thread, then prints "main alive" (SCMP_ACT_KILL_THREAD
 * ends only that thread). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long nr;
static unsigned long a[6];
static int abi; /* 0 native, 1 x32, 2 i386 */

static void on_sigsys(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)ctx;
    char buf[96];
    int n = snprintf(buf, sizeof buf, "sigsys nr=%d arch=0x%x\n", si->si_syscall, si->si_arch);
    write(1, buf, n);
}

static long call(void) {
    if (abi == 2) {
        long ret;
        __asm__ volatile("int $0x80"
                         : "=a"(ret)
                         : "a"(nr), "b"(a[0]), "c"(a[1]), "d"(a[2]), "S"(a[3]), "D"(a[4])
                         : "memory");
        if ((int)ret < 0 && (int)ret > -4096) {
            errno = -(int)ret;
            return -1;
        }
        return (int)ret;
    }
    long n = abi == 1 ? (nr | 0x40000000L) : nr;
    return syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void *probe(void *unused) {
    (void)unused;
    errno = 0;
    long ret = call();
    printf("ret=%ld errno=%d\n", ret, ret == -1 ? errno : 0);
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv) {
    int trap = 0, thread = 0, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--trap") == 0)
            trap = 1;
        else if (strcmp(argv[i], "--thread") == 0)
            thread = 1;
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: sysprobe [--trap] [--thread] native|x32|i386 NR [ARG...]\n");
        return 2;
    }
    abi = strcmp(argv[i], "x32") == 0 ? 1 : strcmp(argv[i], "i386") == 0 ? 2 : 0;
    nr = strtol(argv[i + 1], NULL, 0);
    for (int j = 0; j < 6 && i + 2 + j < argc; j++)
        a[j] = strtoull(argv[i + 2 + j], NULL, 0);
    if (trap) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigsys;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &sa, NULL);
    }
    if (thread) {
        pthread_t t;
        pthread_create(&t, NULL, probe, NULL);
        pthread_join(t, NULL);
        printf("main alive\n");
        return 0;
    }
    probe(NULL);
    return 0;
}
