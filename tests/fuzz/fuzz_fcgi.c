/* tally - fuzzes stream_fcgi, tally-stream's FastCGI record reader: any
 * bytes, as lighttpd's side of a connection, fed in pieces whose sizes
 * the first byte chooses. It must never read outside what it was given
 * or keep more than its bounds; the parameters it completes (at most
 * once) are "NAME=value" strings, each with a name; and the records it
 * writes read back as STDOUT of the same request. */
#include "fuzz.h"

#include "stream_fcgi.h"

static void
check_params(const struct stream_fcgi *p)
{
	size_t	i;

	assert(p->envp != NULL);
	for (i = 0; p->envp[i] != NULL; i++) {
		assert(i < STREAM_FCGI_NPARAMS_MAX);
		assert(strchr(p->envp[i], '=') != NULL);
		assert(p->envp[i][0] != '=');
	}
}

/* Writes data as STDOUT records and an end, and checks the framing. */
static void
check_writer(const uint8_t *data, size_t size)
{
	unsigned char	out[4096 + 64];
	size_t		n, at = 0, len, seen = 0;

	if (size > 4096)
		size = 4096;
	n = stream_fcgi_stdout(out, sizeof(out), 1, data, size);
	assert(size == 0 ? n == 0 : n == size + 8);
	n += stream_fcgi_end(out + n, sizeof(out) - n, 1);
	while (at < n) {
		assert(n - at >= 8);
		assert(out[at] == 1 && out[at + 2] == 0 && out[at + 3] == 1);
		len = ((size_t)out[at + 4] << 8) | out[at + 5];
		if (out[at + 1] == 6) {
			assert(memcmp(out + at + 8, data + seen, len) == 0);
			seen += len;
		} else
			assert(out[at + 1] == 3 && len == 8);
		at += 8 + len;
	}
	assert(at == n && seen == size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream_fcgi	p;
	size_t			piece, at = 1, n;
	int			rc, done = 0;

	if (size == 0)
		return 0;
	piece = (size_t)data[0] % 17 + 1;	/* 1 to 17 bytes at a time */
	stream_fcgi_init(&p);
	while (at < size) {
		n = size - at < piece ? size - at : piece;
		rc = stream_fcgi_feed(&p, data + at, n);
		assert(rc >= -1 && rc <= 1);
		if (rc < 0)
			break;
		if (rc == 1) {
			assert(!done);
			done = 1;
			check_params(&p);
		}
		assert(p.params_len <= STREAM_FCGI_PARAMS_MAX);
		at += n;
	}
	stream_fcgi_free(&p);
	check_writer(data, size);
	return 0;
}
