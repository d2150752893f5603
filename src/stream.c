/*
 * tally - stream: GET /stream and /stream/NAME, a counter's value as
 * Server-Sent Events (docs/api.md, "/stream").
 *
 * lighttpd opens one FastCGI connection per open stream and keeps it as
 * long as the client does, so libfcgi's thread per request does not fit:
 * this responder serves every connection from one epoll loop with a
 * small FastCGI server of its own (fcgi_*: BEGIN_REQUEST, PARAMS and
 * STDIN in, STDOUT and END_REQUEST out; every read and write
 * non-blocking and bounded). The request itself is read and refused as
 * in every responder (request.c, responder_refuse, response.c, which
 * writes into a buffer here).
 *
 * One database thread holds one connection in LISTEN tally_counter: the
 * schema announces each committed change of a counter's value there
 * (sql/011_announce.sql). It reads the values of counters that a new
 * stream asks for, hands over what it hears, and after each (re)connect
 * the loop has it read every watched counter again, so a notification
 * missed while the connection was down never leaves a stream stale.
 * Announcements come in commit order and are taken as they are (an
 * operator may set a counter lower: tally-admin); a value read may cross
 * one, and then the larger wins. While the database is unreachable new streams get 503 with
 * Retry-After and open ones stay open (heartbeats only).
 *
 * Each stream sends at most TALLY_STREAM_RATE events a second: a change
 * sooner after the last event waits, and then the latest value goes;
 * a comment line every TALLY_STREAM_HEARTBEAT seconds of quiet.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json.h>
#include <libpq-fe.h>

#include "clientip.h"
#include "db.h"
#include "log.h"
#include "request.h"
#include "responder.h"
#include "response.h"
#include "settings.h"
#include "stats.h"
#include "stream_fcgi.h"
#include "timestamp.h"

#define CHANNEL		"tally_counter"
/* A new connection has TALLY_IO_TIMEOUT to send its request; the rest
 * of these bound what one connection may hold. */
#define ANSWER_MAX	4096	/* a whole refusal (404, 405, 503...) */
#define EVENT_MAX	160	/* one event, as STDOUT records */
#define HASH_SIZE	4096
#define SWEEP_MS	1000
#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 1000
#define DB_PING_MS	5000
/* connections beyond TALLY_STREAM_MAX that may be reading a request
 * (to be refused with 503) */
#define EXTRA_CONNS	256
#define LOOKUP_BATCH	1000

/* ---- the counters watched, and their streams ---- */

struct conn;

struct counter {
	char		 name[REQUEST_NAME_MAX + 1];
	long long	 value;
	int		 known;		/* value read or announced */
	int		 asked;		/* a lookup is under way */
	struct conn	*watchers;	/* streams and those waiting */
	struct counter	*next;		/* in its hash chain */
};

struct client {
	char		 ip[IP_TEXT_MAX];
	unsigned int	 streams;
	struct client	*next;
};

enum conn_state {
	CONN_READING,	/* the request's records */
	CONN_WAITING,	/* for the counter's value */
	CONN_STREAMING,
	CONN_CLOSING	/* the last bytes, then close */
};

struct conn {
	int		 fd;
	enum conn_state	 state;
	struct stream_fcgi parser;
	int64_t		 deadline_ms;	/* reading, closing */
	/* streams */
	struct counter	*counter;
	struct conn	*prev, *next;	/* the counter's watchers */
	struct client	*client;
	long long	 sent;		/* the value of the last event */
	int		 sent_any;
	int		 dirty;		/* a change waits for its turn */
	int64_t		 next_event_ms;	/* earliest time of the next */
	int64_t		 quiet_since_ms;
	int		 head;		/* HEAD: headers only */
	enum http_method method;
	enum route	 route;
	int64_t		 started_ms;
	/* bytes not yet written (a socket that was full) */
	unsigned char	*out;
	size_t		 out_len, out_off;
	struct conn	*all_prev, *all_next;	/* every connection */
	struct conn	*next_closed;	/* to free */
};

/* ---- what the database thread and the loop share ---- */

/* VALUE: announced (in commit order); READ: read by a lookup, which may
 * race with announcements. */
enum msg_kind { MSG_VALUE, MSG_READ, MSG_ABSENT, MSG_UP, MSG_DOWN };

struct msg {
	enum msg_kind	 kind;
	long long	 value;
	char		 name[REQUEST_NAME_MAX + 1];
	struct msg	*next;
};

struct shared {
	pthread_mutex_t	 mu;
	int		 wake_loop;	/* eventfd: messages for the loop */
	int		 wake_db;	/* eventfd: lookups, stop */
	struct msg	*head, *tail;
	char		**wanted;	/* names to read */
	size_t		 nwanted, capwanted;
	int		 stop;
};

static const struct responder stream_responder;

