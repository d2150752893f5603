/* tally-write - POST /write: adds one to the counter, durably, and answers
 * this request's own new value: 200 {"counter":N}. POST /write/NAME does
 * the same on a named counter (request.h: REQUEST_NAME_RULE, else 400),
 * creating it at 0 first if no counter has the name: 409 if
 * TALLY_MAX_COUNTERS named ones exist (nothing created, nothing counted).
 * With "Idempotency-Key: K" (1-255 printable ASCII characters) the first
 * request with K counts; a later one within the retention period does not
 * and answers the same value with "Idempotent-Replayed: true". A key
 * belongs to the counter it counted on: sent to another, 422 (not
 * counted).
 * 400 for a malformed key; 409 when the counter is at its maximum
 * (COUNTER_MAX: it counts no more, for good); 503 with Retry-After for a
 * new key while TALLY_IDEMPOTENCY_MAX_KEYS keys are held (not counted;
 * Retry-After: the expiry thread's period), or when the database is
 * unavailable (the increment did not count, or its outcome is unknown if
 * the connection broke during the commit: retry with the same key).
 * 429 with Retry-After when the client is over a rate limit (ratelimit.h:
 * its writes, its new keys, or the counters it created), decided before
 * the request joins a batch: not counted. Answers carry the
 * RateLimit-Policy and RateLimit headers while a limit is on.
 * The request is handed to the database thread, which answers it once its
 * batch committed; the accepting thread goes on to the next request. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "counter.h"
#include "idempotency.h"
#include "log.h"
#include "ratelimit.h"
#include "responder.h"
#include "timestamp.h"
#include "response.h"
#include "util.h"
#include "stats.h"

/* A request waiting for its increment, in the request's scratch space. */
struct write_call {
	struct counter_call	 c;
	struct request		*req;
	struct counter		*counter;
	/* Its rate limits: whether it was admitted by them, its client,
	 * and its buckets then. checking: the counter's existence is read
	 * first (the client may create no counter now). */
	int			 limited;
	int			 checking;
	const char		*key;	/* its Idempotency-Key, or NULL */
	struct ratelimit_client	 client;
	struct ratelimit_state	 rl;
};

_Static_assert(sizeof(struct write_call) <= RESPONDER_SCRATCH,
    "struct write_call fits the scratch space");

/* Retry-After of a new key refused while the store of keys is full:
 * room is made when the expiry thread next deletes expired keys. */
static unsigned int	keys_full_retry_s = 1;
/* TALLY_MAX_COUNTERS, for the 409 of a counter refused. */
static unsigned int	max_counters;

struct write_ctx {
	struct counter	*counter;
	struct expiry	*expiry;	/* of old Idempotency-Keys */
	const struct cidr_list *trusted;	/* TALLY_TRUSTED_PROXIES */
};

static void
write_stop(void *ctx)
{
	struct write_ctx	*w = ctx;

	idempotency_expiry_stop(w->expiry);
	counter_close(w->counter);
	free(w);
}

static void *
write_start(const struct settings *s, const char *name)
{
	struct write_ctx	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	keys_full_retry_s = idempotency_expiry_period_s(s);
	max_counters = s->max_counters;
	w->trusted = &s->trusted_proxies;
	if ((w->counter = counter_open(s, name)) == NULL ||
	    (w->expiry = idempotency_expiry_start(s)) == NULL) {
		write_stop(w);
		return NULL;
	}
	return w;
}

/* In the parent, before the workers: the table of rate limits. */
static int
write_prepare(const struct settings *s)
{
	const struct ratelimit_policy	p[RATELIMIT__COUNT] = {
		[RATELIMIT_WRITE] = { s->rl_writes, s->rl_writes_burst },
		[RATELIMIT_KEY] = { s->rl_keys, s->rl_keys_burst },
		[RATELIMIT_CREATE] = { s->rl_creates, s->rl_creates_burst },
	};

	return ratelimit_init(p, s->rl_clients);
}

/* The RateLimit-Policy and RateLimit headers of st into buf, after
 * extra (or NULL); "" when no limit is on. */
