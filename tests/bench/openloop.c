/*
 * tally bench - openloop: an open-loop HTTP/1.1 load generator.
 *
 * wrk keeps each connection in a closed loop: it sends the next request
 * when the answer to the last one came, so a slow answer delays the
 * requests behind it instead of making them wait, and their waiting is
 * never measured (coordinated omission). Here requests follow a fixed
 * schedule instead: request k is due at start + k / RATE, on connection
 * k mod CONNS, whatever the answers do. A request due while its
 * connection still waits for an earlier answer waits in line, and its
 * latency runs from the time it was due, as an independent client's
 * would. (wrk2 does the same; it is not packaged in Debian 12, and
 * h2load's --rps measures from the moment a request is sent.)
 *
 * Usage: openloop [-c CONNS] [-r RATE] [-d SECONDS] [-w WARMUP]
 *                 [-m get|post|post-keyed] [-k KEY_PREFIX]
 *                 [-z COUNTERS -n NAME_PREFIX -s SEED -o FILE] URL
 *   URL is http://127.0.0.1:PORT/PATH (numeric IPv4 only: loopback).
 *   Requests due during the WARMUP seconds are sent but not measured.
 *   After the last due time it waits up to 5 s for the answers left.
 *   post-keyed: request k's key is 32 hex digits of a hash of k (as a
 *   client's random UUID spreads its keys over the whole key index),
 *   then KEY_PREFIX and k.
 *   -r 0: a closed loop instead, as wrk's: each connection sends its
 *   next request when the last one's answer came, until the end; its
 *   latency runs from the moment it was sent.
 *   -z COUNTERS: request k goes to PATH/NAME_PREFIX<r>, r in 1..COUNTERS
 *   drawn by a Zipf(1.0) law (r with weight 1/r) from a hash of SEED
 *   and k, so the same SEED and k give the same counter from run to
 *   run. FILE gets one line per counter that was sent requests,
 *   tab-separated: its name, its 200 answers and its requests left
 *   without an answer (warm-up included), for a check of what each
 *   counter gained.
 *
 * Prints one line, tab-separated after the word "bench-result":
 *   duration_us requests ok errors p50_us p99_us p999_us
 *   offered_rate sent_rate lag_p99_us lag_max_us unanswered
 *   all_ok all_unanswered
 * where requests, ok (200 answers) and the percentiles count the
 * measured requests only; sent_rate is the measured requests over the
 * measured seconds; lag is how late a request went out compared with
 * the later of its due time and its connection becoming free: the
 * generator's own delay, which should stay far below the latencies it
 * reports (if not, the machine cannot hold the rate). errors counts
 * answers other than 200, failed connections and unanswered requests.
 * all_ok and all_unanswered count the warm-up's requests too (for a
 * check of what a counter gained): 200 answers, and requests sent
 * without an answer (the server may have done them).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_NS	(5 * 1000000000LL)
#define BUF_SIZE	16384
#define USAGE		"usage: openloop [-c conns] [-r rate] [-d s] [-w s] " \
	"[-m get|post|post-keyed] [-k prefix] [-z counters -n name-prefix " \
	"-s seed -o file] URL"

struct conn {
	int		 fd;
	long long	 next;		/* its next request's number m */
	long long	 due_upto;	/* requests m < due_upto are due */
	int		 busy;		/* a request is out */
	long long	 sent_due;	/* the due time of the one out */
	long		 sent_rank;	/* its counter (-z), or 0 */
	long long	 free_at;	/* when it last became free */
	size_t		 len;
	char		 buf[BUF_SIZE];
};

static struct sockaddr_in addr;
static char	 host[64], path[1024], prefix[128] = "openloop";
static const char *mode = "get";
static long long	 t0_ns, warm_ns, end_ns;
static int	 nconns = 16, epfd;
static double	 rate = 1000;
static int	 closed;	/* -r 0 */

/* -z: the counters' cumulative weights, and each one's counts */
static long	 ncounters;
static double	*zipf_cdf;
static long long *rank_ok, *rank_unanswered;
static char	 name_prefix[128] = "c";
static unsigned long long seed = 1;

