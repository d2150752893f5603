/* tally - pshared: memory a parent maps before it forks its workers,
 * shared with them all, and the robust mutex that guards it. */
#ifndef TALLY_PSHARED_H
#define TALLY_PSHARED_H

#include <pthread.h>
#include <stddef.h>

/* size bytes of zeroed anonymous memory, shared with the processes
 * forked afterwards; NULL (errno set) if it cannot be mapped. */
void	*pshared_map(size_t size);

/* Makes *mu a process-shared, robust mutex (a holder's death leaves it
 * EOWNERDEAD for the next). Returns 0 or the error number. */
int	 pshared_mutex_init(pthread_mutex_t *mu);

#endif
