/* tally - batch: combines the requests that are waiting at the same time
 * into one database round trip. One thread per batch (the runner) takes
 * everything queued (at most max), runs it, completes every item, and
 * takes what queued up meanwhile. Nobody waits for a timer: a request
 * alone runs at once, and requests that arrive while a round trip is
 * under way form the next batch. The run function is only ever called by
 * the runner, so it may own a database connection.
 *
 * The runner completes a run's items while the next run's round trip is
 * under way: when the next run starts to wait and calls
 * batch_complete_previous, or at once when nothing is queued. So the
 * database does not sit idle while the answers of a batch are written.
 *
 * An item is either posted (batch_post: the caller goes on, and the
 * runner calls the item's done function after the run, which may answer
 * and end the request) or submitted (batch_submit: the caller waits). */
#ifndef TALLY_BATCH_H
#define TALLY_BATCH_H

#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>

struct batch_item;
typedef void	(*batch_done_fn)(struct batch_item *item);

struct batch_item {
	struct batch_item	*next;
	void			*arg;	/* the caller's input and output */
	batch_done_fn		 done;	/* posted: called after the run */
	sem_t			 sem;	/* submitted: posted after the run */
};

/* Runs items[0..n-1] and returns how many it ran: n, or more if it took
 * more with batch_more (items has room for max). */
typedef size_t	(*batch_run_fn)(void *ctx, struct batch_item **items, size_t n);

struct batch {
	pthread_mutex_t		 mu;
	pthread_cond_t		 work;		/* the queue is not empty */
	struct batch_item	*head;
	struct batch_item	**tail;
	struct batch_item	**items;	/* the runner's, max long */
	struct batch_item	**previous;	/* the last run's, max long */
	size_t			 nprevious;	/* of those, not completed */
	size_t			 max;
	int			 idle;		/* the runner waits for work */
	int			 stopping;
	int			 started;
	pthread_t		 runner;
	batch_run_fn		 run;
	void			*ctx;
};

/* Starts the runner. Returns 0, or -1 if out of memory or threads. */
int	batch_init(struct batch *b, size_t max, batch_run_fn run, void *ctx);

/* Runs and completes everything still queued, then stops the runner. */
void	batch_destroy(struct batch *b);

/* Queues item (arg and done set by the caller) and returns at once; the
 * runner calls item->done(item) once the run that took it is over. */
void	batch_post(struct batch *b, struct batch_item *item);

/* Queues arg and returns once run() has been called with it. */
void	batch_submit(struct batch *b, void *arg);

/* For the run function only: completes the items of the run before it,
 * unless that is done. Call it when the run starts to wait (for its
 * round trip, for its turn), so that their answers are written
 * meanwhile; the runner calls it after run() otherwise. */
void	batch_complete_previous(struct batch *b);

/* For the run function only: appends to its n items what queued since
 * they were taken, up to max in all, and returns the new count. A run
 * that had to wait before its round trip (for its turn: turn.h) so
 * carries every request that arrived in the meantime. */
size_t	batch_more(struct batch *b, struct batch_item **items, size_t n);

#endif