static long long *lat, *lag;
static long long nlat, nlag, cap;
static long long measured, ok, errors, answered_measured;
static long long all_ok, all_failed;	/* warm-up included */

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The due time of global request number k. */
static long long
due_of(long long k)
{
	return t0_ns + (long long)((double)k * 1e9 / rate);
}

static void
die(const char *msg)
{
	fprintf(stderr, "openloop: %s\n", msg);
	exit(2);
}

static int
conn_open(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int	one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	ev.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		die("epoll_ctl");
	c->len = 0;
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static void
record(long long *arr, long long *n, long long v)
{
	if (*n < cap)
		arr[(*n)++] = v;
}

/* The request out on c ended: with an answer (status) or without (0). */
static void
finish(struct conn *c, int status, long long t)
{
	int is_measured = c->sent_due >= warm_ns;

	c->busy = 0;
	c->free_at = t;
	if (status == 200)
		all_ok++;
	else if (status == 0)
		all_failed++;
	if (c->sent_rank > 0 && status == 200)
		rank_ok[c->sent_rank]++;
	else if (c->sent_rank > 0 && status == 0)
		rank_unanswered[c->sent_rank]++;
	if (!is_measured || c->sent_due >= end_ns)
		return;
	if (status == 200)
		ok++;
	else
		errors++;
	if (status != 0) {
		answered_measured++;
		record(lat, &nlat, t - c->sent_due);
	}
}

static struct conn *conns;

/* splitmix64: a well-mixed 64-bit hash of x */
static unsigned long long
mix64(unsigned long long x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Request k's counter, 1..ncounters, Zipf(1.0): the first r whose
 * cumulative weight reaches a uniform draw from (SEED, k). */
static long
zipf_rank(long long k)
{
	double	u = (double)(mix64(seed ^ mix64((unsigned long long)k)) >> 11) *
	    0x1.0p-53 * zipf_cdf[ncounters - 1];
	long	lo = 0, hi = ncounters - 1, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (zipf_cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo + 1;
}

static void
zipf_init(void)
{
	double	sum = 0;
	long	r;

	if ((zipf_cdf = malloc((size_t)ncounters * sizeof(*zipf_cdf))) == NULL ||
	    (rank_ok = calloc((size_t)ncounters + 1, sizeof(*rank_ok))) == NULL ||
	    (rank_unanswered = calloc((size_t)ncounters + 1,
	    sizeof(*rank_unanswered))) == NULL)
		die("out of memory");
	for (r = 1; r <= ncounters; r++) {
		sum += 1.0 / (double)r;
		zipf_cdf[r - 1] = sum;
	}
}

/* Each counter that was sent requests: name, 200s, unanswered. */
static void
write_counts(const char *file)
{
	FILE	*f;
	long	 r;

	if ((f = fopen(file, "w")) == NULL)
		die("cannot write the counts file");
	for (r = 1; r <= ncounters; r++)
		if (rank_ok[r] > 0 || rank_unanswered[r] > 0)
			fprintf(f, "%s%ld\t%lld\t%lld\n", name_prefix, r,
			    rank_ok[r], rank_unanswered[r]);
	if (fclose(f) != 0)
		die("cannot write the counts file");
}

/* Sends connection i's next due request. */
static void
conn_send(int i, long long t)
{
	struct conn	*c = &conns[i];
	char		 req[2048], target[1300];
	int		 n;
	long long	 k = c->next * nconns + i;
	long long	 due = closed ? t : due_of(k);
	ssize_t		 w;

	c->next++;
	c->busy = 1;
	c->sent_due = due;
	c->sent_rank = 0;
	if (ncounters > 0) {
		c->sent_rank = zipf_rank(k);
		snprintf(target, sizeof(target), "%s/%s%ld", path, name_prefix,
		    c->sent_rank);
	} else
		snprintf(target, sizeof(target), "%s", path);
	if (!closed && due >= warm_ns && due < end_ns) {
		measured++;
		record(lag, &nlag, t - (due > c->free_at ? due : c->free_at));
	}
	if (c->fd < 0 && conn_open(c) != 0) {
		/* a failed request; the schedule goes on */
		finish(c, 0, t);
		return;
	}
	if (closed && due >= warm_ns && due < end_ns)
		measured++;
	if (strcmp(mode, "get") == 0)
		n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
		    "\r\n", target, host);
	else if (strcmp(mode, "post") == 0)
		n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: %s\r\n"
		    "Content-Length: 0\r\n\r\n", target, host);
	else
		n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: %s\r\n"
		    "Content-Length: 0\r\nIdempotency-Key: %016llx%016llx-%s-%lld"
		    "\r\n\r\n", target, host, mix64((unsigned long long)k),
		    mix64(~(unsigned long long)k), prefix, k);
	w = send(c->fd, req, (size_t)n, MSG_NOSIGNAL);
	if (w != n) {	/* a fresh request fits a socket buffer whole */
		conn_close(c);
		finish(c, 0, t);
	}
}