static struct settings	 cfg;
static struct shared	*sh;		/* made in main */
static struct counter	*counters[HASH_SIZE];
static struct client	*clients[HASH_SIZE];
static unsigned int	 nstreams, nconns;
static int		 db_up;
/* Whether the database thread has tried once: until then, new streams
 * wait for its answer instead of getting 503. */
static int		 db_tried;
static int		 epfd;
static struct conn	*closed;
static struct conn	*all;
static int		 listening = 1;
static int64_t		 accept_again_ms;
/* when loop_sweep must run next: a coalesced event or the second */
static int64_t		 sweep_due;

static int64_t
now_ms(void)
{
	return monotonic_ms();
}

static unsigned int
hash(const char *s)
{
	uint32_t	h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % HASH_SIZE;
}

static struct counter *
counter_find(const char *name)
{
	struct counter	*c;

	for (c = counters[hash(name)]; c != NULL; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static struct counter *
counter_get(const char *name)
{
	struct counter	*c;
	unsigned int	 h;

	if ((c = counter_find(name)) != NULL)
		return c;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		log_fatal("out of memory", NULL);
	memcpy(c->name, name, strnlen(name, sizeof(c->name) - 1));
	h = hash(name);
	c->next = counters[h];
	counters[h] = c;
	return c;
}

static void
counter_drop_if_unwatched(struct counter *c)
{
	struct counter	**p;

	if (c->watchers != NULL)
		return;
	for (p = &counters[hash(c->name)]; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			free(c);
			return;
		}
}

static struct client *
client_get(const char *ip)
{
	struct client	*c;
	unsigned int	 h = hash(ip);

	for (c = clients[h]; c != NULL; c = c->next)
		if (strcmp(c->ip, ip) == 0)
			return c;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		log_fatal("out of memory", NULL);
	snprintf(c->ip, sizeof(c->ip), "%s", ip);
	c->next = clients[h];
	clients[h] = c;
	return c;
}

static void
client_put(struct client *c)
{
	struct client	**p;

	if (--c->streams > 0)
		return;
	for (p = &clients[hash(c->ip)]; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			free(c);
			return;
		}
}

/* ---- the database thread ---- */

static void
wake(int fd)
{
	uint64_t	one = 1;

	(void)!write(fd, &one, sizeof(one));
}

static void
post(enum msg_kind kind, const char *name, long long value)
{
	struct msg	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		log_fatal("out of memory", NULL);
	m->kind = kind;
	m->value = value;
	if (name != NULL)
		snprintf(m->name, sizeof(m->name), "%s", name);
	pthread_mutex_lock(&sh->mu);
	if (sh->tail != NULL)
		sh->tail->next = m;
	else
		sh->head = m;
	sh->tail = m;
	pthread_mutex_unlock(&sh->mu);
	wake(sh->wake_loop);
}

/* Waits until fd is ready for events or the deadline: 1 ready, 0 not,
 * -1 stop. A wake-up of the thread (a lookup wanted) ends the wait too
 * if woken is set; else the wait goes on (a statement under way). */
static int
db_wait(int fd, short events, int64_t deadline, int woken)
{
	struct pollfd	p[2];
	int64_t		left;
	uint64_t	n;
	int		stop;

	for (;;) {
		left = deadline - now_ms();
		if (left < 0)
			left = 0;
		p[0].fd = fd;
		p[0].events = events;
		p[0].revents = 0;
		p[1].fd = sh->wake_db;
		p[1].events = POLLIN;
		p[1].revents = 0;
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			return 0;
		if (p[1].revents & POLLIN)
			(void)!read(sh->wake_db, &n, sizeof(n));
		pthread_mutex_lock(&sh->mu);
		stop = sh->stop;
		pthread_mutex_unlock(&sh->mu);
		if (stop)
			return -1;
		if ((p[0].revents & (events | POLLHUP | POLLERR)) != 0)
			return 1;
		if (woken || now_ms() >= deadline)
			return 0;
	}
}

/* Runs sql (with nparams text parameters) on conn, bounded by the
 * deadline; returns its last result if every one succeeded, else NULL. */
static PGresult *
db_run(PGconn *conn, const char *sql, int nparams, const char *const *vals,
    int64_t deadline)
{
	PGresult	*r, *last = NULL;
	int		 ok = 1, f;

	if (nparams > 0 ? !PQsendQueryParams(conn, sql, nparams, NULL, vals,
	    NULL, NULL, 0) : !PQsendQuery(conn, sql))
		return NULL;
	while ((f = PQflush(conn)) == 1)
		if (db_wait(PQsocket(conn), POLLOUT, deadline, 0) != 1)
			return NULL;
	if (f < 0)
		return NULL;
	for (;;) {
		while (PQisBusy(conn)) {
			if (db_wait(PQsocket(conn), POLLIN, deadline, 0) != 1 ||
			    !PQconsumeInput(conn)) {
				PQclear(last);
				return NULL;
			}
		}
		if ((r = PQgetResult(conn)) == NULL)
			break;
		if (PQresultStatus(r) != PGRES_COMMAND_OK &&
		    PQresultStatus(r) != PGRES_TUPLES_OK) {
			log_warn("database: statement failed", "error",
			    PQresultErrorMessage(r), NULL);
			ok = 0;
		}
		PQclear(last);
		last = r;
	}
	if (!ok) {
		PQclear(last);
		return NULL;
	}
	return last;
}

static void
db_notifications(PGconn *conn)
{
	PGnotify		*n;
	struct json_object	*o, *name, *value;

	while ((n = PQnotifies(conn)) != NULL) {
		o = json_tokener_parse(n->extra);
		if (o != NULL && json_object_object_get_ex(o, "name", &name) &&
		    json_object_object_get_ex(o, "value", &value) &&
		    json_object_is_type(name, json_type_string) &&
		    json_object_is_type(value, json_type_int))
			post(MSG_VALUE, json_object_get_string(name),
			    (long long)json_object_get_int64(value));
		json_object_put(o);
		PQfreemem(n);
	}
}

/* Takes up to LOOKUP_BATCH of the names the loop wants read into
 * names[]; returns how many. */
static size_t
db_take_wanted(struct shared *q, char **names)
{
	size_t	n;

	pthread_mutex_lock(&q->mu);
	n = q->nwanted < LOOKUP_BATCH ? q->nwanted : LOOKUP_BATCH;
	/* wanted is NULL until the first want(); cppcheck sees only the
	 * zeroed struct, not the loop's thread filling it */
	/* cppcheck-suppress knownConditionTrueFalse */
	if (n > 0) {
		memcpy(names, q->wanted, n * sizeof(*names));
		memmove(q->wanted, q->wanted + n,
		    (q->nwanted - n) * sizeof(*names));
		q->nwanted -= n;
	}
	pthread_mutex_unlock(&q->mu);
	return n;
}

/* The names as a text[] literal (they need no escaping but the quotes:
 * request.h's rule allows no '"', '\\' or ','). */
static char *
db_names_literal(char *const *names, size_t n)
{
	size_t	 i, len = 3;
	char	*lit, *p;

	for (i = 0; i < n; i++)
		len += strlen(names[i]) + 3;
	if ((lit = malloc(len)) == NULL)
		log_fatal("out of memory", NULL);
	p = lit;
	*p++ = '{';
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s\"%s\"", i > 0 ? "," : "", names[i]);
	*p++ = '}';
	*p = '\0';
	return lit;
}

static void
db_free_names(char **names, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(names[i]);
}

/* Reads the wanted counters; -1 when the connection failed. */
static int
db_lookup(PGconn *conn)
{
	static char	 *names[LOOKUP_BATCH];	/* the database thread's */
	char		 *lit;
	size_t		  n, i;
	int		  row, rows;
	PGresult	 *r;
	const char	 *vals[1];

	while ((n = db_take_wanted(sh, names)) > 0) {
		lit = db_names_literal(names, n);
		vals[0] = lit;
		r = db_run(conn, "SELECT name, value FROM tally_counter "
		    "WHERE name = ANY ($1::text[])", 1, vals,
		    now_ms() + cfg.db_timeout_ms + 250);
		free(lit);
		if (r == NULL) {
			db_free_names(names, n);
			return -1;
		}
		rows = PQntuples(r);
		for (i = 0; i < n; i++) {
			for (row = 0; row < rows; row++)
				if (strcmp(PQgetvalue(r, row, 0), names[i]) == 0)
					break;
			if (row < rows)
				post(MSG_READ, names[i],
				    strtoll(PQgetvalue(r, row, 1), NULL, 10));
			else
				post(MSG_ABSENT, names[i], 0);
		}
		PQclear(r);
		db_free_names(names, n);
	}
	return 0;
}

/* Serves one connection until it fails or the thread stops: -1 stop. */
static int
db_listen(PGconn *conn)
{
	char		 sql[128];
	int64_t		 quiet_since;
	PGresult	*r;
	int		 w;

	snprintf(sql, sizeof(sql), "SET statement_timeout = %u; LISTEN "
	    CHANNEL, cfg.db_timeout_ms);
	if ((r = db_run(conn, sql, 0, NULL, now_ms() + cfg.db_timeout_ms +
	    250)) == NULL)
		return 0;
	PQclear(r);
	log_info("database: listening", "channel", CHANNEL, NULL);
	post(MSG_UP, NULL, 0);
	quiet_since = now_ms();
	for (;;) {
		db_notifications(conn);
		if (db_lookup(conn) != 0)
			return 0;
		db_notifications(conn);
		w = db_wait(PQsocket(conn), POLLIN, now_ms() + SWEEP_MS, 1);
		if (w < 0)
			return -1;
		if (w > 0) {
			if (!PQconsumeInput(conn))
				return 0;
			quiet_since = now_ms();
		} else if (now_ms() - quiet_since >= DB_PING_MS) {
			/* a server that vanished without closing */
			if ((r = db_run(conn, "SELECT 1", 0, NULL, now_ms() +
			    cfg.db_timeout_ms + 250)) == NULL)
				return 0;
			PQclear(r);
			quiet_since = now_ms();
		}
	}
}

static void *
db_thread(void *arg)
{
	PGconn		*conn;
	int64_t		 backoff = DB_BACKOFF_MIN_MS;
	int		 rc, was_up = 1;
	const char	*name = arg;

	for (;;) {
		conn = db_connect_env(name, cfg.connect_timeout_s);
		if (conn != NULL && PQstatus(conn) == CONNECTION_OK &&
		    PQsetnonblocking(conn, 1) == 0) {
			db_log_notices(conn);
			backoff = DB_BACKOFF_MIN_MS;
			rc = db_listen(conn);
			log_warn("database: connection lost; reconnecting",
			    "error", db_conn_error(conn), NULL);
			was_up = 1;
		} else {
			if (was_up)
				log_warn("database: cannot connect", "error",
				    db_conn_error(conn), NULL);
			was_up = 0;
			rc = 0;
		}
		PQfinish(conn);
		post(MSG_DOWN, NULL, 0);
		if (rc < 0 || db_wait(-1, 0, now_ms() + backoff, 0) < 0)
			break;
		backoff = backoff * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS :
		    backoff * 2;
	}
	return NULL;
}

static void
want(const char *name)
{
	char	*copy, **grown;

	if ((copy = strdup(name)) == NULL)
		log_fatal("out of memory", NULL);
	pthread_mutex_lock(&sh->mu);
	if (sh->nwanted == sh->capwanted) {
		sh->capwanted = sh->capwanted > 0 ? sh->capwanted * 2 : 64;
		grown = realloc(sh->wanted, sh->capwanted * sizeof(*grown));
		if (grown == NULL)
			log_fatal("out of memory", NULL);
		sh->wanted = grown;
	}
	sh->wanted[sh->nwanted++] = copy;
	pthread_mutex_unlock(&sh->mu);
	wake(sh->wake_db);
}

/* ---- writing to a connection ---- */

static void conn_close(struct conn *c);

/* Whether the loop hears when the socket takes more: only while bytes
 * wait, or every stream would wake it each time lighttpd reads. */
static void
conn_want_out(struct conn *c, int on)
{
	struct epoll_event	ev;

	ev.events = EPOLLIN | EPOLLET | EPOLLRDHUP | (on ? EPOLLOUT : 0);
	ev.data.ptr = c;
	(void)epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes len bytes (or keeps what the socket does not take); -1 when
 * the peer is gone (the connection is closed). */
static int
conn_send(struct conn *c, const void *buf, size_t len)
{
	ssize_t	n;

	if (c->out == NULL) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			conn_close(c);
			return -1;
		}
		if (n < 0)
			n = 0;
		if ((size_t)n == len)
			return 0;
		if ((c->out = malloc(len - (size_t)n)) == NULL)
			log_fatal("out of memory", NULL);
		memcpy(c->out, (const char *)buf + n, len - (size_t)n);
		c->out_len = len - (size_t)n;
		c->out_off = 0;
		conn_want_out(c, 1);
		return 0;
	}
	/* only one pending piece: callers check c->out first */
	conn_close(c);
	return -1;
}

