/* test-guest-memtest.c: the test guest's memory tester (built static by
 * scripts/build-test-guest, run by its init with xapid.memtest=MIB[,RATE]).
 *
 * It fills MIB MiB of anonymous memory with a pattern that depends on each
 * page's index and on a pass number, and, with RATE > 0, keeps rewriting
 * the pages in order with the next pass's pattern at about RATE MiB/s
 * (RATE 0: the memory stays as filled, an idle guest). Every page's
 * content is known at any moment: pages before the writer's position hold
 * the current pass, the others the one before. So a check finds any page
 * that a migration lost or damaged, byte for byte, with the guest still
 * rewriting memory.
 *
 * It reads commands from the serial port, one per line:
 *   memcheck  prints XAPID-GUEST-MEMCHECK ok|bad <bad pages> <pages> <pass>
 *             <sum>, sum being a 64-bit FNV-1a hash of the region (equal
 *             before and after a migration of an idle guest),
 * and prints XAPID-GUEST-MEMTEST ready <MIB> <RATE> once filled. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define WORDS (PAGE / 8)

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static void page_fill(uint64_t *p, size_t index, uint64_t pass)
{
    uint64_t x = mix(index * 0x9e3779b97f4a7c15ULL + pass * 0xbf58476d1ce4e5b9ULL + 1);
    for (size_t j = 0; j < WORDS; j++) {
        x += 0x9e3779b97f4a7c15ULL;
        p[j] = x ^ (x >> 29);
    }
}

static int page_ok(const uint64_t *p, size_t index, uint64_t pass)
{
    uint64_t want[WORDS];
    page_fill(want, index, pass);
    return memcmp(p, want, PAGE) == 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint8_t *mem;
static size_t pages;
static uint64_t pass;  /* the pass the writer is writing */
static size_t pos;     /* the next page it writes */
static int tty = -1;

static void say(const char *line)
{
    dprintf(tty, "%s\r\n", line);
}

static void check(void)
{
    size_t bad = 0, first = 0;
    uint64_t sum = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < pages; i++) {
        uint64_t *p = (uint64_t *)(mem + i * PAGE);
        uint64_t want = i < pos ? pass : pass - 1;
        if (!page_ok(p, i, want)) {
            if (bad++ == 0)
                first = i;
        }
        for (size_t j = 0; j < WORDS; j++) {
            sum ^= p[j];
            sum *= 0x100000001b3ULL;
        }
    }
    char line[160];
    snprintf(line, sizeof line, "XAPID-GUEST-MEMCHECK %s %zu %zu %llu %016llx first=%zu",
             bad ? "bad" : "ok", bad, pages, (unsigned long long)pass,
             (unsigned long long)sum, first);
    say(line);
}

/* Reads what the serial port has (waiting up to timeout_ms) and runs the
 * complete lines. */
static void commands(int timeout_ms)
{
    static char buf[256];
    static size_t len;
    struct pollfd pfd = { .fd = tty, .events = POLLIN };
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return;
    ssize_t n = read(tty, buf + len, sizeof buf - 1 - len);
    if (n <= 0)
        return;
    len += (size_t)n;
    char *nl;
    while ((nl = memchr(buf, '\n', len)) || (nl = memchr(buf, '\r', len))) {
        *nl = 0;
        if (strstr(buf, "memcheck"))
            check();
        size_t used = (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, len - used);
        len -= used;
    }
    if (len == sizeof buf - 1)
        len = 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    size_t mib = strtoul(argv[1], NULL, 10);
    double rate = argc > 2 ? strtod(argv[2], NULL) : 0;
    tty = open("/dev/ttyS0", O_RDWR | O_NOCTTY);
    if (tty < 0)
        return 1;
    struct termios t;
    if (tcgetattr(tty, &t) == 0) {
        t.c_lflag &= ~(ECHO | ECHONL);
        tcsetattr(tty, TCSANOW, &t);
    }
    pages = mib * 256;
    mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) {
        say("XAPID-GUEST-MEMTEST nomem");
        return 1;
    }
    mlock(mem, pages * PAGE);
    for (size_t i = 0; i < pages; i++)
        page_fill((uint64_t *)(mem + i * PAGE), i, 0);
    pass = 1;
    pos = 0;
    char line[96];
    snprintf(line, sizeof line, "XAPID-GUEST-MEMTEST ready %zu %g", mib, rate);
    say(line);
    if (rate <= 0)
        for (;;)
            commands(-1);
    /* Rewrites in slices of 64 pages (256 KiB), pacing to rate. */
    double start = now();
    double written = 0;
    for (;;) {
        for (int k = 0; k < 64; k++) {
            page_fill((uint64_t *)(mem + pos * PAGE), pos, pass);
            if (++pos == pages) {
                pos = 0;
                pass++;
            }
        }
        written += 64.0 * PAGE / (1 << 20);
        double ahead = written / rate - (now() - start);
        commands(ahead > 0 ? (int)(ahead * 1000) : 0);
        if (now() - start > 10) { /* forget old history: pace over the recent past */
            start = now();
            written = 0;
        }
    }
}
