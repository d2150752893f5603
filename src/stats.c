/* tally - stats: counters shared by every responder process. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "shmfile.h"
#include "stats.h"

#define STATS_MAGIC	0x74616c6c796d7472ULL	/* "tallymtr" */
#define STATS_VERSION	6

const double stats_bucket_bounds[STATS_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2, 2.5, 5
};

const char *const stats_stmt_names[SSTMT__COUNT] = {
	[SSTMT_INCREMENT] = "increment",
	[SSTMT_INCREMENT_KEYED] = "increment_keyed",
	[SSTMT_READ] = "read",
	[SSTMT_EXPIRE] = "expire_keys",
	[SSTMT_ADMIN] = "admin",
};

const char *const stats_db_error_names[SDBERR__COUNT] = {
	[SDBERR_CONNECT] = "connect",
	[SDBERR_QUERY] = "query",
	[SDBERR_TIMEOUT] = "timeout",
};

const int stats_status_codes[SSTATUS__COUNT] = {
	200, 304, 400, 404, 405, 409, 413, 422, 429, 500, 503, 0
};

static struct stats_segment	 local_segment;
static struct stats_segment	*seg = &local_segment;
static struct shmfile		 seg_file;

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
 * After the file was truncated under the mapping and extended again (see
 * shmfile.h): says so once, and stamps the zeroed header again so that
 * new processes and the metrics responder take the segment for what it
 * is. The counters start again from zero, which Prometheus reads as a
 * counter reset.
 */
static void
segment_repair_done(void)
{
	segment_init(seg);
	log_warn("stats: the shared stats file had been truncated; extended "
	    "it again, the counters start again from zero", NULL);
}

int
stats_open(const char *run_dir)
{
	char			 path[PATH_MAX];
	struct stats_segment	*m;
	int			 i;

	local_segment.created = (int64_t)time(NULL);
	if (snprintf(path, sizeof(path), "%s/stats", run_dir) >=
	    (int)sizeof(path)) {
		log_error("stats: run directory path too long", NULL);
		return -1;
	}
	if (shmfile_map(&seg_file, path, sizeof(*m), "stats") != 0) {
		log_error("stats: counting in this process only", NULL);
		return -1;
	}
	m = seg_file.base;
	segment_init(m);
	for (i = 0; i < 1000 &&
	    __atomic_load_n(&m->magic, __ATOMIC_ACQUIRE) != STATS_MAGIC; i++)
		nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	if (m->magic != STATS_MAGIC || m->version != STATS_VERSION ||
	    m->size != sizeof(*m)) {
		log_error("stats: the shared segment has another layout; "
		    "remove it and restart; counting in this process only",
		    "path", path, NULL);
		return -1;
	}
	seg = m;
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
	out->counters = __atomic_load_n(&seg->counters, __ATOMIC_RELAXED);
	out->counters_seen = __atomic_load_n(&seg->counters_seen,
	    __ATOMIC_RELAXED);
	LOAD_ALL(out->rate_limited, seg->rate_limited);
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
	if (shmfile_repaired(&seg_file))
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
stats_counters_seen(long long n)
{
	STORE(seg->counters, (int64_t)n);
	STORE(seg->counters_seen, 1);
}

void
stats_idempotent_replay(void)
{
	ADD(seg->idempotent_replays, 1);
}

void
stats_rate_limited(enum ratelimit_bucket b)
{
	ADD(seg->rate_limited[b], 1);
}