/* Sends the rest of what waits; 0 when all is written. */
static int
conn_flush(struct conn *c)
{
	ssize_t	n;

	while (c->out != NULL) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)n;
		if (c->out_off == c->out_len) {
			free(c->out);
			c->out = NULL;
			conn_want_out(c, 0);
		}
	}
	return 0;
}

/* A refusal that response.c wrote: its bytes, as STDOUT records and the
 * request's end; then the connection closes. */
static void
conn_answer(struct conn *c, const unsigned char *body, size_t len)
{
	unsigned char	buf[ANSWER_MAX + 64];
	size_t		n;

	n = stream_fcgi_stdout(buf, sizeof(buf), c->parser.request_id, body,
	    len);
	n += stream_fcgi_end(buf + n, sizeof(buf) - n, c->parser.request_id);
	c->state = CONN_CLOSING;
	c->deadline_ms = now_ms() + (int64_t)cfg.io_timeout_s * 1000;
	if (conn_send(c, buf, n) == 0 && c->out == NULL)
		conn_close(c);
}

/* The answer's buffer: response.c writes to an FCGX_Stream; this one
 * fills memory and fails when full. */
static void
answer_full(FCGX_Stream *s, int doClose)
{
	(void)doClose;
	s->isClosed = 1;
	s->FCGI_errno = -1;
}

