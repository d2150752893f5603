/* tally - batch: combines concurrent requests into one round trip. */
#include "config.h"

#include <stdlib.h>

#include "batch.h"

int
batch_init(struct batch *b, size_t max, batch_run_fn run, void *ctx)
{
	b->head = NULL;
	b->tail = &b->head;
	b->leading = 0;
	b->max = max > 0 ? max : 1;
	b->run = run;
	b->ctx = ctx;
	if ((b->items = calloc(b->max, sizeof(*b->items))) == NULL)
		return -1;
	if (pthread_mutex_init(&b->mu, NULL) != 0) {
		free(b->items);
		return -1;
	}
	return 0;
}

void
batch_destroy(struct batch *b)
{
	pthread_mutex_destroy(&b->mu);
	free(b->items);
}

/* Takes up to max items off the queue. Called with the mutex held. */
static size_t
batch_take(struct batch *b, struct batch_item **items)
{
	size_t	n = 0;

	while (b->head != NULL && n < b->max) {
		items[n++] = b->head;
		b->head = b->head->next;
	}
	if (b->head == NULL)
		b->tail = &b->head;
	return n;
}

void
batch_submit(struct batch *b, void *arg)
{
	struct batch_item	 self, **items;
	size_t			 n, i;

	self.next = NULL;
	self.done = 0;
	self.lead = 0;
	self.arg = arg;
	pthread_cond_init(&self.cond, NULL);

	pthread_mutex_lock(&b->mu);
	*b->tail = &self;
	b->tail = &self.next;
	if (!b->leading)
		b->leading = self.lead = 1;
	while (!self.done && !self.lead)
		pthread_cond_wait(&self.cond, &b->mu);
	if (self.done) {
		pthread_mutex_unlock(&b->mu);
		pthread_cond_destroy(&self.cond);
		return;
	}

	/* Leading: self is at the head of the queue, so it is in the batch. */
	items = b->items;
	n = batch_take(b, items);
	pthread_mutex_unlock(&b->mu);
	b->run(b->ctx, items, n);

	pthread_mutex_lock(&b->mu);
	for (i = 0; i < n; i++) {
		items[i]->done = 1;
		pthread_cond_signal(&items[i]->cond);
	}
	if (b->head != NULL) {
		b->head->lead = 1;
		pthread_cond_signal(&b->head->cond);
	} else
		b->leading = 0;
	pthread_mutex_unlock(&b->mu);
	pthread_cond_destroy(&self.cond);
}
