/* tally - unit tests for ratelimit: a bucket's refill, whole tokens and
 * wait; a client over a limit is refused while another is not; a refusal
 * takes nothing; a refund and a debt; the clients' slots, when more
 * clients come than there are slots; the headers; and workers forked
 * after ratelimit_init share the buckets. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ratelimit.h"

static void
test_bucket(void)
{
	const struct ratelimit_policy	p = { 60, 5 };	/* 1 a second */
	struct ratelimit_tokens		t = { 0 };

	CHECK_INT(ratelimit_whole(&t), 0);
	CHECK_INT(ratelimit_wait_s(&t, &p), 1);
	ratelimit_refill(&t, &p, 999);
	CHECK_INT(ratelimit_whole(&t), 0);
	CHECK_INT(ratelimit_wait_s(&t, &p), 1);
	ratelimit_refill(&t, &p, 1);
	CHECK_INT(ratelimit_whole(&t), 1);
	ratelimit_refill(&t, &p, 2500);
	CHECK_INT(ratelimit_whole(&t), 3);
	CHECK_INT(ratelimit_wait_s(&t, &p), 1);
	/* a long pause fills it to the burst, no more */
	ratelimit_refill(&t, &p, 1000LL * 1000 * 1000 * 1000);
	CHECK_INT(t.units, 5LL * RATELIMIT_TOKEN);
	CHECK_INT(ratelimit_wait_s(&t, &p), 0);
	/* a debt is paid before a whole token shows */
	t.units = -2LL * RATELIMIT_TOKEN;
	CHECK_INT(ratelimit_whole(&t), 0);
	CHECK_INT(ratelimit_wait_s(&t, &p), 3);
	/* no time, or time backwards: nothing */
	ratelimit_refill(&t, &p, 0);
	ratelimit_refill(&t, &p, -5000);
	CHECK_INT(t.units, -2LL * RATELIMIT_TOKEN);
	/* slow buckets: 1 a minute */
	{
		const struct ratelimit_policy	slow = { 1, 1 };
		struct ratelimit_tokens		u = { 0 };

		CHECK_INT(ratelimit_wait_s(&u, &slow), 60);
		ratelimit_refill(&u, &slow, 59999);
		CHECK_INT(ratelimit_whole(&u), 0);
		CHECK_INT(ratelimit_wait_s(&u, &slow), 1);
		ratelimit_refill(&u, &slow, 1);
		CHECK_INT(ratelimit_whole(&u), 1);
	}
}

static void
client(struct ratelimit_client *c, const char *addr)
{
	struct cidr_list	none = { NULL, 0 };

	ratelimit_client_of(&none, addr, NULL, c);
}

static void
test_clients(void)
{
	const struct ratelimit_policy	p[RATELIMIT__COUNT] = {
		[RATELIMIT_WRITE] = { 60, 3 },
		[RATELIMIT_KEY] = { 60, 1 },
		[RATELIMIT_CREATE] = { 0, 1 },
	};
	struct ratelimit_client		a, b, a6, a6same;
	struct ratelimit_state		st;
	const unsigned int		w = RATELIMIT_BIT(RATELIMIT_WRITE);
	const unsigned int		k = RATELIMIT_BIT(RATELIMIT_KEY);
	int64_t				now = 1000;
	int				i;

	CHECK_INT(ratelimit_init(p, 64), 0);
	CHECK(ratelimit_on(RATELIMIT_WRITE));
	CHECK(!ratelimit_on(RATELIMIT_CREATE));
	client(&a, "192.0.2.1");
	client(&b, "192.0.2.2");
	client(&a6, "2001:db8:1:2::1");
	client(&a6same, "2001:db8:1:2:ffff::9");
	CHECK(memcmp(&a6, &a6same, sizeof(a6)) == 0);	/* one /64 */
	for (i = 0; i < 3; i++) {
		CHECK_INT(ratelimit_take(&a, w, now, &st), RATELIMIT__COUNT);
		CHECK_INT(st.left[RATELIMIT_WRITE], 2 - i);
		CHECK_INT(st.left[RATELIMIT_CREATE], -1);
	}
	/* a is over; b, at the same moment, is not */
	CHECK_INT(ratelimit_take(&a, w, now, &st), RATELIMIT_WRITE);
	CHECK_INT(st.left[RATELIMIT_WRITE], 0);
	CHECK_INT(st.wait_s[RATELIMIT_WRITE], 1);
	CHECK_INT(ratelimit_take(&b, w, now, &st), RATELIMIT__COUNT);
	CHECK_INT(st.left[RATELIMIT_WRITE], 2);
	/* a second later, one more */
	CHECK_INT(ratelimit_take(&a, w, now + 1000, &st), RATELIMIT__COUNT);
	CHECK_INT(ratelimit_take(&a, w, now + 1000, &st), RATELIMIT_WRITE);
	/* a refusal by one bucket takes nothing from the others */
	CHECK_INT(ratelimit_take(&a6, w | k, now, &st), RATELIMIT__COUNT);
	CHECK_INT(ratelimit_take(&a6same, w | k, now, &st), RATELIMIT_KEY);
	CHECK_INT(st.left[RATELIMIT_WRITE], 2);
	CHECK_INT(st.left[RATELIMIT_KEY], 0);
	/* a refund gives the token back */
	ratelimit_adjust(&a6, RATELIMIT_KEY, 1, now, &st);
	CHECK_INT(st.left[RATELIMIT_KEY], 1);
	CHECK_INT(ratelimit_take(&a6, k, now, &st), RATELIMIT__COUNT);
	/* a debt: the next token waits two seconds */
	ratelimit_adjust(&a6, RATELIMIT_KEY, -1, now, NULL);
	CHECK_INT(ratelimit_take(&a6, k, now + 1000, &st), RATELIMIT_KEY);
	CHECK_INT(st.wait_s[RATELIMIT_KEY], 1);
	CHECK_INT(ratelimit_take(&a6, k, now + 2000, &st), RATELIMIT__COUNT);
	ratelimit_free();
}

