/* tally-metrics - GET /metrics: every responder's counters (the shared
 * segment of stats.c) in the Prometheus text format, plus tally_db_up
 * measured at scrape time by reading the counter. 200 always. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "counter.h"
#include "responder.h"
#include "response.h"
#include "stats.h"

/* When the responder (its parent process, before any worker) started: the
 * same in every worker, so scrapes do not see it jump between them. */
static time_t	started;

static void
help(FILE *f, const char *name, const char *type, const char *text)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static uint64_t
histogram_count(const struct stats_histogram *h)
{
	uint64_t	n = 0;
	size_t		i;

	for (i = 0; i <= STATS_BUCKETS; i++)
		n += h->buckets[i];
	return n;
}

/* Buckets are stored per bucket; the format wants them cumulative, and
 * _count is their total so the two always agree. */
static void
histogram(FILE *f, const char *name, const char *label, const char *value,
    const struct stats_histogram *h)
{
	uint64_t	cum = 0;
	size_t		i;

	for (i = 0; i < STATS_BUCKETS; i++) {
		cum += h->buckets[i];
		fprintf(f, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label,
		    value, stats_bucket_bounds[i], (unsigned long long)cum);
	}
	cum += h->buckets[STATS_BUCKETS];
	fprintf(f, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label,
	    value, (unsigned long long)cum);
	fprintf(f, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value,
	    (double)h->sum_us / 1e6);
	fprintf(f, "%s_count{%s=\"%s\"} %llu\n", name, label, value,
	    (unsigned long long)cum);
}

static void
write_requests(FILE *f, const struct stats_segment *s)
{
	int		r, m, c;
	uint64_t	n;

	help(f, "http_requests_total", "counter",
	    "Requests answered by the responders, by path, method and code.");
	for (r = 0; r < ROUTE__COUNT; r++)
		for (m = 0; m < METHOD__COUNT; m++)
			for (c = 0; c < SSTATUS__COUNT; c++) {
				if ((n = s->requests[r][m][c]) == 0)
					continue;
				fprintf(f, "http_requests_total{path=\"%s\","
				    "method=\"%s\",code=\"", route_path(r),
				    method_name(m));
				if (stats_status_codes[c] != 0)
					fprintf(f, "%d", stats_status_codes[c]);
				else
					fputs("other", f);
				fprintf(f, "\"} %llu\n", (unsigned long long)n);
			}
	help(f, "http_request_duration_seconds", "histogram",
	    "Time from reading a request to answering it, by path.");
	/* Each path's, from the start (a rate of 0, not no data); "other"
	 * only once a request was refused there, so that a quantile over
	 * it is not NaN for ever. */
	for (r = 0; r < ROUTE__COUNT; r++)
		if (r != ROUTE_OTHER ||
		    histogram_count(&s->request_duration[r]) > 0)
			histogram(f, "http_request_duration_seconds", "path",
			    route_path(r), &s->request_duration[r]);
}

static void
write_database(FILE *f, const struct stats_segment *s, int up)
{
	int	i;

	help(f, "tally_db_up", "gauge",
	    "1 if the database answered a read of the counter at this scrape.");
	fprintf(f, "tally_db_up %d\n", up);
	help(f, "tally_db_query_duration_seconds", "histogram",
	    "Round trip of each database statement, by statement.");
	for (i = 0; i < SSTMT__COUNT; i++)
		histogram(f, "tally_db_query_duration_seconds", "statement",
		    stats_stmt_names[i], &s->db_query_duration[i]);
	help(f, "tally_db_errors_total", "counter",
	    "Failed connects, failed statements and timeouts.");
	for (i = 0; i < SDBERR__COUNT; i++)
		fprintf(f, "tally_db_errors_total{kind=\"%s\"} %llu\n",
		    stats_db_error_names[i],
		    (unsigned long long)s->db_errors[i]);
	help(f, "tally_db_reconnects_total", "counter",
	    "Connections made again after a lost or failed one.");
	fprintf(f, "tally_db_reconnects_total %llu\n",
	    (unsigned long long)s->db_reconnects);
}

static void
metrics_handle(struct request *req, void *ctx)
{
	struct stats_segment	 snap, *s = &snap;
	long long		 value;
	char			*text = NULL;
	size_t			 len = 0;
	FILE			*f;
	int			 up, i;

	up = counter_read(ctx, responder_log(req), &value) == 0;
	stats_snapshot(&snap);
	if ((f = open_memstream(&text, &len)) == NULL) {
		response_error(req, 500, "out of memory", NULL);
		return;
	}
	write_requests(f, s);
	write_database(f, s, up);
	help(f, "tally_value", "gauge",
	    "The counter's value as last seen by a responder.");
	if (s->counter_seen)
		fprintf(f, "tally_value %lld\n",
		    (long long)s->counter_value);
	help(f, "tally_named_counters", "gauge",
	    "Named counters (/write/NAME) as last read; the default one "
	    "is not among them.");
	if (s->counters_seen)
		fprintf(f, "tally_named_counters %lld\n",
		    (long long)s->counters);
	help(f, "tally_idempotent_replays_total", "counter",
	    "POST /write answers replayed for a known Idempotency-Key.");
	fprintf(f, "tally_idempotent_replays_total %llu\n",
	    (unsigned long long)s->idempotent_replays);
	help(f, "tally_rate_limited_total", "counter",
	    "Writes refused with 429 by a client's rate limit, by bucket.");
	for (i = 0; i < RATELIMIT__COUNT; i++)
		fprintf(f, "tally_rate_limited_total{bucket=\"%s\"} %llu\n",
		    ratelimit_names[i],
		    (unsigned long long)s->rate_limited[i]);
	help(f, "tally_build_info", "gauge", "The running version of tally.");
	fprintf(f, "tally_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	help(f, "process_start_time_seconds", "gauge",
	    "Start time of the metrics responder, in unix seconds.");
	fprintf(f, "process_start_time_seconds %lld\n", (long long)started);
	help(f, "tally_stats_created_time_seconds", "gauge",
	    "When the shared counters were created, in unix seconds.");
	fprintf(f, "tally_stats_created_time_seconds %lld\n",
	    (long long)s->created);
	if (fclose(f) != 0) {
		free(text);
		response_error(req, 500, "out of memory", NULL);
		return;
	}
	response_text(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    text, len);
	free(text);
}

static const struct responder metrics_responder = {
	RESPONDER_DECLARED(metrics),	/* src/responders.def */
	.start = counter_responder_start,
	.handle = metrics_handle,
	.stop = counter_responder_stop,
};

int
main(int argc, char **argv)
{
	started = time(NULL);
	return responder_main(&metrics_responder, argc, argv);
}
