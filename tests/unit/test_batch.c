/* tally - unit tests for batch: many threads submitting at once. Every
 * item runs exactly once, before its submit returns; two runs never
 * overlap; items that wait while a run is under way form the next batch,
 * at most max long, in the order they arrived; a run that takes more
 * (batch_more) after a wait carries what queued meanwhile; a run's items
 * are completed during the next run when it asks (the answers are
 * written while its round trip is under way), or at once when nothing
 * else is queued. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "check.h"

#define MAX_RUNS	64
#define WAIT_LIMIT_S	10

struct item {
	int	id;
	int	runs;		/* atomic */
};

/* What the run function saw, and a gate that can hold the first run. */
struct record {
	size_t		 max;
	int		 running;	/* atomic: 1 inside run() */
	size_t		 total;		/* items run, all runs */
	size_t		 nruns;
	size_t		 sizes[MAX_RUNS];	/* first MAX_RUNS runs */
	int		 order[256];	/* ids in run order, first 256 */
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	int		 hold_first;	/* the first run waits for release */
	int		 first_entered;
	int		 released;
	int		 more;		/* runs call batch_more after the hold */
	int		 previous;	/* run 1 completes run 0's items */
	struct batch	 batch;		/* hold_and_release's */
};

/* Posted items completed so far (their done function ran). */
static int	completed;

struct submitter {
	struct batch	*b;
	struct item	*items;
	size_t		 n;
};

static void
record_init(struct record *r, size_t max, int hold_first)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
	r->hold_first = hold_first;
	CHECK_INT(pthread_mutex_init(&r->mu, NULL), 0);
	CHECK_INT(pthread_cond_init(&r->cv, NULL), 0);
}

