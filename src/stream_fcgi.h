/* tally - stream_fcgi: the FastCGI records of one request, read and
 * written without libfcgi, for a responder that serves many connections
 * from one loop (src/stream.c). Only what lighttpd sends a responder:
 * BEGIN_REQUEST (role RESPONDER), PARAMS, STDIN, ABORT_REQUEST; one
 * request per connection. Everything it keeps is bounded. */
#ifndef TALLY_STREAM_FCGI_H
#define TALLY_STREAM_FCGI_H

#include <stddef.h>

/* Most bytes of PARAMS a request may send (lighttpd's request headers
 * are at most 8 KiB by default), and most parameters. */
#define STREAM_FCGI_PARAMS_MAX	32768
#define STREAM_FCGI_NPARAMS_MAX	256

struct stream_fcgi {
	unsigned char	 hdr[8];	/* the record header being read */
	size_t		 hdr_len;
	unsigned int	 type;		/* of the record being read */
	size_t		 content_left, padding_left;
	unsigned int	 request_id;
	int		 begun;		/* BEGIN_REQUEST seen */
	int		 params_done;	/* the empty PARAMS record seen */
	int		 stdin_done;
	int		 aborted;	/* ABORT_REQUEST */
	/* PARAMS as sent, then (once done) "NAME=value" strings */
	unsigned char	*params;
	size_t		 params_len;
	char		**envp;		/* NULL-terminated, into strings */
	char		*strings;
};

void	stream_fcgi_init(struct stream_fcgi *p);
void	stream_fcgi_free(struct stream_fcgi *p);
/* Frees the parameters (envp) once they are no longer needed; the
 * request id and the state stay. */
void	stream_fcgi_release(struct stream_fcgi *p);

/* Reads len bytes from the connection. Returns 1 when they completed
 * the parameters (envp is then set; once per request), 0 when more may
 * come, -1 on a protocol error (the connection is to be closed). After
 * an ABORT_REQUEST, aborted is set. STDIN is read and dropped. */
int	stream_fcgi_feed(struct stream_fcgi *p, const unsigned char *buf,
	    size_t len);

/* Writes data as STDOUT records of request id into out (cap bytes):
 * returns the bytes written, 0 if len is 0 or they do not fit. */
size_t	stream_fcgi_stdout(unsigned char *out, size_t cap, unsigned int id,
	    const unsigned char *data, size_t len);

/* The request's end: an empty STDOUT record and END_REQUEST (complete,
 * status 0). Returns the bytes written (24), 0 if cap is too small. */
size_t	stream_fcgi_end(unsigned char *out, size_t cap, unsigned int id);

#endif