struct answer {
	FCGX_Request	fcgx;
	FCGX_Stream	out;
	struct request	req;
	unsigned char	buf[ANSWER_MAX];
};

static void
answer_init(struct answer *a, char **envp)
{
	memset(a, 0, sizeof(*a));
	a->out.wrNext = a->buf;
	a->out.stop = a->buf + sizeof(a->buf);
	a->out.emptyBuffProc = answer_full;
	a->fcgx.out = &a->out;
	a->fcgx.envp = envp;
	request_init(&a->req, &a->fcgx);
}

static void
answer_send(struct conn *c, struct answer *a)
{
	if (a->out.isClosed) {
		conn_close(c);	/* cannot happen: every answer is small */
		return;
	}
	conn_answer(c, a->buf, (size_t)(a->out.wrNext - a->buf));
}

/* ---- streams ---- */

static void
stream_unwatch(struct conn *c)
{
	struct counter	*ctr = c->counter;

	if (ctr == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ctr->watchers = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->counter = NULL;
	c->prev = c->next = NULL;
	counter_drop_if_unwatched(ctr);
}

/* Sends the value as an event if it is not the last one sent and the
 * stream's rate allows; else marks it to go when it does. */
static void
stream_event(struct conn *c, int64_t now)
{
	char		text[EVENT_MAX];
	unsigned char	rec[EVENT_MAX + 16];
	long long	v = c->counter->value;
	int		n;

	if (c->sent_any && c->sent == v) {
		c->dirty = 0;
		return;
	}
	if (c->out != NULL || now < c->next_event_ms) {
		c->dirty = 1;
		if (c->out == NULL && c->next_event_ms < sweep_due)
			sweep_due = c->next_event_ms;
		return;
	}
	n = snprintf(text, sizeof(text), "id: %lld\ndata: {\"counter\":%lld}"
	    "\n\n", v, v);
	c->dirty = 0;
	c->sent = v;
	c->sent_any = 1;
	c->next_event_ms = now + 1000 / (int64_t)cfg.stream_rate;
	c->quiet_since_ms = now;
	(void)conn_send(c, rec, stream_fcgi_stdout(rec, sizeof(rec),
	    c->parser.request_id, (const unsigned char *)text, (size_t)n));
}

static void
stream_heartbeat(struct conn *c, int64_t now)
{
	static const char	beat[] = ": heartbeat\n\n";
	unsigned char		rec[64];

	if (c->out != NULL)
		return;		/* the peer is not reading: it is not quiet */
	c->quiet_since_ms = now;
	(void)conn_send(c, rec, stream_fcgi_stdout(rec, sizeof(rec),
	    c->parser.request_id, (const unsigned char *)beat,
	    sizeof(beat) - 1));
}

/* Tells a stream whether the database is reachable: an event of type
 * "status" (no id: an EventSource keeps the last value's), so a page
 * can say why nothing changes. Skipped for a peer that is not reading. */
static void
stream_status(struct conn *c, int up)
{
	char		text[96];
	unsigned char	rec[sizeof(text) + 16];
	int		n;

	if (c->out != NULL || c->head)
		return;
	n = snprintf(text, sizeof(text), "event: status\ndata: "
	    "{\"database\":\"%s\"}\n\n", up ? "ok" : "unavailable");
	c->quiet_since_ms = now_ms();
	(void)conn_send(c, rec, stream_fcgi_stdout(rec, sizeof(rec),
	    c->parser.request_id, (const unsigned char *)text, (size_t)n));
}

/* Every open stream's status, when the database comes or goes. */
static void
streams_status(int up)
{
	struct conn	*c, *cn;

	for (c = all; c != NULL; c = cn) {
		cn = c->all_next;
		if (c->state == CONN_STREAMING)
			stream_status(c, up);
	}
}

/* The counter's value is known: the waiting stream starts. */
static void
stream_start(struct conn *c, long long last_event_id, int has_last)
{
	char		head[512];
	unsigned char	rec[sizeof(head) + 16];
	int		n;
	int64_t		now = now_ms();

	/* the headers, and how long an EventSource waits to reconnect */
	n = snprintf(head, sizeof(head), "Status: 200 OK\r\n"
	    "Content-Type: text/event-stream\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "X-Accel-Buffering: no\r\n\r\n");
	if (!c->head)
		n += snprintf(head + n, sizeof(head) - (size_t)n,
		    "retry: %u\n\n", cfg.retry_after_s * 1000);
	c->state = CONN_STREAMING;
	c->quiet_since_ms = now;
	stream_fcgi_release(&c->parser);	/* no refusal now: memory */
	if (conn_send(c, rec, stream_fcgi_stdout(rec, sizeof(rec),
	    c->parser.request_id, (const unsigned char *)head,
	    (size_t)n)) != 0)
		return;
	if (c->head) {
		stream_unwatch(c);
		conn_answer(c, NULL, 0);
		return;
	}
	/* an EventSource that comes back with the value it has gets no
	 * event until the value changes */
	if (has_last) {
		c->sent = last_event_id;
		c->sent_any = 1;
	}
	stream_event(c, now);
}

/* ---- reading requests ---- */

static struct conn *
conn_new(int fd)
{
	struct conn		*c;
	struct epoll_event	 ev;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		log_fatal("out of memory", NULL);
	c->fd = fd;
	c->state = CONN_READING;
	c->started_ms = now_ms();
	c->deadline_ms = c->started_ms + (int64_t)cfg.io_timeout_s * 1000;
	c->route = ROUTE_OTHER;
	c->method = METHOD_OTHER;
	stream_fcgi_init(&c->parser);
	ev.events = EPOLLIN | EPOLLET | EPOLLRDHUP;
	ev.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		free(c);
		return NULL;
	}
	nconns++;
	c->all_next = all;
	if (all != NULL)
		all->all_prev = c;
	all = c;
	return c;
}

static void
conn_close(struct conn *c)
{
	struct request	req;

	if (c->fd < 0)
		return;
	if (c->state == CONN_STREAMING || c->state == CONN_WAITING ||
	    (c->state == CONN_CLOSING && c->client != NULL))
		nstreams--;
	if (c->state == CONN_STREAMING) {
		memset(&req, 0, sizeof(req));
		req.route = c->route;
		req.method = c->method;
		req.status = 200;
		stats_request_done(&req, (double)(now_ms() - c->started_ms) /
		    1000.0);
	}
	stream_unwatch(c);
	if (c->client != NULL)
		client_put(c->client);
	c->client = NULL;
	close(c->fd);	/* also leaves the epoll set */
	c->fd = -1;
	nconns--;
	if (c->all_prev != NULL)
		c->all_prev->all_next = c->all_next;
	else
		all = c->all_next;
	if (c->all_next != NULL)
		c->all_next->all_prev = c->all_prev;
	stream_fcgi_free(&c->parser);
	free(c->out);
	c->out = NULL;
	/* freed after this round of events, which may still name it */
	c->next_closed = closed;
	closed = c;
}

/* The request is read: refuse it, or start (or queue) its stream. */
static void
conn_request(struct conn *c)
{
	struct answer		*a;
	struct client_info	 ci;
	struct counter		*ctr;
	struct client		*cl;
	struct json_object	*body;
	const char		*leid;
	char			*end;
	long long		 last = 0;
	int			 has_last = 0;

	if ((a = malloc(sizeof(*a))) == NULL)
		log_fatal("out of memory", NULL);
	answer_init(a, c->parser.envp);
	c->route = a->req.route;
	c->method = a->req.method;
	if (responder_refuse(&stream_responder, &a->req, NULL))
		goto answer;
	if (a->req.route == ROUTE_STREAM_NAMED &&
	    request_name_check(a->req.name) != 0) {
		response_error(&a->req, 400, REQUEST_NAME_RULE, NULL);
		goto answer;
	}
	if (!db_up && db_tried) {
		response_db_unavailable(&a->req);
		goto answer;
	}
	clientip_resolve(&cfg.trusted_proxies, a->req.remote_addr,
	    a->req.forwarded_for, &ci);
	cl = client_get(ci.user_ip);
	if (nstreams >= cfg.stream_max || cl->streams >= cfg.stream_per_client) {
		if (cl->streams == 0) {		/* new: not kept */
			cl->streams = 1;
			client_put(cl);
		}
		body = json_object_new_object();
		json_object_object_add(body, "error", json_object_new_string(
		    nstreams >= cfg.stream_max ? "too many streams open" :
		    "too many streams open from this address"));
		response_unavailable(&a->req, body, "too many streams");
		goto answer;
	}
	c->client = cl;
	cl->streams++;
	nstreams++;
	c->head = a->req.method == METHOD_HEAD;
	leid = request_param(&a->req, "HTTP_LAST_EVENT_ID");
	if (leid != NULL && *leid >= '0' && *leid <= '9') {
		errno = 0;
		last = strtoll(leid, &end, 10);
		has_last = errno == 0 && *end == '\0';
	}
	ctr = counter_get(a->req.name);
	c->counter = ctr;
	c->next = ctr->watchers;
	if (ctr->watchers != NULL)
		ctr->watchers->prev = c;
	ctr->watchers = c;
	c->state = CONN_WAITING;
	free(a);
	if (ctr->known) {
		stream_start(c, last, has_last);
		return;
	}
	/* the stream starts when the value arrives; Last-Event-ID kept */
	c->sent = last;
	c->sent_any = has_last;
	if (!ctr->asked) {
		ctr->asked = 1;
		want(ctr->name);
	}
	return;
answer:
	answer_send(c, a);
	free(a);
}

static void
conn_readable(struct conn *c)
{
	unsigned char	buf[4096];
	ssize_t		n;
	int		rc;

	for (;;) {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(c);	/* lighttpd closed: the client left */
			return;
		}
		rc = stream_fcgi_feed(&c->parser, buf, (size_t)n);
		if (rc < 0 || c->parser.aborted) {
			conn_close(c);
			return;
		}
		if (rc > 0 && c->state == CONN_READING) {
			conn_request(c);
			if (c->fd < 0)
				return;
		}
	}
}

