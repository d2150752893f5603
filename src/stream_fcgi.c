/* tally - stream_fcgi: FastCGI records without libfcgi. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "stream_fcgi.h"

#define VERSION_1		1
#define TYPE_BEGIN_REQUEST	1
#define TYPE_ABORT_REQUEST	2
#define TYPE_END_REQUEST	3
#define TYPE_PARAMS		4
#define TYPE_STDIN		5
#define TYPE_STDOUT		6
#define ROLE_RESPONDER		1
#define HEADER_LEN		8
#define RECORD_MAX		65535

void
stream_fcgi_init(struct stream_fcgi *p)
{
	memset(p, 0, sizeof(*p));
}

void
stream_fcgi_release(struct stream_fcgi *p)
{
	free(p->params);
	free(p->envp);
	free(p->strings);
	p->params = NULL;
	p->envp = NULL;
	p->strings = NULL;
	p->params_len = 0;
}

void
stream_fcgi_free(struct stream_fcgi *p)
{
	free(p->params);
	free(p->envp);
	free(p->strings);
	stream_fcgi_init(p);
}

/* A name's or value's length in PARAMS: 1 byte, or 4 with the high bit
 * set. Returns 0, or -1 if it does not fit in the n bytes left. */
static int
param_len(const unsigned char *b, size_t n, size_t *at, size_t *len)
{
	if (*at >= n)
		return -1;
	if ((b[*at] & 0x80) == 0) {
		*len = b[(*at)++];
		return 0;
	}
	if (n - *at < 4)
		return -1;
	*len = ((size_t)(b[*at] & 0x7f) << 24) | ((size_t)b[*at + 1] << 16) |
	    ((size_t)b[*at + 2] << 8) | b[*at + 3];
	*at += 4;
	return 0;
}

/* PARAMS to envp: "NAME=value" each. Returns 0, or -1 if malformed. */
static int
params_parse(struct stream_fcgi *p)
{
	size_t	at = 0, nlen, vlen, n = 0, used = 0;
	char	*s;

	/* each pair takes at least 2 bytes and becomes at most 2 more */
	if ((p->strings = malloc(p->params_len + p->params_len / 2 + 1)) ==
	    NULL || (p->envp = calloc(STREAM_FCGI_NPARAMS_MAX + 1,
	    sizeof(*p->envp))) == NULL)
		return -1;
	while (at < p->params_len) {
		if (param_len(p->params, p->params_len, &at, &nlen) != 0 ||
		    param_len(p->params, p->params_len, &at, &vlen) != 0 ||
		    nlen > p->params_len - at ||
		    vlen > p->params_len - at - nlen || nlen == 0 ||
		    n >= STREAM_FCGI_NPARAMS_MAX)
			return -1;
		s = p->strings + used;
		memcpy(s, p->params + at, nlen);
		s[nlen] = '=';
		memcpy(s + nlen + 1, p->params + at + nlen, vlen);
		s[nlen + 1 + vlen] = '\0';
		/* a NUL inside would cut the name or value short, and an
		 * '=' in the name would move where the value starts */
		if (memchr(s, '\0', nlen + 1 + vlen) != NULL ||
		    memchr(s, '=', nlen) != NULL)
			return -1;
		p->envp[n++] = s;
		used += nlen + vlen + 2;
		at += nlen + vlen;
	}
	free(p->params);
	p->params = NULL;
	return 0;
}

/* A record's content (or part of it). Returns as stream_fcgi_feed. */
static int
record_content(struct stream_fcgi *p, const unsigned char *b, size_t n,
    int last)
{
	unsigned char	*grown;

	switch (p->type) {
	case TYPE_BEGIN_REQUEST:
		/* 8 bytes: role (2), flags, reserved; read when whole */
		if (p->params_len + n > 8)
			return -1;
		if ((grown = realloc(p->params, p->params_len + n + 1)) == NULL)
			return -1;
		p->params = grown;
		memcpy(p->params + p->params_len, b, n);
		p->params_len += n;
		if (!last)
			return 0;
		if (p->params_len != 8 || p->params[0] != 0 ||
		    p->params[1] != ROLE_RESPONDER)
			return -1;
		p->params_len = 0;
		p->begun = 1;
		return 0;
	case TYPE_PARAMS:
		if (p->params_len + n > STREAM_FCGI_PARAMS_MAX)
			return -1;
		if (n == 0)
			return 0;
		if ((grown = realloc(p->params, p->params_len + n + 1)) == NULL)
			return -1;
		p->params = grown;
		memcpy(p->params + p->params_len, b, n);
		p->params_len += n;
		return 0;
	default:	/* STDIN: dropped */
		return 0;
	}
}

