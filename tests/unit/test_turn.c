/* tally - unit tests for turn: processes forked after turn_init hold the
 * turn one at a time; a holder that dies hands it on to the next one to
 * ask; a wait for a turn that is not given back ends at its bound. */
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "timestamp.h"
#include "turn.h"

#define CHILDREN	3
#define ROUNDS		2000

/* Memory the children share with the test, beside the turn. */
struct shared {
	long	count;		/* plain: only written inside the turn */
	int	inside;		/* atomic: holders at this moment */
};

static struct shared *
shared_new(void)
{
	struct shared	*sh;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	sh->count = 0;
	sh->inside = 0;
	return sh;
}

/* Waits for a child and checks that it exited 0. */
static void
reap(pid_t pid)
{
	int	status;

	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), 0);
}

static void
take_turns(struct shared *sh)
{
	long	seen;
	int	i;

	for (i = 0; i < ROUNDS; i++) {
		CHECK_INT(turn_take(10000, NULL, NULL), 0);
		CHECK_INT(__atomic_add_fetch(&sh->inside, 1, __ATOMIC_ACQ_REL),
		    1);
		seen = sh->count;
		if (i % 64 == 0)
			sched_yield();	/* let another try to get in */
		sh->count = seen + 1;
		__atomic_sub_fetch(&sh->inside, 1, __ATOMIC_ACQ_REL);
		turn_give();
	}
}

/* Every increment made inside the turn survives: nobody else was in. */
static void
test_one_holder_at_a_time(struct shared *sh)
{
	pid_t	pids[CHILDREN];
	int	i;

	for (i = 0; i < CHILDREN; i++) {
		CHECK((pids[i] = fork()) >= 0);
		if (pids[i] == 0) {
			take_turns(sh);
			_exit(0);
		}
	}
	for (i = 0; i < CHILDREN; i++)
		reap(pids[i]);
	CHECK_INT(sh->count, CHILDREN * ROUNDS);
}

/* A child takes the turn and exits without giving it back. */
static void
test_holder_dies(void)
{
	pid_t	pid;

	CHECK((pid = fork()) >= 0);
	if (pid == 0) {
		CHECK_INT(turn_take(1000, NULL, NULL), 0);
		_exit(0);
	}
	reap(pid);
	CHECK_INT(turn_take(1000, NULL, NULL), 0);	/* taken over */
	turn_give();
	CHECK_INT(turn_take(1000, NULL, NULL), 0);	/* and whole again */
	turn_give();
}

static void
count_call(void *arg)
{
	(*(int *)arg)++;
}

/* A child holds the turn until told to give it back: a wait for it ends
 * at its bound, and the turn is there once given. */
static void
test_wait_is_bounded(void)
{
	int64_t		t0, waited_ms;
	int		held[2], go[2], waited_calls = 0;
	char		c = 0;
	pid_t		pid;

	CHECK_INT(pipe(held), 0);
	CHECK_INT(pipe(go), 0);
	CHECK((pid = fork()) >= 0);
	if (pid == 0) {
		CHECK_INT(turn_take(1000, NULL, NULL), 0);
		CHECK_INT(write(held[1], &c, 1), 1);
		CHECK_INT(read(go[0], &c, 1), 1);
		turn_give();
		_exit(0);
	}
	CHECK_INT(read(held[0], &c, 1), 1);
	t0 = monotonic_ms();
	CHECK_INT(turn_take(200, count_call, &waited_calls), -1);
	CHECK_INT(waited_calls, 1);	/* told before it waited */
	waited_ms = monotonic_ms() - t0;
	CHECK(waited_ms >= 199);
	CHECK(waited_ms < 5000);
	CHECK_INT(write(go[1], &c, 1), 1);
	reap(pid);
	CHECK_INT(turn_take(1000, NULL, NULL), 0);
	turn_give();
	close(held[0]);
	close(held[1]);
	close(go[0]);
	close(go[1]);
}

int
main(void)
{
	struct shared	*sh = shared_new();

	CHECK_INT(turn_active(), 0);
	CHECK_INT(turn_take(0, NULL, NULL), -1);	/* no turn before turn_init */
	CHECK_INT(turn_init(), 0);
	CHECK_INT(turn_active(), 1);
	test_one_holder_at_a_time(sh);
	test_holder_dies();
	test_wait_is_bounded();
	munmap(sh, sizeof(*sh));
	return 0;
}
