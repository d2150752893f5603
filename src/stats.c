/* tally - stats: counters shared by every responder process. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "stats.h"

#define STATS_MAGIC	0x74616c6c796d7472ULL	/* "tallymtr" */
#define STATS_VERSION	2

const double stats_bucket_bounds[STATS_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2, 2.5, 5
};

const char *const stats_stmt_names[SSTMT__COUNT] = {
	[SSTMT_INCREMENT] = "increment",
	[SSTMT_INCREMENT_KEYED] = "increment_keyed",
	[SSTMT_READ] = "read",
	[SSTMT_EXPIRE] = "expire_keys",
};

const char *const stats_db_error_names[SDBERR__COUNT] = {
	[SDBERR_CONNECT] = "connect",
	[SDBERR_QUERY] = "query",
	[SDBERR_TIMEOUT] = "timeout",
};

const int stats_status_codes[SSTATUS__COUNT] = {
	200, 400, 404, 405, 409, 413, 500, 503, 0
};

static struct stats_segment	 local_segment;
static struct stats_segment	*seg = &local_segment;
static int			 seg_fd = -1;	/* the mapped file */
static int			 seg_repaired;	/* set by segment_fault */

#define ADD(field, n)	__atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)
#define STORE(field, v)	__atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

static void
segment_init(struct stats_segment *s)
{
	uint64_t	expected = 0;

	/* The first process to arrive stamps the header; the rest wait. */
	if (__atomic_compare_exchange_n(&s->magic, &expected, STATS_MAGIC - 1,
	    0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		s->version = STATS_VERSION;
		s->size = (uint32_t)sizeof(*s);
		s->created = (int64_t)time(NULL);
		__atomic_store_n(&s->magic, STATS_MAGIC, __ATOMIC_RELEASE);
	}
}

/*
 * Whether the opened file may be the segment: a regular file of this
 * user with one name, no permission beyond 0660, at most the segment's
 * size. Returns NULL, or why not.
 */
static const char *
segment_file_refused(const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_uid != geteuid())
		return "owned by another user";
	if ((st->st_mode & 07777 & ~(mode_t)0660) != 0)
		return "mode allows more than 0660";
	if (st->st_nlink != 1)
		return "it has other names (hard links)";
	if (st->st_size > (off_t)sizeof(struct stats_segment))
		return "larger than the segment: another layout; remove it "
		    "and restart";
	return NULL;
}

/*
 * Opens the segment's file without following a symbolic link, checks it,
 * and extends it to the segment's size if it is shorter (new, or
 * truncated). Returns the descriptor, or -1 after logging why.
 */
static int
segment_file_open(const char *path)
{
	struct stat	 st;
	const char	*why;
	int		 fd;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd == -1) {
		log_error("stats: cannot open the shared segment; counting "
		    "in this process only", "path", path, "error",
		    errno == ELOOP ? "it is a symbolic link: refused" :
		    strerror(errno), NULL);
		return -1;
	}
	if (fstat(fd, &st) == -1 ||
	    ((why = segment_file_refused(&st)) == NULL &&
	    st.st_size < (off_t)sizeof(struct stats_segment) &&
	    ftruncate(fd, (off_t)sizeof(struct stats_segment)) == -1))
		why = strerror(errno);
	if (why != NULL) {
		log_error("stats: refusing the shared segment's file; "
		    "counting in this process only", "path", path, "error",
		    why, NULL);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * SIGBUS on the segment means that its file was cut short under the
 * mapping (truncate(1) by hand, a tool that "empties" files): extend the
 * file again and return, and the faulting access runs again on zeroed
 * pages. The process keeps serving; the counters start again from zero,
 * which Prometheus reads as a counter reset. Any other SIGBUS, or a file
 * that cannot be extended, takes the default action on the retried
 * access. Only async-signal-safe calls here.
 */
static void
segment_fault(int sig, siginfo_t *si, void *context)
{
	static const struct sigaction	 dfl = { .sa_handler = SIG_DFL };
	const char			*addr = si->si_addr;
	const char			*base = (const char *)seg;
	int				 saved = errno;

	(void)context;
	if (seg != &local_segment && addr >= base &&
	    addr < base + sizeof(*seg) &&
	    ftruncate(seg_fd, (off_t)sizeof(*seg)) == 0)
		__atomic_store_n(&seg_repaired, 1, __ATOMIC_RELAXED);
	else
		(void)sigaction(sig, &dfl, NULL);
	errno = saved;
}

static void
segment_fault_catch(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segment_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) == -1)
		log_warn("stats: cannot catch SIGBUS; a truncated stats file "
		    "will stop this process", "error", strerror(errno), NULL);
}