/* A whole header was read: checks it. */
static int
record_begin(struct stream_fcgi *p)
{
	unsigned int	id;

	if (p->hdr[0] != VERSION_1)
		return -1;
	p->type = p->hdr[1];
	id = ((unsigned int)p->hdr[2] << 8) | p->hdr[3];
	p->content_left = ((size_t)p->hdr[4] << 8) | p->hdr[5];
	p->padding_left = p->hdr[6];
	switch (p->type) {
	case TYPE_BEGIN_REQUEST:
		if (p->begun || id == 0 || p->content_left != 8)
			return -1;
		p->request_id = id;
		p->params_len = 0;
		return 0;
	case TYPE_ABORT_REQUEST:
		if (!p->begun || id != p->request_id)
			return -1;
		p->aborted = 1;
		return 0;
	case TYPE_PARAMS:
		if (!p->begun || p->params_done || id != p->request_id)
			return -1;
		return 0;
	case TYPE_STDIN:
		if (!p->params_done || p->stdin_done || id != p->request_id)
			return -1;
		if (p->content_left == 0)
			p->stdin_done = 1;
		return 0;
	default:	/* management records, other roles' streams */
		return -1;
	}
}

int
stream_fcgi_feed(struct stream_fcgi *p, const unsigned char *buf,
    size_t len)
{
	size_t	n;
	int	done = 0;

	while (len > 0) {
		if (p->hdr_len < HEADER_LEN) {
			n = HEADER_LEN - p->hdr_len;
			if (n > len)
				n = len;
			memcpy(p->hdr + p->hdr_len, buf, n);
			p->hdr_len += n;
			buf += n;
			len -= n;
			if (p->hdr_len < HEADER_LEN)
				break;
			if (record_begin(p) != 0)
				return -1;
			if (p->type == TYPE_PARAMS && p->content_left == 0) {
				p->params_done = 1;
				if (params_parse(p) != 0)
					return -1;
				done = 1;
			}
		}
		n = p->content_left < len ? p->content_left : len;
		if (n > 0 && record_content(p, buf, n, n == p->content_left) !=
		    0)
			return -1;
		p->content_left -= n;
		buf += n;
		len -= n;
		n = p->padding_left < len ? p->padding_left : len;
		p->padding_left -= n;
		buf += n;
		len -= n;
		if (p->content_left == 0 && p->padding_left == 0)
			p->hdr_len = 0;	/* the next record */
	}
	return done;
}

static void
header(unsigned char *h, unsigned int type, unsigned int id, size_t len)
{
	h[0] = VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = 0;
	h[7] = 0;
}

size_t
stream_fcgi_stdout(unsigned char *out, size_t cap, unsigned int id,
    const unsigned char *data, size_t len)
{
	size_t	at = 0, n;

	if (len + (len / RECORD_MAX + 1) * HEADER_LEN > cap)
		return 0;
	while (len > 0) {
		n = len < RECORD_MAX ? len : RECORD_MAX;
		header(out + at, TYPE_STDOUT, id, n);
		memcpy(out + at + HEADER_LEN, data, n);
		at += HEADER_LEN + n;
		data += n;
		len -= n;
	}
	return at;
}

size_t
stream_fcgi_end(unsigned char *out, size_t cap, unsigned int id)
{
	if (cap < 3 * HEADER_LEN)
		return 0;
	header(out, TYPE_STDOUT, id, 0);
	header(out + HEADER_LEN, TYPE_END_REQUEST, id, 8);
	memset(out + 2 * HEADER_LEN, 0, 8);	/* status 0, complete */
	return 3 * HEADER_LEN;
}