/* Parses the answers read on c; returns -1 if the connection must go. */
static int
conn_read(struct conn *c, long long t)
{
	ssize_t	 r;
	char	*end, *p;
	size_t	 head, body;
	int	 status, closing;

	for (;;) {
		r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len - 1, 0);
		if (r == 0)
			return -1;
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		c->len += (size_t)r;
		c->buf[c->len] = '\0';
		while ((end = strstr(c->buf, "\r\n\r\n")) != NULL) {
			head = (size_t)(end - c->buf) + 4;
			if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1 ||
			    !c->busy)
				return -1;
			body = 0;
			closing = 0;
			for (p = c->buf; p < end; p++)
				if (strncasecmp(p, "\r\nContent-Length:", 17) == 0)
					body = strtoul(p + 17, NULL, 10);
				else if (strncasecmp(p, "\r\nConnection: close",
				    19) == 0)
					closing = 1;
			if (c->len < head + body)
				break;
			finish(c, status, t);
			/* the server closes it (lighttpd does after its
			 * keep-alive requests): the next request goes on a
			 * new connection, not on this one as it closes */
			if (closing)
				return -1;
			memmove(c->buf, c->buf + head + body,
			    c->len - head - body);
			c->len -= head + body;
			c->buf[c->len] = '\0';
		}
		if (c->len >= sizeof(c->buf) - 1)
			return -1;
	}
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static long long
pct(long long *arr, long long n, double p)
{
	long long i;

	if (n == 0)
		return 0;
	i = (long long)(p / 100.0 * (double)n);
	return arr[i < n ? i : n - 1];
}

static void
parse_url(const char *url)
{
	const char	*p, *slash;
	char		 ip[32];
	long		 port;

	if (strncmp(url, "http://", 7) != 0)
		die("the URL must start with http://");
	p = url + 7;
	slash = strchr(p, '/');
	if (slash == NULL)
		slash = p + strlen(p);
	if ((size_t)(slash - p) >= sizeof(host))
		die("host too long");
	memcpy(host, p, (size_t)(slash - p));
	host[slash - p] = '\0';
	snprintf(path, sizeof(path), "%s", *slash ? slash : "/");
	if (sscanf(host, "%31[0-9.]:%ld", ip, &port) != 2 || port < 1 ||
	    port > 65535)
		die("the URL's host must be a numeric IPv4 address and a port");
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1)
		die("bad IPv4 address");
}

