/* tally - batch: combines the requests that are waiting at the same time
 * into one database round trip. The first thread to arrive leads: it takes
 * everything queued (at most max), runs it, hands the results out and
 * passes the lead to the next waiter. Nobody waits for a timer: a request
 * alone runs at once, and requests that arrive while a round trip is under
 * way form the next batch. The run function is never called by two
 * threads at once, so it may own a database connection. */
#ifndef TALLY_BATCH_H
#define TALLY_BATCH_H

#include <pthread.h>
#include <stddef.h>

struct batch_item {
	struct batch_item	*next;
	pthread_cond_t		 cond;
	int			 done;
	int			 lead;
	void			*arg;	/* the caller's input and output */
};

typedef void	(*batch_run_fn)(void *ctx, struct batch_item **items, size_t n);

struct batch {
	pthread_mutex_t		 mu;
	struct batch_item	*head;
	struct batch_item	**tail;
	struct batch_item	**items;	/* the leader's, max long */
	int			 leading;
	size_t			 max;
	batch_run_fn		 run;
	void			*ctx;
};

/* Returns 0, or -1 if out of memory. */
int	batch_init(struct batch *b, size_t max, batch_run_fn run, void *ctx);
void	batch_destroy(struct batch *b);

/* Queues arg and returns once run() has been called with it. */
void	batch_submit(struct batch *b, void *arg);

#endif
