/* tally - ratelimit: per-client token buckets shared by the workers. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pshared.h"
#include "ratelimit.h"

const char *const ratelimit_names[RATELIMIT__COUNT] = {
	[RATELIMIT_WRITE] = "write",
	[RATELIMIT_KEY] = "key",
	[RATELIMIT_CREATE] = "create",
};

struct slot {
	unsigned char		 addr[16];
	int64_t			 used_ms;	/* last use; 0: free */
	struct ratelimit_tokens	 tokens[RATELIMIT__COUNT];
};

struct table {
	pthread_mutex_t		 mu;	/* process-shared, robust */
	uint64_t		 seed;	/* of the slots' hash */
	unsigned int		 nslots;
	struct slot		 slots[];
};

/* In memory shared with the parent and every worker; NULL: all off. */
static struct table		*table;
static size_t			 table_size;
static struct ratelimit_policy	 policy[RATELIMIT__COUNT];
static char			 policy_header[256];

void
ratelimit_refill(struct ratelimit_tokens *t, const struct ratelimit_policy *p,
    int64_t elapsed_ms)
{
	int64_t	cap = (int64_t)p->burst * RATELIMIT_TOKEN;

	if (p->per_minute == 0 || elapsed_ms <= 0 || t->units >= cap)
		return;
	/* elapsed_ms * per_minute fits: elapsed_ms is below cap here */
	if (elapsed_ms >= (cap - t->units) / p->per_minute + 1)
		t->units = cap;
	else
		t->units += elapsed_ms * p->per_minute;
	if (t->units > cap)
		t->units = cap;
}

int32_t
ratelimit_whole(const struct ratelimit_tokens *t)
{
	return t->units <= 0 ? 0 : (int32_t)(t->units / RATELIMIT_TOKEN);
}

uint32_t
ratelimit_wait_s(const struct ratelimit_tokens *t,
    const struct ratelimit_policy *p)
{
	int64_t	need, ms;

	if (p->per_minute == 0 ||
	    t->units >= (int64_t)p->burst * RATELIMIT_TOKEN)
		return 0;
	need = ((int64_t)ratelimit_whole(t) + 1) * RATELIMIT_TOKEN - t->units;
	ms = (need + p->per_minute - 1) / p->per_minute;
	return (uint32_t)((ms + 999) / 1000);
}

/* A slot's place: the client's address mixed with the table's seed
 * (unknown outside, so that no client can pick whose slots it shares). */