int
main(int argc, char **argv)
{
	struct epoll_event	 evs[256];
	double			 duration = 8, warmup = 1;
	long long		 next_k = 0, t, deadline, tmo;
	const char		*counts_file = NULL;
	int			 opt, i, n, busy;

	while ((opt = getopt(argc, argv, "c:r:d:w:m:k:z:n:s:o:")) != -1) {
		switch (opt) {
		case 'c': nconns = atoi(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'd': duration = atof(optarg); break;
		case 'w': warmup = atof(optarg); break;
		case 'm': mode = optarg; break;
		case 'k': snprintf(prefix, sizeof(prefix), "%s", optarg); break;
		case 'z': ncounters = atol(optarg); break;
		case 'n': snprintf(name_prefix, sizeof(name_prefix), "%s",
		    optarg); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'o': counts_file = optarg; break;
		default: die(USAGE);
		}
	}
	if (optind != argc - 1 || nconns < 1 || nconns > 10000 || rate < 0 ||
	    duration <= 0 || warmup < 0 || ncounters < 0 ||
	    ncounters > 100000000 || (counts_file != NULL && ncounters == 0))
		die(USAGE);
	closed = rate == 0;
	if (ncounters > 0)
		zipf_init();
	if (strcmp(mode, "get") != 0 && strcmp(mode, "post") != 0 &&
	    strcmp(mode, "post-keyed") != 0)
		die("mode: get, post or post-keyed");
	parse_url(argv[optind]);
	/* closed: room for far more than this machine answers */
	cap = (long long)((closed ? 500000 : rate) * duration * 1.1) + 1000;
	if ((lat = malloc((size_t)cap * sizeof(*lat))) == NULL ||
	    (lag = malloc((size_t)cap * sizeof(*lag))) == NULL ||
	    (conns = calloc((size_t)nconns, sizeof(*conns))) == NULL)
		die("out of memory");
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	for (i = 0; i < nconns; i++)
		if (conn_open(&conns[i]) != 0)
			die("cannot connect");
	t0_ns = now_ns() + 100000000LL;	/* connections settle for 0.1 s */
	warm_ns = t0_ns + (long long)(warmup * 1e9);
	end_ns = warm_ns + (long long)(duration * 1e9);
	deadline = end_ns + DRAIN_NS;
	for (;;) {
		t = now_ns();
		/* every request due by now is put in its connection's line */
		while (!closed && due_of(next_k) <= t && due_of(next_k) < end_ns) {
			conns[next_k % nconns].due_upto = next_k / nconns + 1;
			next_k++;
		}
		busy = 0;
		for (i = 0; i < nconns; i++) {
			if (!conns[i].busy && (closed ? t >= t0_ns && t < end_ns :
			    conns[i].next < conns[i].due_upto))
				conn_send(i, t);
			busy |= conns[i].busy;
		}
		if ((closed ? t >= end_ns : due_of(next_k) >= end_ns) && !busy)
			break;
		if (t >= deadline)
			break;
		if (closed)
			tmo = t < t0_ns ? t0_ns - t : t < end_ns ? end_ns - t :
			    deadline - t;
		else
			tmo = due_of(next_k) < end_ns ? due_of(next_k) - t :
			    deadline - t;
		{
			struct timespec ts = { tmo / 1000000000LL,
			    tmo % 1000000000LL };
			if (tmo < 0)
				ts.tv_sec = ts.tv_nsec = 0;
			n = epoll_pwait2(epfd, evs, 256, &ts, NULL);
		}
		if (n < 0 && errno != EINTR)
			die("epoll_pwait2");
		t = now_ns();
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (conn_read(c, t) != 0) {
				conn_close(c);
				if (c->busy)
					finish(c, 0, t);
			}
		}
	}
	/* the ones still out when the drain ended: unanswered */
	n = 0;
	for (i = 0; i < nconns; i++)
		if (conns[i].busy || conns[i].next < conns[i].due_upto) {
			long long m;

			if (conns[i].busy)
				finish(&conns[i], 0, t);
			/* due but never sent: failed too */
			for (m = conns[i].next; m < conns[i].due_upto; m++) {
				long long due = due_of(m * nconns + i);

				if (due >= warm_ns && due < end_ns) {
					measured++;
					errors++;
				}
			}
		}
	if (counts_file != NULL)
		write_counts(counts_file);
	qsort(lat, (size_t)nlat, sizeof(*lat), cmp_ll);
	qsort(lag, (size_t)nlag, sizeof(*lag), cmp_ll);
	printf("bench-result\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t"
	    "%.0f\t%.0f\t%lld\t%lld\t%lld\t%lld\t%lld\n",
	    (end_ns - warm_ns) / 1000, measured, ok, errors,
	    pct(lat, nlat, 50) / 1000, pct(lat, nlat, 99) / 1000,
	    pct(lat, nlat, 99.9) / 1000, rate,
	    (double)measured / ((double)(end_ns - warm_ns) / 1e9),
	    pct(lag, nlag, 99) / 1000, nlag ? lag[nlag - 1] / 1000 : 0,
	    measured - answered_measured, all_ok, all_failed);
	return 0;
}