/* ---- the loop ---- */

/* Refuses a stream waiting for its counter's value: 404 or 503. */
static void
stream_refuse(struct conn *c, int status)
{
	struct answer	*a;

	if ((a = malloc(sizeof(*a))) == NULL)
		log_fatal("out of memory", NULL);
	answer_init(a, c->parser.envp);
	if (status == 404)
		response_error(&a->req, 404, REQUEST_NAME_UNKNOWN, NULL);
	else
		response_db_unavailable(&a->req);
	stream_unwatch(c);
	answer_send(c, a);
	free(a);
}

/* The database is back: every watched counter is read again, since
 * what changed while the connection was down was not heard. */
static void
on_db_up(void)
{
	struct counter	*ctr;
	unsigned int	 i;

	if (!db_up)
		streams_status(1);
	db_up = 1;
	db_tried = 1;
	for (i = 0; i < HASH_SIZE; i++)
		for (ctr = counters[i]; ctr != NULL; ctr = ctr->next) {
			ctr->asked = 1;
			want(ctr->name);
		}
}

/* The database is gone: streams waiting for a value get 503. */
static void
on_db_down(void)
{
	struct conn	*c, *cn;

	if (db_up)
		streams_status(0);
	db_up = 0;
	db_tried = 1;
	for (c = all; c != NULL; c = cn) {
		cn = c->all_next;
		if (c->state == CONN_WAITING) {
			if (c->counter != NULL)
				c->counter->asked = 0;
			stream_refuse(c, 503);
		}
	}
}