static const char *
limit_headers(const struct ratelimit_state *st, const char *extra, char *buf,
    size_t size)
{
	const char	*policy = ratelimit_policy_header();
	int		 n;

	n = snprintf(buf, size, "%s%s", extra != NULL ? extra : "", policy);
	if (n < 0 || (size_t)n >= size ||
	    ratelimit_header(st, buf + n, size - (size_t)n) < 0)
		buf[0] = '\0';
	return buf;
}

/* 429: the client is over the limit of bucket b (st: its buckets). Its
 * RateLimit names that bucket alone, whose t is Retry-After (the draft:
 * Retry-After ends no earlier than the windows it sends with). */
static void
write_limited(struct request *req, enum ratelimit_bucket b,
    const struct ratelimit_state *st)
{
	struct ratelimit_state	 only = *st;
	int			 i;
	static const char *const why[RATELIMIT__COUNT] = {
		[RATELIMIT_WRITE] = "too many writes from your address",
		[RATELIMIT_KEY] = "too many new Idempotency-Keys from your "
		    "address",
		[RATELIMIT_CREATE] = "too many counters created from your "
		    "address",
	};
	char			 msg[160], retry[32], hdr[512];

	for (i = 0; i < RATELIMIT__COUNT; i++)
		if (i != (int)b)
			only.left[i] = -1;
	if (only.wait_s[b] == 0)
		only.wait_s[b] = 1;
	snprintf(msg, sizeof(msg), "%s: not counted; retry after the "
	    "seconds of Retry-After", why[b]);
	snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", only.wait_s[b]);
	stats_rate_limited(b);
	response_error(req, 429, msg, limit_headers(&only, retry, hdr,
	    sizeof(hdr)));
}

/* Gives back what the request took and did not use: its key's token when
 * the key was not recorded now (a replay, or refused); and charges the
 * creation of a counter. */
static void
limits_settle(struct write_call *w)
{
	const struct counter_call	*c = &w->c;
	int64_t				 now = monotonic_ms();

	if (c->key != NULL && (c->replayed ||
	    c->refused != COUNTER_NOT_REFUSED))
		ratelimit_adjust(&w->client, RATELIMIT_KEY, 1, now, &w->rl);
	if (c->created)
		ratelimit_adjust(&w->client, RATELIMIT_CREATE, -1, now,
		    &w->rl);
}

/*
 * The answer to the existence check of a client that may create no
 * counter now: the counter exists, and the write goes on; or it does
 * not, and gets 429 (nothing was created or counted: what it took is
 * given back). Returns 1 if the request was answered.
 */
static int
write_checked(struct write_call *w)
{
	struct counter_call	*c = &w->c;
	int64_t			 now = monotonic_ms();

	w->checking = 0;
	if (c->ok) {
		c->op = COUNTER_INCREMENT;
		c->key = w->key;
		counter_post(w->counter, c);
		return 0;
	}
	if (c->refused != COUNTER_ABSENT) {
		response_db_unavailable(w->req);
		return 1;
	}
	ratelimit_adjust(&w->client, RATELIMIT_WRITE, 1, now, &w->rl);
	if (w->key != NULL)
		ratelimit_adjust(&w->client, RATELIMIT_KEY, 1, now, &w->rl);
	write_limited(w->req, RATELIMIT_CREATE, &w->rl);
	return 1;
}

