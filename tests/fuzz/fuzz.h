/* tally - what the libFuzzer harnesses share: the entry point's prototype
 * and turning the fuzzer's bytes into strings. */
#ifndef TALLY_FUZZ_H
#define TALLY_FUZZ_H

#undef NDEBUG
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input (it ends at its first NUL byte). */
static inline char *
fuzz_string(const uint8_t *data, size_t size)
{
	char	*s = malloc(size + 1);

	assert(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Ends the line that starts at s; returns the next line, or NULL when s
 * was the last one. */
static inline char *
fuzz_next_line(char *s)
{
	char	*nl = strchr(s, '\n');

	if (nl == NULL)
		return NULL;
	*nl = '\0';
	return nl + 1;
}

#endif