/* A counter's value, announced (announced set: in commit order, so it
 * is the latest, also when an operator set it lower) or read (a lookup
 * may cross an announcement: the larger value wins, counters grow but
 * for an operator's reset). */
static void
on_value(const char *name, long long value, int announced)
{
	struct counter	*ctr;
	struct conn	*c, *cn;
	long long	 last;
	int		 has_last;
	int64_t		 now = now_ms();

	if ((ctr = counter_find(name)) == NULL)
		return;		/* nobody watches it */
	ctr->asked = 0;
	if (ctr->known && (value == ctr->value ||
	    (!announced && value < ctr->value)))
		return;
	ctr->value = value;
	ctr->known = 1;
	for (c = ctr->watchers; c != NULL; c = cn) {
		cn = c->next;
		if (c->state == CONN_WAITING) {
			last = c->sent;
			has_last = c->sent_any;
			c->sent_any = 0;
			stream_start(c, last, has_last);
		} else if (c->state == CONN_STREAMING)
			stream_event(c, now);
	}
}

/* No counter has the name: its waiting streams get 404. */
static void
on_absent(const char *name)
{
	struct counter	*ctr;
	struct conn	*c, *cn;

	if ((ctr = counter_find(name)) == NULL)
		return;
	ctr->asked = 0;
	if (ctr->known)
		return;
	for (c = ctr->watchers; c != NULL; c = cn) {
		cn = c->next;
		stream_refuse(c, 404);
	}
}