/* Called by the database thread: answers and ends the request. */
static void
write_done(struct counter_call *c)
{
	struct write_call	*w;
	struct request		*req;
	const struct log_ctx	*outer;
	char			 msg[80];	/* or a header */
	char			 hdr[512];
	int			 answered;

	w = container_of(c, struct write_call, c);
	req = w->req;
	outer = log_enter(c->log);
	if (w->checking) {
		answered = write_checked(w);
		log_leave(c->log, outer);
		if (answered)
			responder_done(req);
		return;
	}
	if (w->limited)
		limits_settle(w);
	if (c->refused == COUNTER_AT_MAXIMUM) {
		snprintf(msg, sizeof(msg), "the counter is at its maximum, "
		    "%lld: it counts no more", COUNTER_MAX);
		response_error(req, 409, msg, NULL);
	} else if (c->refused == COUNTER_KEYS_FULL) {
		snprintf(msg, sizeof(msg), "Retry-After: %u\r\n",
		    keys_full_retry_s);
		response_error(req, 503, "too many Idempotency-Keys are held: "
		    "this one was not counted; retry later with the same key",
		    msg);
	} else if (c->refused == COUNTER_CAP) {
		snprintf(msg, sizeof(msg), "%u named counters exist, the most "
		    "allowed: no other is created", max_counters);
		response_error(req, 409, msg, NULL);
	} else if (c->refused == COUNTER_KEY_ELSEWHERE)
		response_error(req, 422, "this Idempotency-Key counted on "
		    "another counter: not counted here; use a new key", NULL);
	else if (!c->ok)
		response_db_unavailable(req);
	else {
		if (c->replayed)
			stats_idempotent_replay();
		response_counter(req, c->value, !w->limited ?
		    (c->replayed ? "Idempotent-Replayed: true\r\n" : NULL) :
		    limit_headers(&w->rl, c->replayed ?
		    "Idempotent-Replayed: true\r\n" : NULL, hdr, sizeof(hdr)));
	}
	log_leave(c->log, outer);
	responder_done(req);
}

/*
 * The rate limits, before the request joins a batch: a write takes a
 * token of the client's write bucket, a keyed one also of its key bucket
 * (given back if the key turns out known: limits_settle). A write to a
 * named counter needs a token of the creation bucket only if it creates
 * the counter: while the bucket holds one, the write goes on and the
 * creation is charged once the answer shows it; when it is empty, the
 * counter's existence is read first (write_checked). Returns 0 to go on,
 * or -1 after answering 429.
 */
static int
write_admit(const struct write_ctx *wc, struct request *req,
    struct write_call *w, const char *key)
{
	enum ratelimit_bucket	refused;
	unsigned int		take = RATELIMIT_BIT(RATELIMIT_WRITE);

	if (!ratelimit_on(RATELIMIT_WRITE) && !ratelimit_on(RATELIMIT_KEY) &&
	    !ratelimit_on(RATELIMIT_CREATE))
		return 0;
	if (key != NULL)
		take |= RATELIMIT_BIT(RATELIMIT_KEY);
	ratelimit_client_of(wc->trusted, req->remote_addr, req->forwarded_for,
	    &w->client);
	refused = ratelimit_take(&w->client, take, monotonic_ms(), &w->rl);
	if (refused != RATELIMIT__COUNT) {
		write_limited(req, refused, &w->rl);
		return -1;
	}
	w->limited = 1;
	w->checking = req->route == ROUTE_WRITE_NAMED &&
	    w->rl.left[RATELIMIT_CREATE] == 0;
	return 0;
}

static void
write_handle(struct request *req, void *ctx)
{
	struct write_ctx	*wc = ctx;
	struct write_call	*w;
	const char		*key;

	if (req->route == ROUTE_WRITE_NAMED &&
	    request_name_check(req->name) != 0) {
		response_error(req, 400, REQUEST_NAME_RULE, NULL);
		return;
	}
	key = request_param(req, "HTTP_IDEMPOTENCY_KEY");
	if (key != NULL && idempotency_key_check(key) != 0) {
		response_error(req, 400, "invalid Idempotency-Key: use 1 to "
		    "255 printable ASCII characters", NULL);
		return;
	}
	w = responder_scratch(req);
	w->req = req;
	w->counter = wc->counter;
	w->limited = w->checking = 0;
	if (write_admit(wc, req, w, key) != 0)
		return;
	w->c.op = w->checking ? COUNTER_READ : COUNTER_INCREMENT;
	w->c.name = req->name;
	w->key = key;
	/* an existence check reads: no key */
	w->c.key = w->checking ? NULL : key;
	w->c.log = responder_log(req);
	w->c.done = write_done;
	responder_defer(req);
	counter_post(wc->counter, &w->c);	/* req is the database thread's from here */
}

static const struct responder write_responder = {
	RESPONDER_DECLARED(write),	/* src/responders.def */
	.start = write_start,
	.prepare = write_prepare,
	.handle = write_handle,
	.stop = write_stop,
};

int
main(int argc, char **argv)
{
	return responder_main(&write_responder, argc, argv);
}