/*
 * After segment_fault extended the file: says so once, and stamps the
 * zeroed header again so that new processes and the metrics responder
 * take the segment for what it is.
 */
static void
segment_repair_done(void)
{
	if (__atomic_exchange_n(&seg_repaired, 0, __ATOMIC_RELAXED) == 0)
		return;
	segment_init(seg);
	log_warn("stats: the shared stats file had been truncated; extended "
	    "it again, the counters start again from zero", NULL);
}

int
stats_open(const char *run_dir)
{
	char			 path[PATH_MAX];
	struct stats_segment	*m;
	int			 fd, i;

	local_segment.created = (int64_t)time(NULL);
	if (snprintf(path, sizeof(path), "%s/stats", run_dir) >=
	    (int)sizeof(path)) {
		log_error("stats: run directory path too long", NULL);
		return -1;
	}
	if ((fd = segment_file_open(path)) == -1)
		return -1;
	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		log_error("stats: cannot map the shared segment", "path",
		    path, "error", strerror(errno), NULL);
		close(fd);
		return -1;
	}
	segment_init(m);
	for (i = 0; i < 1000 &&
	    __atomic_load_n(&m->magic, __ATOMIC_ACQUIRE) != STATS_MAGIC; i++)
		nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	if (m->magic != STATS_MAGIC || m->version != STATS_VERSION ||
	    m->size != sizeof(*m)) {
		log_error("stats: the shared segment has another layout; "
		    "remove it and restart", "path", path, NULL);
		munmap(m, sizeof(*m));
		close(fd);
		return -1;
	}
	if (seg_fd != -1)
		close(seg_fd);
	seg_fd = fd;
	seg = m;
	segment_fault_catch();
	return 0;
}

static void
load_words(uint64_t *to, const uint64_t *from, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

#define LOAD_ALL(to, from) \
	load_words((uint64_t *)(to), (const uint64_t *)(from), \
	    sizeof(from) / (sizeof(uint64_t)))

void
stats_snapshot(struct stats_segment *out)
{
	_Static_assert(sizeof(struct stats_histogram) % sizeof(uint64_t) == 0,
	    "a histogram is 64-bit words");

	out->magic = seg->magic;
	out->version = seg->version;
	out->size = seg->size;
	out->created = __atomic_load_n(&seg->created, __ATOMIC_RELAXED);
	LOAD_ALL(out->requests, seg->requests);
	LOAD_ALL(out->request_duration, seg->request_duration);
	LOAD_ALL(out->db_query_duration, seg->db_query_duration);
	LOAD_ALL(out->db_errors, seg->db_errors);
	out->db_reconnects = __atomic_load_n(&seg->db_reconnects,
	    __ATOMIC_RELAXED);
	out->idempotent_replays = __atomic_load_n(&seg->idempotent_replays,
	    __ATOMIC_RELAXED);
	out->counter_value = __atomic_load_n(&seg->counter_value,
	    __ATOMIC_RELAXED);
	out->counter_seen = __atomic_load_n(&seg->counter_seen,
	    __ATOMIC_RELAXED);
}

static void
histogram_add(struct stats_histogram *h, double seconds)
{
	size_t	i;

	for (i = 0; i < STATS_BUCKETS; i++)
		if (seconds <= stats_bucket_bounds[i])
			break;
	ADD(h->buckets[i], 1);
	ADD(h->sum_us, (uint64_t)(seconds * 1e6 + 0.5));
}

static enum stats_status
status_index(int status)
{
	int	i;

	for (i = 0; i < SSTATUS_OTHER; i++)
		if (stats_status_codes[i] == status)
			return (enum stats_status)i;
	return SSTATUS_OTHER;
}

void
stats_request_done(const struct request *req, double seconds)
{
	ADD(seg->requests[req->route][req->method][status_index(req->status)],
	    1);
	histogram_add(&seg->request_duration[req->route], seconds);
	if (__atomic_load_n(&seg_repaired, __ATOMIC_RELAXED))
		segment_repair_done();
}

void
stats_db_query(enum stats_stmt stmt, double seconds)
{
	histogram_add(&seg->db_query_duration[stmt], seconds);
}

void
stats_db_error(enum stats_db_error kind)
{
	ADD(seg->db_errors[kind], 1);
}

void
stats_db_reconnect(void)
{
	ADD(seg->db_reconnects, 1);
}

void
stats_counter_seen(long long value)
{
	STORE(seg->counter_value, (int64_t)value);
	STORE(seg->counter_seen, 1);
}

void
stats_idempotent_replay(void)
{
	ADD(seg->idempotent_replays, 1);
}