/* Messages from the database thread. */
static void
loop_messages(void)
{
	struct msg	*m, *next;
	uint64_t	 n;

	(void)!read(sh->wake_loop, &n, sizeof(n));
	pthread_mutex_lock(&sh->mu);
	m = sh->head;
	sh->head = sh->tail = NULL;
	pthread_mutex_unlock(&sh->mu);
	for (; m != NULL; m = next) {
		next = m->next;
		switch (m->kind) {
		case MSG_UP:
			on_db_up();
			break;
		case MSG_DOWN:
			on_db_down();
			break;
		case MSG_VALUE:
		case MSG_READ:
			on_value(m->name, m->value, m->kind == MSG_VALUE);
			break;
		case MSG_ABSENT:
			on_absent(m->name);
			break;
		}
		free(m);
	}
}

/* What is due: coalesced events, heartbeats, and the deadlines of
 * connections that do not send their request or read their answer in
 * TALLY_IO_TIMEOUT. Returns the milliseconds until the next sweep. */
static int
loop_sweep(int64_t now, int64_t *next_full)
{
	struct conn	*c, *cn;
	int64_t		 due = now + SWEEP_MS, heartbeat;
	int		 full = now >= *next_full;

	heartbeat = (int64_t)cfg.stream_heartbeat_s * 1000;
	for (c = all; c != NULL; c = cn) {
		cn = c->all_next;
		if (c->state != CONN_STREAMING) {
			if (full && (c->state == CONN_READING ||
			    c->state == CONN_CLOSING) && now >= c->deadline_ms)
				conn_close(c);
			continue;
		}
		if (c->dirty && c->out == NULL) {
			if (now >= c->next_event_ms)
				stream_event(c, now);
			else if (c->next_event_ms < due)
				due = c->next_event_ms;
			continue;
		}
		if (full && now - c->quiet_since_ms >= heartbeat)
			stream_heartbeat(c, now);
	}
	if (full)
		*next_full = now + SWEEP_MS;
	if (*next_full < due)
		due = *next_full;
	return (int)(due - now);
}

static void
loop_free_closed(void)
{
	struct conn	*c;

	while ((c = closed) != NULL) {
		closed = c->next_closed;
		free(c);
	}
}