static unsigned int
slot_hash(const struct table *tb, const unsigned char *addr)
{
	uint64_t	h = tb->seed ^ 0xcbf29ce484222325ULL;
	size_t		i;

	for (i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (unsigned int)(h % tb->nslots);
}

static uint64_t
random_seed(void)
{
	uint64_t	seed;

	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	return seed;
}

static void
header_init(void)
{
	size_t		n = 0;
	unsigned int	w;
	int		b;

	policy_header[0] = '\0';
	for (b = 0; b < RATELIMIT__COUNT; b++) {
		if (policy[b].per_minute == 0)
			continue;
		/* the window: how long an empty bucket takes to fill */
		w = (unsigned int)(((uint64_t)policy[b].burst * 60 +
		    policy[b].per_minute - 1) / policy[b].per_minute);
		n += (size_t)snprintf(policy_header + n,
		    sizeof(policy_header) - n, "%s\"%s\";q=%u;w=%u",
		    n == 0 ? "RateLimit-Policy: " : ", ", ratelimit_names[b],
		    policy[b].burst, w > 0 ? w : 1);
	}
	if (n > 0)
		snprintf(policy_header + n, sizeof(policy_header) - n, "\r\n");
}

int
ratelimit_init(const struct ratelimit_policy *p, unsigned int slots)
{
	struct table		*tb;
	size_t			 size;
	int			 b, on = 0, rc;

	for (b = 0; b < RATELIMIT__COUNT; b++) {
		policy[b] = p[b];
		on |= p[b].per_minute > 0;
	}
	header_init();
	if (!on || slots == 0)
		return 0;
	size = sizeof(*tb) + (size_t)slots * sizeof(struct slot);
	if ((tb = pshared_map(size)) == NULL) {
		log_error("rate limits: cannot map their table", "error",
		    strerror(errno), NULL);
		return -1;
	}
	if ((rc = pshared_mutex_init(&tb->mu)) != 0) {
		log_error("rate limits: cannot make a shared mutex", "error",
		    strerror(rc), NULL);
		munmap(tb, size);
		return -1;
	}
	tb->seed = random_seed();
	tb->nslots = slots;
	table = tb;
	table_size = size;
	return 0;
}

void
ratelimit_free(void)
{
	if (table != NULL) {
		pthread_mutex_destroy(&table->mu);
		munmap(table, table_size);
	}
	table = NULL;
}

int
ratelimit_on(enum ratelimit_bucket b)
{
	return table != NULL && policy[b].per_minute > 0;
}

void
ratelimit_client_of(const struct cidr_list *trusted, const char *remote_addr,
    const char *xff, struct ratelimit_client *out)
{
	struct client_info	ci;
	struct ipaddr		ip;

	memset(out, 0, sizeof(*out));
	clientip_resolve(trusted, remote_addr, xff, &ci);
	if (ci.user_ip[0] == '\0' ||
	    ip_parse(ci.user_ip, strlen(ci.user_ip), &ip) != 0)
		return;
	if (ip.family == AF_INET) {
		out->addr[10] = out->addr[11] = 0xff;
		memcpy(out->addr + 12, ip.bytes, 4);
	} else
		memcpy(out->addr, ip.bytes, 8);		/* its /64 */
}

static void
table_lock(void)
{
	if (pthread_mutex_lock(&table->mu) == EOWNERDEAD)
		/* its holder died in a few lines of arithmetic: at worst
		 * one bucket is a token off */
		pthread_mutex_consistent(&table->mu);
}

static void
table_unlock(void)
{
	pthread_mutex_unlock(&table->mu);
}

/* Refills every bucket of s up to now_ms. */
static void
slot_refill(struct slot *s, int64_t now_ms)
{
	int	b;

	for (b = 0; b < RATELIMIT__COUNT; b++)
		ratelimit_refill(&s->tokens[b], &policy[b],
		    now_ms - s->used_ms);
	/* a clock that went back (another boot under the same table)
	 * does not refill */
	s->used_ms = now_ms > 0 ? now_ms : 1;
}

/* The client's slot, or NULL if it has none. Called locked. */
static struct slot *
slot_find(const struct ratelimit_client *c)
{
	struct slot	*s;
	unsigned int	 i, h = slot_hash(table, c->addr);

	for (i = 0; i < RATELIMIT_PROBE && i < table->nslots; i++) {
		s = &table->slots[(h + i) % table->nslots];
		if (s->used_ms != 0 && memcmp(s->addr, c->addr, 16) == 0)
			return s;
	}
	return NULL;
}

/* The client's slot, made with full buckets if it has none: a free one
 * of its RATELIMIT_PROBE, else the one used longest ago. Called locked. */
static struct slot *
slot_get(const struct ratelimit_client *c, int64_t now_ms)
{
	struct slot	*s, *oldest;
	unsigned int	 i, h;
	int		 b;

	if ((s = slot_find(c)) != NULL) {
		slot_refill(s, now_ms);
		return s;
	}
	h = slot_hash(table, c->addr);
	oldest = &table->slots[h];
	for (i = 1; i < RATELIMIT_PROBE && i < table->nslots; i++) {
		s = &table->slots[(h + i) % table->nslots];
		if (s->used_ms < oldest->used_ms)
			oldest = s;
	}
	s = oldest;
	memcpy(s->addr, c->addr, 16);
	for (b = 0; b < RATELIMIT__COUNT; b++)
		s->tokens[b].units = (int64_t)policy[b].burst * RATELIMIT_TOKEN;
	s->used_ms = now_ms > 0 ? now_ms : 1;
	return s;
}

static void
slot_state(const struct slot *s, struct ratelimit_state *st)
{
	int	b;

	for (b = 0; b < RATELIMIT__COUNT; b++) {
		st->left[b] = policy[b].per_minute > 0 ?
		    ratelimit_whole(&s->tokens[b]) : -1;
		st->wait_s[b] = ratelimit_wait_s(&s->tokens[b], &policy[b]);
	}
}

enum ratelimit_bucket
ratelimit_take(const struct ratelimit_client *c, unsigned int take,
    int64_t now_ms, struct ratelimit_state *st)
{
	enum ratelimit_bucket	 refused = RATELIMIT__COUNT;
	struct slot		*s;
	int			 b;

	if (table == NULL) {
		for (b = 0; b < RATELIMIT__COUNT; b++) {
			st->left[b] = -1;
			st->wait_s[b] = 0;
		}
		return RATELIMIT__COUNT;
	}
	table_lock();
	s = slot_get(c, now_ms);
	for (b = 0; b < RATELIMIT__COUNT && refused == RATELIMIT__COUNT; b++)
		if ((take & RATELIMIT_BIT(b)) != 0 &&
		    policy[b].per_minute > 0 &&
		    s->tokens[b].units < RATELIMIT_TOKEN)
			refused = (enum ratelimit_bucket)b;
	if (refused == RATELIMIT__COUNT)
		for (b = 0; b < RATELIMIT__COUNT; b++)
			if ((take & RATELIMIT_BIT(b)) != 0 &&
			    policy[b].per_minute > 0)
				s->tokens[b].units -= RATELIMIT_TOKEN;
	slot_state(s, st);
	table_unlock();
	return refused;
}

void
ratelimit_adjust(const struct ratelimit_client *c, enum ratelimit_bucket b,
    int tokens, int64_t now_ms, struct ratelimit_state *st)
{
	struct slot	*s;
	int64_t		 floor;

	if (!ratelimit_on(b))
		return;
	table_lock();
	if ((s = slot_find(c)) != NULL) {
		slot_refill(s, now_ms);
		s->tokens[b].units += (int64_t)tokens * RATELIMIT_TOKEN;
		/* a debt of at most one burst */
		floor = -(int64_t)policy[b].burst * RATELIMIT_TOKEN;
		if (s->tokens[b].units < floor)
			s->tokens[b].units = floor;
		if (s->tokens[b].units >
		    (int64_t)policy[b].burst * RATELIMIT_TOKEN)
			s->tokens[b].units =
			    (int64_t)policy[b].burst * RATELIMIT_TOKEN;
		if (st != NULL)
			slot_state(s, st);
	}
	table_unlock();
}

const char *
ratelimit_policy_header(void)
{
	return table != NULL ? policy_header : "";
}

int
ratelimit_header(const struct ratelimit_state *st, char *buf, size_t size)
{
	size_t	n = 0;
	int	b, w;

	buf[0] = '\0';
	for (b = 0; b < RATELIMIT__COUNT; b++) {
		if (st->left[b] < 0)
			continue;
		w = snprintf(buf + n, size - n, "%s\"%s\";r=%d",
		    n == 0 ? "RateLimit: " : ", ", ratelimit_names[b],
		    (int)st->left[b]);
		if (w < 0 || (size_t)w >= size - n)
			return -1;
		n += (size_t)w;
		if (st->wait_s[b] > 0) {
			w = snprintf(buf + n, size - n, ";t=%u",
			    (unsigned int)st->wait_s[b]);
			if (w < 0 || (size_t)w >= size - n)
				return -1;
			n += (size_t)w;
		}
	}
	if (n == 0)
		return 0;
	if (size - n < 3)
		return -1;
	memcpy(buf + n, "\r\n", 3);
	return (int)n + 2;
}
