/* tally - pshared: memory shared with forked workers, and its mutex. */
#include "config.h"

#include <sys/mman.h>

#include "pshared.h"

void *
pshared_map(size_t size)
{
	void	*p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    /* cppcheck-suppress invalidFunctionArg */
	    -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	return p;
}

int
pshared_mutex_init(pthread_mutex_t *mu)
{
	pthread_mutexattr_t	attr;
	int			rc;

	if ((rc = pthread_mutexattr_init(&attr)) != 0)
		return rc;
	if ((rc = pthread_mutexattr_setpshared(&attr,
	    PTHREAD_PROCESS_SHARED)) == 0 &&
	    (rc = pthread_mutexattr_setrobust(&attr,
	    PTHREAD_MUTEX_ROBUST)) == 0)
		rc = pthread_mutex_init(mu, &attr);
	pthread_mutexattr_destroy(&attr);
	return rc;
}
