/* tally - batch: combines concurrent requests into one round trip. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "batch.h"

/* Appends queued items to items[0..n-1], up to max in all; returns the
 * new count. Called with the mutex held. */
static size_t
batch_take(struct batch *b, struct batch_item **items, size_t n)
{
	while (b->head != NULL && n < b->max) {
		items[n++] = b->head;
		b->head = b->head->next;
	}
	if (b->head == NULL)
		b->tail = &b->head;
	return n;
}

/* Completes the items of a run. A posted item may be freed by its done
 * function, so nothing touches it afterwards. */
static void
batch_complete(struct batch_item **items, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (items[i]->done != NULL)
			items[i]->done(items[i]);
		else
			sem_post(&items[i]->sem);
}

void
batch_complete_previous(struct batch *b)
{
	size_t	n = b->nprevious;

	b->nprevious = 0;
	batch_complete(b->previous, n);
}

/*
 * Takes what is queued and runs it; the items of the run before are
 * completed during this run (batch_complete_previous) or right after it.
 * With nothing queued, the last run's items are completed at once.
 */
static void *
batch_runner(void *arg)
{
	struct batch		 *b = arg;
	struct batch_item	**ran;
	size_t			  n;

	pthread_mutex_lock(&b->mu);
	for (;;) {
		if (b->head == NULL && b->nprevious > 0) {
			pthread_mutex_unlock(&b->mu);
			batch_complete_previous(b);
			pthread_mutex_lock(&b->mu);
			continue;
		}
		while (b->head == NULL && !b->stopping) {
			b->idle = 1;
			pthread_cond_wait(&b->work, &b->mu);
			b->idle = 0;
		}
		if (b->head == NULL)
			break;		/* stopping, and nothing left */
		n = batch_take(b, b->items, 0);
		pthread_mutex_unlock(&b->mu);
		n = b->run(b->ctx, b->items, n);
		batch_complete_previous(b);
		ran = b->items;
		b->items = b->previous;
		b->previous = ran;
		b->nprevious = n;
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

int
batch_init(struct batch *b, size_t max, batch_run_fn run, void *ctx)
{
	sigset_t	all, old;
	int		rc;

	b->head = NULL;
	b->tail = &b->head;
	b->max = max > 0 ? max : 1;
	b->nprevious = 0;
	b->idle = 0;
	b->stopping = 0;
	b->started = 0;
	b->run = run;
	b->ctx = ctx;
	b->items = calloc(b->max, sizeof(*b->items));
	b->previous = calloc(b->max, sizeof(*b->previous));
	if (b->items == NULL || b->previous == NULL)
		goto fail;
	if (pthread_mutex_init(&b->mu, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&b->work, NULL) != 0) {
		pthread_mutex_destroy(&b->mu);
		goto fail;
	}
	/* The runner takes no asynchronous signals: they are for the
	 * threads that accept requests and the one that waits for a stop.
	 * Faults stay unblocked (blocked, they kill the process): stats
	 * repairs a truncated file on SIGBUS. */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGSEGV);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&b->runner, NULL, batch_runner, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&b->work);
		pthread_mutex_destroy(&b->mu);
		goto fail;
	}
	b->started = 1;
	return 0;
fail:
	free(b->items);
	free(b->previous);
	b->items = b->previous = NULL;
	return -1;
}

void
batch_destroy(struct batch *b)
{
	if (!b->started)
		return;
	pthread_mutex_lock(&b->mu);
	b->stopping = 1;
	pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->runner, NULL);
	b->started = 0;
	pthread_cond_destroy(&b->work);
	pthread_mutex_destroy(&b->mu);
	free(b->items);
	free(b->previous);
	b->items = b->previous = NULL;
}

void
batch_post(struct batch *b, struct batch_item *item)
{
	item->next = NULL;
	pthread_mutex_lock(&b->mu);
	*b->tail = item;
	b->tail = &item->next;
	if (b->idle)
		pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->mu);
}

size_t
batch_more(struct batch *b, struct batch_item **items, size_t n)
{
	pthread_mutex_lock(&b->mu);
	n = batch_take(b, items, n);
	pthread_mutex_unlock(&b->mu);
	return n;
}

void
batch_submit(struct batch *b, void *arg)
{
	struct batch_item	self;

	self.arg = arg;
	self.done = NULL;
	sem_init(&self.sem, 0, 0);
	batch_post(b, &self);
	while (sem_wait(&self.sem) != 0 && errno == EINTR)
		;
	sem_destroy(&self.sem);
}