static void
record_destroy(struct record *r)
{
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

static void
hold_if_first(struct record *r, size_t run)
{
	if (!r->hold_first || run != 0)
		return;
	pthread_mutex_lock(&r->mu);
	r->first_entered = 1;
	pthread_cond_broadcast(&r->cv);
	while (!r->released)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

static size_t
run(void *ctx, struct batch_item **items, size_t n)
{
	struct record	*r = ctx;
	struct item	*it;
	size_t		 i, run_no;

	CHECK(n >= 1 && n <= r->max);
	CHECK_INT(__atomic_exchange_n(&r->running, 1, __ATOMIC_ACQ_REL), 0);
	pthread_mutex_lock(&r->mu);
	run_no = r->nruns++;
	pthread_mutex_unlock(&r->mu);
	hold_if_first(r, run_no);
	if (r->more)
		n = batch_more(&r->batch, items, n);
	if (r->previous && run_no == 1) {
		/* run 0's item is not completed before this run asks */
		CHECK_INT(__atomic_load_n(&completed, __ATOMIC_ACQUIRE), 0);
		batch_complete_previous(&r->batch);
		CHECK_INT(__atomic_load_n(&completed, __ATOMIC_ACQUIRE), 1);
	}
	CHECK(n >= 1 && n <= r->max);
	pthread_mutex_lock(&r->mu);
	if (run_no < MAX_RUNS)
		r->sizes[run_no] = n;
	for (i = 0; i < n; i++) {
		it = items[i]->arg;
		CHECK_INT(__atomic_add_fetch(&it->runs, 1, __ATOMIC_ACQ_REL), 1);
		if (r->total < sizeof(r->order) / sizeof(r->order[0]))
			r->order[r->total] = it->id;
		r->total++;
	}
	pthread_mutex_unlock(&r->mu);
	sched_yield();	/* widen the window in which others pile up */
	CHECK_INT(__atomic_exchange_n(&r->running, 0, __ATOMIC_ACQ_REL), 1);
	return n;
}

static void *
submit_all(void *arg)
{
	struct submitter	*s = arg;
	size_t			 i;

	for (i = 0; i < s->n; i++) {
		batch_submit(s->b, &s->items[i]);
		/* Run once, and before batch_submit returned. */
		CHECK_INT(__atomic_load_n(&s->items[i].runs, __ATOMIC_ACQUIRE),
		    1);
	}
	return NULL;
}

static double
elapsed_s(const struct timespec *since)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) +
	    (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static void
pause_ms(long ms)
{
	struct timespec	ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits, at most WAIT_LIMIT_S, until the first run is held. */
static void
wait_first_entered(struct record *r)
{
	struct timespec	start;
	int		first_run_started;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pthread_mutex_lock(&r->mu);
		first_run_started = r->first_entered;
		pthread_mutex_unlock(&r->mu);
		if (first_run_started || elapsed_s(&start) > WAIT_LIMIT_S)
			break;
		pause_ms(1);
	}
	CHECK(first_run_started);
}

/* Waits, at most WAIT_LIMIT_S, until n items are queued; copies their
 * ids in queue order. */
static void
wait_queued(struct batch *b, size_t n, int *ids)
{
	struct timespec		 start;
	struct batch_item	*p;
	size_t			 items_queued;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pthread_mutex_lock(&b->mu);
		items_queued = 0;
		for (p = b->head; p != NULL; p = p->next)
			items_queued++;
		if (items_queued == n)
			for (items_queued = 0, p = b->head; p != NULL;
			    p = p->next)
				ids[items_queued++] =
				    ((struct item *)p->arg)->id;
		pthread_mutex_unlock(&b->mu);
		if (items_queued == n || elapsed_s(&start) > WAIT_LIMIT_S)
			break;
		pause_ms(1);
	}
	CHECK_INT(items_queued, n);
}

static void
release(struct record *r)
{
	pthread_mutex_lock(&r->mu);
	r->released = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Many threads, many submits each: nothing lost, doubled or overlapped. */
static void
test_many_threads(void)
{
	enum { THREADS = 16, EACH = 2000 };
	struct batch		 b;
	struct record		 r;
	struct submitter	 s[THREADS];
	pthread_t		 t[THREADS];
	struct item		*items;
	size_t			 i;

	record_init(&r, 8, 0);
	CHECK_INT(batch_init(&b, r.max, run, &r), 0);
	items = calloc(THREADS * EACH, sizeof(*items));
	CHECK(items != NULL);
	for (i = 0; i < THREADS; i++) {
		s[i].b = &b;
		s[i].items = items + i * EACH;
		s[i].n = EACH;
		CHECK_INT(pthread_create(&t[i], NULL, submit_all, &s[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		CHECK_INT(pthread_join(t[i], NULL), 0);
	CHECK_INT(r.total, THREADS * EACH);
	CHECK(r.nruns >= (r.total + r.max - 1) / r.max);
	CHECK(r.nruns <= r.total);
	for (i = 0; i < THREADS * EACH; i++)
		CHECK_INT(items[i].runs, 1);
	CHECK(b.head == NULL);
	batch_destroy(&b);
	record_destroy(&r);
	free(items);
}

/*
 * Holds the first run while `waiters` threads queue up, then lets it go:
 * the waiters must run in batches of at most max, in arrival order (with
 * `more`, the first run takes what it can of them after the hold).
 * Returns the number of runs.
 */
static size_t
hold_and_release(size_t max, size_t waiters, int more, struct record *r)
{
	struct batch		*b = &r->batch;
	struct submitter	*s;
	pthread_t		*t;
	struct item		*items;
	int			 queued[128];
	size_t			 i;

	CHECK(waiters < sizeof(queued) / sizeof(queued[0]));
	record_init(r, max, 1);
	r->more = more;
	CHECK_INT(batch_init(b, max, run, r), 0);
	items = calloc(waiters + 1, sizeof(*items));
	s = calloc(waiters + 1, sizeof(*s));
	t = calloc(waiters + 1, sizeof(*t));
	CHECK(items != NULL && s != NULL && t != NULL);
	for (i = 0; i <= waiters; i++) {
		items[i].id = (int)i;
		s[i].b = b;
		s[i].items = &items[i];
		s[i].n = 1;
	}
	CHECK_INT(pthread_create(&t[0], NULL, submit_all, &s[0]), 0);
	wait_first_entered(r);
	for (i = 1; i <= waiters; i++)
		CHECK_INT(pthread_create(&t[i], NULL, submit_all, &s[i]), 0);
	wait_queued(b, waiters, queued);
	release(r);
	for (i = 0; i <= waiters; i++)
		CHECK_INT(pthread_join(t[i], NULL), 0);

	CHECK_INT(r->total, waiters + 1);
	CHECK_INT(r->order[0], 0);
	CHECK_INT(r->sizes[0], !more ? 1 : waiters + 1 < max ? waiters + 1 : max);
	for (i = 0; i < waiters; i++)
		CHECK_INT(r->order[i + 1], queued[i]);
	for (i = 0; i <= waiters; i++)
		CHECK_INT(items[i].runs, 1);
	batch_destroy(b);
	free(items);
	free(s);
	free(t);
	return r->nruns;
}

static void
test_waiters_form_one_batch(void)
{
	struct record	r;

	CHECK_INT(hold_and_release(64, 20, 0, &r), 2);
	CHECK_INT(r.sizes[1], 20);
	record_destroy(&r);
}

/* A run that waited, then took more, carries everything that queued
 * while it waited, up to max. */
static void
test_more_joins_the_run(void)
{
	struct record	r;

	CHECK_INT(hold_and_release(64, 20, 1, &r), 1);
	record_destroy(&r);

	CHECK_INT(hold_and_release(8, 20, 1, &r), 3);
	CHECK_INT(r.sizes[1], 8);
	CHECK_INT(r.sizes[2], 5);
	record_destroy(&r);
}

static void
test_batches_at_most_max(void)
{
	struct record	r;

	CHECK_INT(hold_and_release(8, 20, 0, &r), 4);
	CHECK_INT(r.sizes[1], 8);
	CHECK_INT(r.sizes[2], 8);
	CHECK_INT(r.sizes[3], 4);
	record_destroy(&r);

	CHECK_INT(hold_and_release(1, 5, 0, &r), 6);
	record_destroy(&r);
}

static void
posted_done(struct batch_item *bi)
{
	(void)bi;
	__atomic_add_fetch(&completed, 1, __ATOMIC_ACQ_REL);
}

/* Waits, at most WAIT_LIMIT_S, until n posted items are completed. */
static void
wait_completed(int n)
{
	struct timespec	start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (__atomic_load_n(&completed, __ATOMIC_ACQUIRE) < n &&
	    elapsed_s(&start) <= WAIT_LIMIT_S)
		pause_ms(1);
	CHECK_INT(__atomic_load_n(&completed, __ATOMIC_ACQUIRE), n);
}

/*
 * The first run (one item) is held while three more queue up. The second
 * run finds the first one's item not yet completed, completes it when it
 * asks, and its own items are completed at once after it, since nothing
 * else is queued.
 */
static void
test_previous_completed_during_next_run(void)
{
	struct record		 r;
	struct item		 items[4];
	struct batch_item	 posted[4];
	int			 queued[4];
	size_t			 i;

	record_init(&r, 8, 1);
	r.previous = 1;
	CHECK_INT(batch_init(&r.batch, r.max, run, &r), 0);
	for (i = 0; i < 4; i++) {
		items[i].id = (int)i;
		items[i].runs = 0;
		posted[i].arg = &items[i];
		posted[i].done = posted_done;
	}
	batch_post(&r.batch, &posted[0]);
	wait_first_entered(&r);
	for (i = 1; i < 4; i++)
		batch_post(&r.batch, &posted[i]);
	wait_queued(&r.batch, 3, queued);
	release(&r);
	wait_completed(4);
	CHECK_INT(r.nruns, 2);
	CHECK_INT(r.sizes[1], 3);
	batch_destroy(&r.batch);
	record_destroy(&r);
}

/* Alone, a submit runs at once, by itself. */
static void
test_alone(void)
{
	struct batch	b;
	struct record	r;
	struct item	it;
	int		i;

	record_init(&r, 4, 0);
	CHECK_INT(batch_init(&b, r.max, run, &r), 0);
	for (i = 0; i < 100; i++) {
		it.id = i;
		it.runs = 0;
		batch_submit(&b, &it);
		CHECK_INT(it.runs, 1);
	}
	CHECK_INT(r.nruns, 100);
	CHECK_INT(r.total, 100);
	CHECK_INT(r.sizes[0], 1);
	CHECK_INT(r.sizes[MAX_RUNS - 1], 1);
	batch_destroy(&b);
	record_destroy(&r);
}

/* max 0 means 1. */
static void
test_max_zero(void)
{
	struct batch	b;
	struct record	r;
	struct item	it = { 1, 0 };

	record_init(&r, 1, 0);
	CHECK_INT(batch_init(&b, 0, run, &r), 0);
	CHECK_INT(b.max, 1);
	batch_submit(&b, &it);
	CHECK_INT(it.runs, 1);
	CHECK_INT(r.nruns, 1);
	batch_destroy(&b);
	record_destroy(&r);
}

int
main(void)
{
	test_alone();
	test_max_zero();
	test_waiters_form_one_batch();
	test_batches_at_most_max();
	test_more_joins_the_run();
	test_previous_completed_during_next_run();
	test_many_threads();
	return 0;
}
