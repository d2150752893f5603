/* tally - shmfile: shared files of the run directory, mapped and kept
 * whole. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "shmfile.h"

/* What the SIGBUS handler looks at: written before the handler is
 * installed, each entry once (atomic stores). */
static struct shmfile	*mapped[SHMFILE_MAX];
static unsigned int	 nmapped;

/*
 * Whether the opened file may be used: a regular file of this user with
 * one name, no permission beyond 0660, at most size bytes. Returns NULL,
 * or why not.
 */
static const char *
file_refused(const struct stat *st, size_t size)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_uid != geteuid())
		return "owned by another user";
	if ((st->st_mode & 07777 & ~(mode_t)0660) != 0)
		return "mode allows more than 0660";
	if (st->st_nlink != 1)
		return "it has other names (hard links)";
	if (st->st_size > (off_t)size)
		return "larger than expected: another layout; remove it and "
		    "restart";
	return NULL;
}

/* Opens path, checks it and extends it to size. Returns the descriptor,
 * or -1 after logging why. */
static int
file_open(const char *path, size_t size, const char *what)
{
	struct stat	 st;
	const char	*why;
	int		 fd;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd == -1) {
		log_error("shared file: cannot open it", "file", what, "path",
		    path, "error", errno == ELOOP ?
		    "it is a symbolic link: refused" : strerror(errno), NULL);
		return -1;
	}
	if (fstat(fd, &st) == -1 ||
	    ((why = file_refused(&st, size)) == NULL &&
	    st.st_size < (off_t)size && ftruncate(fd, (off_t)size) == -1))
		why = strerror(errno);
	if (why != NULL) {
		log_error("shared file: refusing it", "file", what, "path",
		    path, "error", why, NULL);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * SIGBUS in a mapped file means that the file was cut short under the
 * mapping (truncate(1) by hand, a tool that "empties" files): extend it
 * again and return, and the faulting access runs again on zeroed pages.
 * Any other SIGBUS, or a file that cannot be extended, takes the default
 * action on the retried access. Only async-signal-safe calls here.
 */
static void
on_fault(int sig, siginfo_t *si, void *context)
{
	static const struct sigaction	 dfl = { .sa_handler = SIG_DFL };
	const char			*addr = si->si_addr, *base;
	struct shmfile			*f;
	unsigned int			 i, n;
	int				 saved = errno;

	(void)context;
	n = __atomic_load_n(&nmapped, __ATOMIC_ACQUIRE);
	for (i = 0; i < n; i++) {
		f = __atomic_load_n(&mapped[i], __ATOMIC_ACQUIRE);
		base = f->base;
		if (base != NULL && addr >= base && addr < base + f->size &&
		    ftruncate(f->fd, (off_t)f->size) == 0) {
			__atomic_store_n(&f->repaired, 1, __ATOMIC_RELAXED);
			errno = saved;
			return;
		}
	}
	(void)sigaction(sig, &dfl, NULL);
	errno = saved;
}

static void
catch_faults(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) == -1)
		log_warn("shared file: cannot catch SIGBUS; a truncated file "
		    "will stop this process", "error", strerror(errno), NULL);
}

int
shmfile_map(struct shmfile *f, const char *path, size_t size,
    const char *what)
{
	void	*base;
	int	 fd;

	f->base = NULL;
	f->size = size;
	f->fd = -1;
	f->repaired = 0;
	if (nmapped >= SHMFILE_MAX) {
		log_error("shared file: too many", "file", what, NULL);
		return -1;
	}
	if ((fd = file_open(path, size, what)) == -1)
		return -1;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		log_error("shared file: cannot map it", "file", what, "path",
		    path, "error", strerror(errno), NULL);
		close(fd);
		return -1;
	}
	f->fd = fd;
	f->base = base;
	__atomic_store_n(&mapped[nmapped], f, __ATOMIC_RELEASE);
	__atomic_store_n(&nmapped, nmapped + 1, __ATOMIC_RELEASE);
	if (nmapped == 1)
		catch_faults();		/* once: the handler reads the list */
	return 0;
}

int
shmfile_repaired(struct shmfile *f)
{
	if (__atomic_load_n(&f->repaired, __ATOMIC_RELAXED) == 0)
		return 0;
	return __atomic_exchange_n(&f->repaired, 0, __ATOMIC_RELAXED);
}
