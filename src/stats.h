/* tally - stats: counters shared by every responder process through one
 * memory-mapped file in the run directory. Recording is a few relaxed
 * atomic additions: no lock and no system call per request. The
 * tally-metrics responder reads the same file and writes the Prometheus
 * text format (see metrics.c). */
#ifndef TALLY_STATS_H
#define TALLY_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"
#include "request.h"

/* Upper bounds of the latency histograms, in seconds (+Inf is implicit). */
#define STATS_BUCKETS	14
extern const double stats_bucket_bounds[STATS_BUCKETS];

enum stats_status {
	SSTATUS_200, SSTATUS_304, SSTATUS_400, SSTATUS_404, SSTATUS_405,
	SSTATUS_409, SSTATUS_413, SSTATUS_422, SSTATUS_429, SSTATUS_500,
	SSTATUS_503, SSTATUS_OTHER,
	SSTATUS__COUNT
};

/* Statements timed in tally_db_query_duration_seconds{statement}. */
enum stats_stmt {
	SSTMT_INCREMENT, SSTMT_INCREMENT_KEYED, SSTMT_READ,
	SSTMT_EXPIRE, SSTMT_ADMIN, SSTMT__COUNT
};

/* Kinds in tally_db_errors_total{kind}. */
enum stats_db_error {
	SDBERR_CONNECT, SDBERR_QUERY, SDBERR_TIMEOUT, SDBERR__COUNT
};

struct stats_histogram {
	uint64_t	buckets[STATS_BUCKETS + 1];	/* not cumulative */
	uint64_t	sum_us;
};

struct stats_segment {
	uint64_t	magic;
	uint32_t	version;
	uint32_t	size;
	int64_t		created;	/* unix seconds */
	uint64_t	requests[ROUTE__COUNT][METHOD__COUNT][SSTATUS__COUNT];
	struct stats_histogram request_duration[ROUTE__COUNT];
	struct stats_histogram db_query_duration[SSTMT__COUNT];
	uint64_t	db_errors[SDBERR__COUNT];
	uint64_t	db_reconnects;
	uint64_t	idempotent_replays;
	int64_t		counter_value;
	uint64_t	counter_seen;
	int64_t		counters;	/* named counters, as last read */
	uint64_t	counters_seen;
	uint64_t	rate_limited[RATELIMIT__COUNT];
};

/* Maps the segment in run_dir ("stats"), creating it, or extending it if
 * it is short (truncated). Call it in each worker process. It catches
 * SIGBUS: a file truncated later, under the mapping, is extended again by
 * the first access that faults, and the process carries on.
 * Refuses a symbolic link, a file that is not this user's regular file
 * of mode 0660 or less with one name, or a larger one. On failure logs
 * why and falls back to process-local counters; returns -1. */
int	stats_open(const char *run_dir);

/* Copies the segment (or the local fallback), each field read
 * atomically: what the metrics responder writes out. */
void	stats_snapshot(struct stats_segment *out);

/* Counts an answered request that took seconds. */
void	stats_request_done(const struct request *req, double seconds);
void	stats_db_query(enum stats_stmt stmt, double seconds);
void	stats_db_error(enum stats_db_error kind);
void	stats_db_reconnect(void);
void	stats_counter_seen(long long value);
void	stats_counters_seen(long long n);
void	stats_idempotent_replay(void);
/* Counts a request refused by a rate limit (429), by its bucket. */
void	stats_rate_limited(enum ratelimit_bucket b);

extern const char *const stats_stmt_names[SSTMT__COUNT];
extern const char *const stats_db_error_names[SDBERR__COUNT];
extern const int stats_status_codes[SSTATUS__COUNT];

#endif