static void
loop_accept(void)
{
	int	fd;

	for (;;) {
		fd = accept4(0, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* stop accepting a moment: the backlog waits */
				log_warn("accept failed; pausing", "error",
				    strerror(errno), NULL);
				(void)epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
				listening = 0;
				accept_again_ms = now_ms() + 100;
			}
			return;
		}
		if (nconns >= cfg.stream_max + EXTRA_CONNS) {
			close(fd);	/* lighttpd answers 503 */
			continue;
		}
		(void)conn_new(fd);
	}
}

static int		 sigfd;
static int		 running = 1;
static char		 marker_listen, marker_signal, marker_wake;

/* The epoll set: the listening socket, the stop signals, the database
 * thread's wake-ups. */
static void
loop_setup(void)
{
	struct epoll_event	ev;
	sigset_t		set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    (sh->wake_loop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (sh->wake_db = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		log_fatal("cannot set up the loop", "error", strerror(errno),
		    NULL);
	ev.events = EPOLLIN;
	ev.data.ptr = &marker_listen;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) != 0)
		log_fatal("cannot watch the socket", NULL);
	ev.data.ptr = &marker_signal;
	(void)epoll_ctl(epfd, EPOLL_CTL_ADD, sigfd, &ev);
	ev.data.ptr = &marker_wake;
	(void)epoll_ctl(epfd, EPOLL_CTL_ADD, sh->wake_loop, &ev);
}

static void
loop_event(const struct epoll_event *e, int64_t now)
{
	struct signalfd_siginfo	 si;
	struct conn		*c;

	if (e->data.ptr == &marker_listen) {
		loop_accept();
		return;
	}
	if (e->data.ptr == &marker_signal) {
		while (read(sigfd, &si, sizeof(si)) > 0)
			if (si.ssi_signo != SIGPIPE)
				running = 0;
		return;
	}
	if (e->data.ptr == &marker_wake) {
		loop_messages();
		return;
	}
	c = e->data.ptr;
	if (c->fd < 0)
		return;		/* closed earlier in this round */
	if (e->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_readable(c);
	if (c->fd >= 0 && (e->events & EPOLLOUT) && conn_flush(c) == 0 &&
	    c->fd >= 0) {
		if (c->state == CONN_CLOSING)
			conn_close(c);
		else if (c->state == CONN_STREAMING && c->dirty)
			stream_event(c, now);
	}
}

/* Serves until a stop signal; then ends every stream (an EventSource
 * reconnects, to another pod if this one is going). */
static void
loop_run(void)
{
	struct epoll_event	 evs[256], ev;
	struct conn		*c, *cn;
	int			 i, n, timeout = 0;
	int64_t			 now, next_full = 0;

	while (running) {
		n = epoll_wait(epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])),
		    timeout);
		now = now_ms();
		for (i = 0; i < n; i++)
			loop_event(&evs[i], now);
		loop_free_closed();
		if (!listening && now >= accept_again_ms) {
			ev.events = EPOLLIN;
			ev.data.ptr = &marker_listen;
			if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) == 0)
				listening = 1;
		}
		if (now >= sweep_due) {
			timeout = loop_sweep(now, &next_full);
			sweep_due = now + timeout;
		} else
			timeout = (int)(sweep_due - now);
		loop_free_closed();
		responder_beat();	/* the parent's watchdog */
		if (timeout < 0)
			timeout = 0;
	}
	for (c = all; c != NULL; c = cn) {
		cn = c->all_next;
		if (c->state == CONN_STREAMING && c->out == NULL) {
			stream_unwatch(c);
			conn_answer(c, NULL, 0);
		}
	}
	for (c = all; c != NULL; c = cn) {
		cn = c->all_next;
		conn_close(c);
	}
	loop_free_closed();
}

/* The worker process (responder.c runs it, after the checks every
 * responder makes, and restarts it when it dies or stops beating). */
static int
stream_run(const struct settings *s, const char *name)
{
	pthread_t	th;

	cfg = *s;
	if ((sh = calloc(1, sizeof(*sh))) == NULL ||
	    pthread_mutex_init(&sh->mu, NULL) != 0)
		log_fatal("out of memory", NULL);
	if (fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK) != 0)
		log_fatal("cannot make the socket non-blocking", NULL);
	loop_setup();
	if (pthread_create(&th, NULL, db_thread, (void *)name) != 0)
		log_fatal("cannot start a thread", NULL);
	loop_run();
	pthread_mutex_lock(&sh->mu);
	sh->stop = 1;
	pthread_mutex_unlock(&sh->mu);
	wake(sh->wake_db);
	pthread_join(th, NULL);
	return 0;
}

static const struct responder stream_responder = {
	RESPONDER_DECLARED(stream),	/* src/responders.def */
	.run = stream_run,
};

int
main(int argc, char **argv)
{
	return responder_main(&stream_responder, argc, argv);
}
