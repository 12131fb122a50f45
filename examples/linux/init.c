/* /init of the test kernels' initramfs: proves that userspace runs, then powers the board off.
 *
 * Every line it prints is deterministic (no times, no addresses), so the console of a run on the
 * emulator can be compared line for line with one on QEMU. Static glibc, classic FPU code: on the
 * e500v2 kernel the floating-point line goes through the kernel's math emulation.
 *
 * Built with -DINIT_REPORTS_CPUS (the SMP kernels' /init) it also prints how many CPUs are online,
 * runs a child pinned to each of them, and drains the console before powering off. The uniprocessor
 * kernels' /init is built without it, so their binary (and console) stays what it was.
 */
#ifdef INIT_REPORTS_CPUS
#define _GNU_SOURCE     /* sched_setaffinity, sched_getcpu, CPU_SET */
#include <sched.h>
#include <termios.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static int count_lines(const char *path, const char *prefix, char *first_match, size_t match_size)
{
    FILE *file = fopen(path, "r");
    char line[256];
    int lines = 0;

    if (file == NULL) {
        printf("init: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (first_match != NULL)
        first_match[0] = '\0';
    while (fgets(line, sizeof line, file) != NULL) {
        lines++;
        if (first_match != NULL && first_match[0] == '\0' && strncmp(line, prefix, strlen(prefix)) == 0) {
            line[strcspn(line, "\n")] = '\0';
            size_t length = strlen(line) < match_size - 1 ? strlen(line) : match_size - 1;
            memcpy(first_match, line, length);  /* a longer line is cut: only its start is shown */
            first_match[length] = '\0';
        }
    }
    fclose(file);
    return lines;
}

/* Integer work with a known answer: the number of primes below 20000 is 2262. */
static int count_primes(int limit)
{
    static unsigned char composite[20000];
    int primes = 0;

    for (int n = 2; n < limit; n++) {
        if (composite[n])
            continue;
        primes++;
        for (int multiple = 2 * n; multiple < limit; multiple += n)
            composite[multiple] = 1;
    }
    return primes;
}

/* Floating-point work (fadd/fmul/fdiv): Newton's iteration for sqrt(2). volatile keeps the
 * compiler from folding it at build time. */
static long sqrt2_micro(void)
{
    volatile double two = 2.0;
    double x = 1.0;

    for (int i = 0; i < 6; i++)
        x = (x + two / x) / 2.0;
    return (long)(x * 1000000.0);
}

#ifdef INIT_REPORTS_CPUS
/* The CPU count the C library sees, then one child per CPU, pinned to it, which exits with the number
 * of the CPU it ran on: every CPU runs userspace, and the scheduler moves a task where it is told. */
static void report_cpus(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);

    printf("init: %ld CPUs online\n", online);
    for (long cpu = 0; cpu < online && cpu < CPU_SETSIZE; cpu++) {
        int status = 0;
        pid_t child = fork();

        if (child == 0) {
            cpu_set_t only;

            CPU_ZERO(&only);
            CPU_SET(cpu, &only);
            if (sched_setaffinity(0, sizeof only, &only) != 0)
                _exit(255);
            _exit(sched_getcpu());
        }
        if (child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status))
            printf("init: child pinned to CPU %ld ran on CPU %d\n", cpu, WEXITSTATUS(status));
        else
            printf("init: fork/wait failed: %s\n", strerror(errno));
    }
}
#endif

int main(void)
{
    struct utsname names;
    char cpu_line[128];
    int status = 0;
    pid_t child;

    setvbuf(stdout, NULL, _IONBF, 0);
    printf("init: hello from userspace\n");
    printf("init: pid %d\n", (int)getpid());
    if (uname(&names) == 0)
        printf("init: uname %s %s %s\n", names.sysname, names.release, names.machine);
    printf("init: primes below 20000: %d\n", count_primes(20000));
    printf("init: sqrt(2) * 1e6 = %ld\n", sqrt2_micro());

    if (mount("proc", "/proc", "proc", 0, NULL) != 0)
        printf("init: mount /proc: %s\n", strerror(errno));
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0)
        printf("init: mount /dev: %s\n", strerror(errno));
    printf("init: /proc/cpuinfo has %d lines\n", count_lines("/proc/cpuinfo", "cpu", cpu_line,
                                                              sizeof cpu_line));
    printf("init: %s\n", cpu_line);
    printf("init: /proc/interrupts has %d lines\n", count_lines("/proc/interrupts", "", NULL, 0));

    /* A child process: fork, exit status through wait. */
    child = fork();
    if (child == 0)
        _exit(42);
    if (child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status))
        printf("init: child %d exited with %d\n", (int)child, WEXITSTATUS(status));
    else
        printf("init: fork/wait failed: %s\n", strerror(errno));
#ifdef INIT_REPORTS_CPUS
    report_cpus();
#endif

    /* Through the tty layer: a fresh open of the console device, not the inherited descriptor. */
    int console = open("/dev/console", O_WRONLY | O_NOCTTY);
    if (console >= 0) {
        static const char message[] = "init: written to /dev/console\n";
        if (write(console, message, sizeof message - 1) != (ssize_t)(sizeof message - 1))
            printf("init: short write to /dev/console\n");
        close(console);
    } else {
        printf("init: open /dev/console: %s\n", strerror(errno));
    }

    printf("init: powering off\n");
#ifdef INIT_REPORTS_CPUS
    /* With several CPUs the UART's transmit interrupt can be served on another CPU while this one
     * powers the board off, cutting the console short: wait until the tty has sent everything. */
    tcdrain(STDOUT_FILENO);
#endif
    sync();
    reboot(RB_POWER_OFF);
    printf("init: reboot(RB_POWER_OFF) returned: %s\n", strerror(errno));
    for (;;)
        pause();
}
