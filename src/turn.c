/* tally - turn: one counter statement at a time among the worker
 * processes of a responder. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "log.h"
#include "pshared.h"
#include "turn.h"

struct turn {
	pthread_mutex_t	mu;	/* process-shared, robust */
};

/* In memory shared with the parent and every worker; NULL: no turns. */
static struct turn	*turn;

int
turn_init(void)
{
	struct turn	*t;
	int		 rc;

	if ((t = pshared_map(sizeof(struct turn))) == NULL) {
		log_warn("turn: cannot map shared memory; the processes' "
		    "statements go without turns", "error", strerror(errno),
		    NULL);
		return -1;
	}
	if ((rc = pshared_mutex_init(&t->mu)) != 0) {
		log_warn("turn: cannot make a shared mutex; the processes' "
		    "statements go without turns", "error", strerror(rc),
		    NULL);
		munmap(t, sizeof(struct turn));
		return -1;
	}
	turn = t;
	return 0;
}

int
turn_active(void)
{
	return turn != NULL;
}

int
turn_take(unsigned int timeout_ms, void (*waiting)(void *), void *arg)
{
	struct timespec	deadline;
	int		rc;

	if (turn == NULL)
		return -1;
	if ((rc = pthread_mutex_trylock(&turn->mu)) == EBUSY) {
		if (waiting != NULL)
			waiting(arg);
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += (time_t)(timeout_ms / 1000);
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		rc = pthread_mutex_clocklock(&turn->mu, CLOCK_MONOTONIC,
		    &deadline);
	}
	if (rc == EOWNERDEAD) {
		/* Its holder died during a statement: whatever that
		 * statement did, the database settles it alone. */
		pthread_mutex_consistent(&turn->mu);
		log_warn("turn: its holder died; taken over", NULL);
		rc = 0;
	}
	if (rc == 0)
		return 0;
	if (rc == ETIMEDOUT)
		log_warn("turn: not given back in time; this statement goes "
		    "without it", NULL);
	else
		log_warn("turn: cannot take it", "error", strerror(rc), NULL);
	return -1;
}

void
turn_give(void)
{
	pthread_mutex_unlock(&turn->mu);
}
