/* tally - shmfile: a file of the run directory that every process which
 * opens it maps shared (the statistics, the combining of statements
 * across processes). The file is opened without following a symbolic
 * link and used only if it is a regular file of this user with one name,
 * mode 0660 or less and not larger than asked; a shorter one (new, or
 * truncated) is extended. A file truncated later, under the mapping, is
 * extended again by the first access that faults on it: the SIGBUS
 * handler extends it and the access runs again, on zeroed pages. */
#ifndef TALLY_SHMFILE_H
#define TALLY_SHMFILE_H

#include <stddef.h>

struct shmfile {
	void	*base;		/* the mapping, or NULL */
	size_t	 size;
	int	 fd;
	int	 repaired;	/* atomic; see shmfile_repaired */
};

#define SHMFILE_MAX	4	/* mappings one process may hold */

/* Maps size bytes of path into f; what names it in the log ("stats").
 * f must stay where it is while mapped. Returns 0, or -1 after logging
 * why (f->base is then NULL). */
int	shmfile_map(struct shmfile *f, const char *path, size_t size,
	    const char *what);

/* 1, once, after the SIGBUS handler extended f's file again (its content
 * is then zero), else 0. */
int	shmfile_repaired(struct shmfile *f);

#endif
