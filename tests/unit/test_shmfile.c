/* tally - unit tests for shmfile: a new file is made at the size asked; a
 * file truncated under the mapping is extended again by the first access
 * that faults on it, which then reads zero, and shmfile_repaired says so
 * once; a symbolic link, a file others may write, a file with a second
 * name and a larger file are refused and left as they were. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "shmfile.h"

#define SIZE	8192	/* two pages: the second one faults too */

static char	dir[] = "/tmp/tally-test-shmfile.XXXXXX";

static const char *
path_of(const char *name)
{
	static char	path[256];

	CHECK((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) <
	    sizeof(path));
	return path;
}

static off_t
size_of(const char *path)
{
	struct stat	st;

	CHECK_INT(lstat(path, &st), 0);
	return st.st_size;
}

/* Each SIZE-byte file that the test maps stays mapped to its end. */
static struct shmfile	files[SHMFILE_MAX];

static void
test_new_file(void)
{
	const char	*path = path_of("new");

	CHECK_INT(shmfile_map(&files[0], path, SIZE, "test"), 0);
	CHECK(files[0].base != NULL);
	CHECK_INT(size_of(path), SIZE);
	CHECK_INT(((volatile uint64_t *)files[0].base)[0], 0);
	CHECK_INT(shmfile_repaired(&files[0]), 0);
}

static void
test_truncated_under_the_mapping(void)
{
	const char		*path = path_of("cut");
	volatile uint64_t	*words;

	CHECK_INT(shmfile_map(&files[1], path, SIZE, "test"), 0);
	words = files[1].base;
	words[0] = 41;
	words[SIZE / sizeof(*words) - 1] = 42;
	CHECK_INT(truncate(path, 0), 0);
	/* These accesses fault; the handler extends the file again. */
	CHECK_INT(words[SIZE / sizeof(*words) - 1], 0);
	CHECK_INT(size_of(path), SIZE);
	CHECK_INT(words[0], 0);
	words[0] = 7;
	CHECK_INT(words[0], 7);
	CHECK_INT(shmfile_repaired(&files[1]), 1);
	CHECK_INT(shmfile_repaired(&files[1]), 0);
	/* The first mapping was not touched by it. */
	CHECK_INT(shmfile_repaired(&files[0]), 0);
}

/* shmfile_map refuses path; the file is left as it was. */
static void
check_refused(const char *path, off_t size_before)
{
	struct shmfile	f;

	CHECK_INT(shmfile_map(&f, path, SIZE, "test"), -1);
	CHECK(f.base == NULL);
	CHECK_INT(size_of(path), size_before);
}

static void
test_refused(void)
{
	char	target[256];
	int	fd;

	/* path_of's buffer is reused: keep the target's own copy. */
	(void)snprintf(target, sizeof(target), "%s", path_of("target"));
	fd = open(target, O_CREAT | O_WRONLY | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "keep", 4), 4);
	CHECK_INT(close(fd), 0);

	check_case("a symbolic link");
	CHECK_INT(symlink(target, path_of("link")), 0);
	check_refused(path_of("link"), (off_t)strlen(target));
	CHECK_INT(size_of(target), 4);

	check_case("a second name");
	CHECK_INT(link(target, path_of("hard")), 0);
	check_refused(path_of("hard"), 4);
	CHECK_INT(unlink(path_of("hard")), 0);

	check_case("mode 0666");
	CHECK_INT(chmod(target, 0666), 0);
	check_refused(target, 4);

	check_case("larger than asked");
	CHECK_INT(chmod(target, 0600), 0);
	CHECK_INT(truncate(target, SIZE + 1), 0);
	check_refused(target, SIZE + 1);
	check_case_end();
}

static void
remove_dir(void)
{
	const char	*names[] = { "new", "cut", "target", "link" };
	size_t		 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)unlink(path_of(names[i]));
	(void)rmdir(dir);
}

int
main(void)
{
	log_init("test_shmfile");
	CHECK(mkdtemp(dir) != NULL);
	test_new_file();
	test_truncated_under_the_mapping();
	test_refused();
	remove_dir();
	return 0;
}
