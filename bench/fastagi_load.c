/* A FastAGI load generator that behaves like Asterisk (bench/agi_latency.py compiles and runs it).
 *
 * Each call: a new TCP connection to 127.0.0.1:PORT, the AGI header (pre-built by the Python
 * bench, one per call), then every command the server sends is answered like Asterisk does
 * (`200 result=0` to EXEC, `200 result=1` to everything else) until the server closes the
 * connection. The answer time is measured from the connect() to that close, as Asterisk would
 * see it. A call is "ok" when the server set CT_STATUS=ok and a non-empty CT_QUEUE (through
 * EXEC MSet or SET VARIABLE); anything else (refused, reset, wrong variables) is a failed call.
 *
 *   fastagi_load PORT HEADERS MODE N CALLS OUT
 *     HEADERS  file of CALLS headers, each ending with an empty line, separated by a NUL byte
 *     MODE     "open": start call i at i/N seconds (N calls/s, open loop);
 *              "closed": keep N calls in flight (saturation)
 *     OUT      one line per call: "<answer time in microseconds> <1 ok|0 failed> <what>"
 *
 * One thread, epoll, non-blocking sockets: little CPU per call, so that on a 2-core machine the
 * figure is the server's answer time rather than the load generator's own scheduling (the
 * Python client of bench/agi_latency.py, --client python, needs about three times the CPU).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUF 8192

struct call {
    int fd;
    long idx;
    double t0;
    char in[BUF];
    size_t inlen;
    const char *out;        /* header still to send */
    size_t outlen;
    int status_ok, queue_ok, connected;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int port, epfd;
static FILE *out;
static long done_calls, failed_calls;

/* Note CT_STATUS / CT_QUEUE from one "NAME=value" (MSet) or "NAME value" pair. */
static void note(struct call *c, const char *name, size_t nlen, const char *val, size_t vlen) {
    if (nlen == 9 && memcmp(name, "CT_STATUS", 9) == 0)
        c->status_ok = (vlen == 2 && memcmp(val, "ok", 2) == 0);
    else if (nlen == 8 && memcmp(name, "CT_QUEUE", 8) == 0)
        c->queue_ok = vlen > 0;
}

/* Asterisk's reply to one command line (without its newline). */
static const char *answer(struct call *c, const char *line, size_t len) {
    if (len > 11 && memcmp(line, "EXEC MSet \"", 11) == 0) {
        const char *p = line + 11, *end = line + len;
        if (end > p && end[-1] == '"') end--;
        while (p < end) {
            const char *comma = memchr(p, ',', end - p);
            const char *stop = comma ? comma : end;
            const char *eq = memchr(p, '=', stop - p);
            if (eq) note(c, p, eq - p, eq + 1, stop - eq - 1);
            p = stop + 1;
        }
        return "200 result=0\n";
    }
    if (len > 13 && memcmp(line, "SET VARIABLE ", 13) == 0) {
        const char *p = line + 13, *end = line + len;
        const char *sp = memchr(p, ' ', end - p);
        if (sp) {
            const char *v = sp + 1;
            size_t vlen = end - v;
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') { v++; vlen -= 2; }
            note(c, p, sp - p, v, vlen);
        }
        return "200 result=1\n";
    }
    return "200 result=1\n";
}

static void finish(struct call *c, int ok, const char *what) {
    double el = now() - c->t0;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (!ok) failed_calls++;
    done_calls++;
    fprintf(out, "%.0f %d %s\n", el * 1e6, ok, what);
}

static int start(struct call *c, long idx, const char *hdr, size_t hlen) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(c, 0, sizeof *c);
    c->idx = idx;
    c->t0 = now();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { perror("socket"); exit(2); }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->out = hdr;
    c->outlen = hlen;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
        finish(c, 0, "connect-refused");
        return 0;
    }
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 1;
}

