/* tally - ratelimit: per-client token buckets for the writes, the new
 * Idempotency-Keys and the counters created, shared by every worker
 * process of a responder. The table is a fixed number of slots in
 * memory the responder's parent maps before it starts its workers (so
 * every worker, also one started again, shares it, and nothing of it is
 * in the file system), under one process-shared robust mutex. A client is
 * its address after the trusted-proxy rule (clientip.h): an IPv4 address,
 * or an IPv6 address's /64. A bucket holds up to burst tokens and gains
 * per_minute tokens a minute, computed from the monotonic clock when its
 * slot is next used (no timer). A client new to the table gets full
 * buckets; when the slots a client may use (RATELIMIT_PROBE of them from
 * its hash) are all taken, the one used longest ago is given to it. */
#ifndef TALLY_RATELIMIT_H
#define TALLY_RATELIMIT_H

#include <stdint.h>

#include "clientip.h"

enum ratelimit_bucket {
	RATELIMIT_WRITE,	/* every write */
	RATELIMIT_KEY,		/* every new Idempotency-Key */
	RATELIMIT_CREATE,	/* every counter created */
	RATELIMIT__COUNT
};

#define RATELIMIT_BIT(b)	(1u << (b))
/* Slots a client may take, from its hash on. */
#define RATELIMIT_PROBE		8
/* A token, in the unit the buckets count in: a bucket of per_minute
 * gains per_minute units a millisecond. */
#define RATELIMIT_TOKEN		60000

/* The names of the buckets in headers and metrics: "write", ... */
extern const char *const ratelimit_names[RATELIMIT__COUNT];

struct ratelimit_policy {
	unsigned int	per_minute;	/* 0: this bucket is off */
	unsigned int	burst;		/* at least 1 */
};

/* A client: its address, IPv4 mapped into IPv6, IPv6 cut to its /64. */
struct ratelimit_client {
	unsigned char	addr[16];
};

/* What a client's buckets held at a moment: for the RateLimit header. */
struct ratelimit_state {
	int32_t		left[RATELIMIT__COUNT];	/* whole tokens; -1: off */
	uint32_t	wait_s[RATELIMIT__COUNT];	/* seconds until one
							 * more; 0: full */
};

/* One bucket's arithmetic (for the table and its tests). */
struct ratelimit_tokens {
	int64_t		units;	/* RATELIMIT_TOKEN a token; below 0: owed */
};

/* Adds what elapsed_ms earned to t, up to burst. */
void	ratelimit_refill(struct ratelimit_tokens *t,
	    const struct ratelimit_policy *p, int64_t elapsed_ms);
/* Whole tokens in t (0 while it owes), and seconds until one more (0
 * when it is full). */
int32_t	ratelimit_whole(const struct ratelimit_tokens *t);
uint32_t ratelimit_wait_s(const struct ratelimit_tokens *t,
	    const struct ratelimit_policy *p);

/* Maps the table of slots in shared memory with the policies of the
 * buckets (p[RATELIMIT__COUNT], copied). Call it once, before fork().
 * Does nothing when every bucket is off. Returns 0, or -1 after logging
 * why. */
int	ratelimit_init(const struct ratelimit_policy *p, unsigned int slots);
/* Unmaps it (for the tests). */
void	ratelimit_free(void);

/* 1 if bucket b is on (ratelimit_init made the table with it), else 0. */
int	ratelimit_on(enum ratelimit_bucket b);

/* The client of a request: its address after the trusted-proxy rule; an
 * unusable address is the client of all zeros. */
void	ratelimit_client_of(const struct cidr_list *trusted,
	    const char *remote_addr, const char *xff,
	    struct ratelimit_client *out);

/* Admits a request at now_ms (monotonic): takes one token of every
 * bucket of take (RATELIMIT_BIT()s; those off are left alone) if each
 * has one, and returns RATELIMIT__COUNT; else takes none and returns the
 * first bucket without one. st gets every bucket's state afterwards. */
enum ratelimit_bucket ratelimit_take(const struct ratelimit_client *c,
	    unsigned int take, int64_t now_ms, struct ratelimit_state *st);

/* Gives a client's bucket back one token (tokens 1), or takes one more,
 * which may leave it owing (tokens -1, a burst at most): the next ones
 * then wait until the debt is paid; st (or NULL) gets every bucket's
 * state afterwards. Nothing if the bucket is off or the client's slot
 * was given to another meanwhile. */
void	ratelimit_adjust(const struct ratelimit_client *c,
	    enum ratelimit_bucket b, int tokens, int64_t now_ms,
	    struct ratelimit_state *st);

/* "RateLimit-Policy: ...\r\n" for the buckets that are on ("" when none
 * is): the same for every answer. */
const char *ratelimit_policy_header(void);

/* The RateLimit header of st ("RateLimit: ...\r\n") into buf; "" when no
 * bucket is on. Returns the length, or -1 if buf is too small. */
int	ratelimit_header(const struct ratelimit_state *st, char *buf,
	    size_t size);

#endif