/* More clients than slots: each new one gets a slot, full buckets, and
 * the table holds no more than its slots. */
static void
test_eviction(void)
{
	const struct ratelimit_policy	p[RATELIMIT__COUNT] = {
		[RATELIMIT_WRITE] = { 60, 1 },
	};
	struct ratelimit_client		c;
	struct ratelimit_state		st;
	char				addr[32];
	int				i, refused = 0;

	CHECK_INT(ratelimit_init(p, 64), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256, i % 256);
		client(&c, addr);
		CHECK_INT(ratelimit_take(&c, RATELIMIT_BIT(RATELIMIT_WRITE),
		    1000 + i, &st), RATELIMIT__COUNT);
	}
	/* the last client is still held: its bucket is empty */
	CHECK_INT(ratelimit_take(&c, RATELIMIT_BIT(RATELIMIT_WRITE), 2000,
	    &st), RATELIMIT_WRITE);
	/* of the first ones, most were given new clients' slots */
	for (i = 0; i < 64; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256, i % 256);
		client(&c, addr);
		refused += ratelimit_take(&c, RATELIMIT_BIT(RATELIMIT_WRITE),
		    2000, &st) != RATELIMIT__COUNT;
	}
	CHECK(refused < 64);
	ratelimit_free();
}

static void
test_headers(void)
{
	const struct ratelimit_policy	p[RATELIMIT__COUNT] = {
		[RATELIMIT_WRITE] = { 6000, 1000 },
		[RATELIMIT_CREATE] = { 60, 60 },
	};
	struct ratelimit_client		c;
	struct ratelimit_state		st;
	char				buf[128];

	CHECK_INT(ratelimit_init(p, 64), 0);
	CHECK_STR(ratelimit_policy_header(),
	    "RateLimit-Policy: \"write\";q=1000;w=10, "
	    "\"create\";q=60;w=60\r\n");
	client(&c, "192.0.2.7");
	CHECK_INT(ratelimit_take(&c, RATELIMIT_BIT(RATELIMIT_WRITE), 5, &st),
	    RATELIMIT__COUNT);
	CHECK(ratelimit_header(&st, buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "RateLimit: \"write\";r=999;t=1, \"create\";r=60\r\n");
	CHECK_INT(ratelimit_header(&st, buf, 20), -1);
	ratelimit_free();
	/* all off: no table, no headers */
	{
		const struct ratelimit_policy	off[RATELIMIT__COUNT] = {
			[RATELIMIT_WRITE] = { 0, 1 },
		};

		CHECK_INT(ratelimit_init(off, 64), 0);
		CHECK(!ratelimit_on(RATELIMIT_WRITE));
		CHECK_STR(ratelimit_policy_header(), "");
		CHECK_INT(ratelimit_take(&c, RATELIMIT_BIT(RATELIMIT_WRITE),
		    5, &st), RATELIMIT__COUNT);
		CHECK_INT(ratelimit_header(&st, buf, sizeof(buf)), 0);
		CHECK_STR(buf, "");
	}
}

/* Workers forked after ratelimit_init take from the same buckets. */
static void
test_shared(void)
{
	const struct ratelimit_policy	p[RATELIMIT__COUNT] = {
		[RATELIMIT_WRITE] = { 1, 100 },
	};
	struct ratelimit_client		c;
	struct ratelimit_state		st;
	pid_t				pid[4];
	int				i, status, admitted = 0;

	CHECK_INT(ratelimit_init(p, 64), 0);
	client(&c, "198.51.100.1");
	for (i = 0; i < 4; i++) {
		CHECK((pid[i] = fork()) >= 0);
		if (pid[i] == 0) {
			int	n = 0, j;

			for (j = 0; j < 40; j++)
				n += ratelimit_take(&c,
				    RATELIMIT_BIT(RATELIMIT_WRITE), 1000,
				    &st) == RATELIMIT__COUNT;
			_exit(n);
		}
	}
	for (i = 0; i < 4; i++) {
		CHECK(waitpid(pid[i], &status, 0) == pid[i]);
		CHECK(WIFEXITED(status));
		admitted += WEXITSTATUS(status);
	}
	CHECK_INT(admitted, 100);
	ratelimit_free();
}

int
main(void)
{
	test_bucket();
	test_clients();
	test_eviction();
	test_headers();
	test_shared();
	return 0;
}