static void send_pending(struct call *c) {
    while (c->outlen) {
        ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            finish(c, 0, "send-failed");
            return;
        }
        c->out += n;
        c->outlen -= n;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Returns 1 while the call goes on. */
static int on_event(struct call *c, unsigned events) {
    if ((events & EPOLLOUT) && c->outlen) {
        send_pending(c);
        if (c->fd < 0) return 0;
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return 1;
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->inlen, BUF - 1 - c->inlen, 0);
        if (n == 0) {                       /* the server closed: the AGI is over */
            int ok = c->status_ok && c->queue_ok;
            finish(c, ok, ok ? "ok" : "wrong-variables");
            return 0;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return 1;
            finish(c, 0, errno == ECONNRESET ? "reset" : "recv-failed");
            return 0;
        }
        c->inlen += n;
        char *p = c->in, *nl;
        while ((nl = memchr(p, '\n', c->in + c->inlen - p)) != NULL) {
            const char *reply = answer(c, p, nl - p);
            if (send(c->fd, reply, strlen(reply), MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
                finish(c, 0, "send-failed");
                return 0;
            }
            p = nl + 1;
        }
        c->inlen = c->in + c->inlen - p;
        memmove(c->in, p, c->inlen);
        if (c->inlen >= BUF - 1) { finish(c, 0, "line-too-long"); return 0; }
    }
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s PORT HEADERS open|closed N CALLS OUT\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int open_loop = strcmp(argv[3], "open") == 0;
    double n = atof(argv[4]);
    long calls = atol(argv[5]);
    out = fopen(argv[6], "w");
    if (!out) { perror(argv[6]); return 2; }

    int hf = open(argv[2], O_RDONLY);
    struct stat st;
    if (hf < 0 || fstat(hf, &st) < 0) { perror(argv[2]); return 2; }
    char *data = malloc(st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(hf, data + got, st.st_size - got);
        if (r <= 0) { perror("read"); return 2; }
        got += r;
    }
    close(hf);
    const char **hdr = malloc(sizeof(char *) * calls);
    size_t *hlen = malloc(sizeof(size_t) * calls);
    long nh = 0;
    for (char *p = data; p < data + got && nh < calls; nh++) {
        char *z = memchr(p, '\0', data + got - p);
        size_t len = z ? (size_t)(z - p) : (size_t)(data + got - p);
        hdr[nh] = p;
        hlen[nh] = len;
        p += len + 1;
    }
    if (nh < calls) { fprintf(stderr, "only %ld headers for %ld calls\n", nh, calls); return 2; }

    long slots = open_loop ? 4096 : (long)n;
    struct call *pool = calloc(slots, sizeof *pool);
    for (long i = 0; i < slots; i++) pool[i].fd = -1;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event evs[256];
    long next = 0, inflight = 0;
    double t_start = now() + (open_loop ? 0.01 : 0), t_end;
    long late = 0;

    /* open loop: a timer at the next start time (nanosecond resolution, no spinning) */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);
    int armed = 0;

    while (done_calls < calls) {
        /* start what is due */
        while (next < calls) {
            if (open_loop && now() < t_start + next / n) break;
            if (!open_loop && inflight >= slots) break;
            long s = 0;
            while (s < slots && pool[s].fd >= 0) s++;
            if (s == slots) { late++; break; }          /* more than 4096 calls in flight */
            if (start(&pool[s], next, hdr[next], hlen[next])) inflight++;
            next++;
        }
        if (open_loop && next < calls && !armed) {
            double due = t_start + next / n;
            struct itimerspec its = {0};
            its.it_value.tv_sec = (time_t)due;
            its.it_value.tv_nsec = (long)((due - (time_t)due) * 1e9);
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
            armed = 1;
        }
        int k = epoll_wait(epfd, evs, 256, -1);
        if (k < 0 && errno != EINTR) { perror("epoll_wait"); return 2; }
        for (int i = 0; i < k; i++) {
            struct call *c = evs[i].data.ptr;
            if (c == NULL) {                            /* the timer: a start is due */
                unsigned long long ticks;
                if (read(tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) perror("timerfd");
                armed = 0;
                continue;
            }
            if (c->fd < 0) continue;
            if (!on_event(c, evs[i].events)) inflight--;
        }
    }
    t_end = now();
    fclose(out);
    fprintf(stderr, "%ld calls in %.3f s, %ld failed%s\n", done_calls, t_end - t_start, failed_calls,
            late ? " (some starts delayed: too many in flight)" : "");
    return 0;
}
