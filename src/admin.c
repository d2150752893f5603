/* tally-admin - the operators' API (docs/api.md, "Admin API"), each
 * request with "Authorization: Bearer TOKEN", the token read from the
 * file TALLY_ADMIN_TOKEN_FILE names:
 *
 *   GET /admin/counters?prefix=P&after=A&limit=N
 *	the counters whose names start with P, by name (in byte order)
 *	after A, at most N (1 to ADMIN_LIST_MAX, ADMIN_LIST_DEFAULT by
 *	default): 200 {"counters":[{"name","counter"}...],"next"}, next
 *	the name to pass as after for the next page, or null at the end.
 *	The default counter's name is "".
 *   GET /admin/counters/NAME, GET /admin/default
 *	a named counter, the default counter: 200 {"name","counter"}.
 *   PUT /admin/counters/NAME, PUT /admin/default  {"counter": N}
 *	sets it to N (0 to COUNTER_MAX; 0 resets it): 200 {"name",
 *	"counter"}. Its Idempotency-Keys stay: each still answers the value
 *	it counted (docs/api.md says what that means).
 *   DELETE /admin/counters/NAME
 *	deletes a named counter and its Idempotency-Keys: 200 {"name",
 *	"counter" (its last value), "keys_deleted"}. Its next write
 *	creates it again, at 1. The default counter is not deleted (405).
 *
 * Without a token file, every admin path answers 404 as an unknown path
 * does; a missing or wrong token gets 401 with "WWW-Authenticate:
 * Bearer" (the token is compared in a time that does not depend on where
 * it differs); an absent named counter 404; a malformed name, query or
 * body 400; a method the path does not take 405 with Allow; the database
 * unavailable 503 with Retry-After (nothing changed, or, for a PUT or
 * DELETE cut off during its commit, unknown: look again). Every request
 * that passed the token check is logged (info) with its action, counter,
 * client address and outcome; one that did not, as a warning, without
 * what it sent.
 *
 * The token is read at start (a file that cannot be used stops the
 * responder) and again when the file changes (its inode, size or time:
 * a Secret's update, a rename over it); a changed file that cannot be
 * used leaves the token as it was, logged. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clientip.h"
#include "counter.h"
#include "db.h"
#include "log.h"
#include "responder.h"
#include "response.h"

/* Most counters one page lists, and how many by default. */
#define ADMIN_LIST_MAX		1000
#define ADMIN_LIST_DEFAULT	100
/* Longest token; the token file may have one line ending more. */
#define TOKEN_MAX		512
/* Shortest token: a guessable one is no lock. */
#define TOKEN_MIN		16
/* Longest PUT body read. */
#define BODY_MAX		256

enum stmt {
	STMT_LIST,
	STMT_GET,
	STMT_SET,
	STMT_DELETE,
	STMT_DELETE_KEYS,
	STMT__COUNT
};

static const struct db_statement statements[STMT__COUNT] = {
	/* $1 <= name < $2 in byte order (admin_list): from the index
	 * tally_counter_name_c (sql/009_admin.sql). */
	[STMT_LIST] = { "tally_admin_list",
	    "SELECT name, value FROM tally_counter WHERE name COLLATE \"C\" "
	    ">= $1 AND name COLLATE \"C\" < $2 ORDER BY name COLLATE \"C\" "
	    "LIMIT $3::integer", 3, SSTMT_ADMIN },
	[STMT_GET] = { "tally_admin_get",
	    "SELECT value FROM tally_counter WHERE name = $1", 1,
	    SSTMT_ADMIN },
	/* One row locked, whatever a write holds: no deadlock. */
	[STMT_SET] = { "tally_admin_set",
	    "UPDATE tally_counter SET value = $2::bigint WHERE name = $1 "
	    "RETURNING value", 2, SSTMT_ADMIN },
	[STMT_DELETE] = { "tally_admin_delete",
	    "SELECT id, value FROM tally_admin_delete($1)", 1, SSTMT_ADMIN },
	[STMT_DELETE_KEYS] = { "tally_admin_delete_keys",
	    "DELETE FROM tally_idempotency_keys WHERE counter_id = $1::bigint",
	    1, SSTMT_ADMIN },
};

/* The token, as the file held it when last read. */
struct token {
	char		 text[TOKEN_MAX];	/* zero-padded */
	size_t		 len;
	dev_t		 dev;			/* the file read */
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
};

struct admin {
	const struct settings	*cfg;
	const char		*path;	/* TALLY_ADMIN_TOKEN_FILE, or NULL */
	pthread_mutex_t		 token_mu;
	struct token		 token;
	pthread_mutex_t		 db_mu;		/* db is one connection */
	struct db		*db;
};

/* Reads the token file into t. Returns 0, or -1 with why in err. */
static int
token_read(const char *path, struct token *t, char *err, size_t errlen)
{
	char		buf[TOKEN_MAX + 3];
	struct stat	st;
	ssize_t		n;
	size_t		len, i;
	int		fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		snprintf(err, errlen, "cannot open it: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		close(fd);
		return -1;
	}
	if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0 ||
	    (st.st_uid != geteuid() && st.st_uid != 0)) {
		snprintf(err, errlen, "others may read or change it (mode "
		    "%04o, owner %u): make it the responder's user's or "
		    "root's, mode 0600 or 0400", (unsigned)(st.st_mode & 07777),
		    (unsigned)st.st_uid);
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read it: %s", strerror(errno));
		return -1;
	}
	len = (size_t)n;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len < TOKEN_MIN || len > TOKEN_MAX) {
		snprintf(err, errlen, "the token must be %d to %d characters",
		    TOKEN_MIN, TOKEN_MAX);
		return -1;
	}
	for (i = 0; i < len; i++)
		if (buf[i] < 0x21 || buf[i] > 0x7e) {
			snprintf(err, errlen, "the token must be printable "
			    "ASCII without blanks");
			return -1;
		}
	memset(t->text, 0, sizeof(t->text));
	memcpy(t->text, buf, len);
	memset(buf, 0, sizeof(buf));
	t->len = len;
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->size = st.st_size;
	t->mtime = st.st_mtim;
	return 0;
}

/* Reads the token file again if it changed since it was read; a file
 * that cannot be used now leaves the token as it was. Under token_mu. */
static void
token_refresh(struct admin *a)
{
	struct token	 fresh;
	struct stat	 st;
	char		 err[160];

	if (stat(a->path, &st) != 0 || (st.st_dev == a->token.dev &&
	    st.st_ino == a->token.ino && st.st_size == a->token.size &&
	    st.st_mtim.tv_sec == a->token.mtime.tv_sec &&
	    st.st_mtim.tv_nsec == a->token.mtime.tv_nsec))
		return;
	if (token_read(a->path, &fresh, err, sizeof(err)) != 0) {
		/* not again until it changes again */
		a->token.dev = st.st_dev;
		a->token.ino = st.st_ino;
		a->token.size = st.st_size;
		a->token.mtime = st.st_mtim;
		log_error("the admin token file changed but cannot be used: "
		    "the token stays as it was", "file", a->path, "error", err,
		    NULL);
		return;
	}
	a->token = fresh;
	memset(&fresh, 0, sizeof(fresh));
	log_info("the admin token was read again", "file", a->path, NULL);
}

/*
 * Is the request's Authorization "Bearer <the token>"? The comparison
 * runs over TOKEN_MAX bytes whatever was sent, so its time says nothing
 * of where a wrong token differs.
 */
static int
token_ok(struct admin *a, const struct request *req)
{
	const char		*auth;
	char			 sent[TOKEN_MAX];
	volatile unsigned char	 diff = 0;
	size_t			 len, i;

	auth = request_param(req, "HTTP_AUTHORIZATION");
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return 0;
	auth += 7;
	while (*auth == ' ')
		auth++;
	if ((len = strnlen(auth, TOKEN_MAX + 1)) > TOKEN_MAX)
		return 0;
	memset(sent, 0, sizeof(sent));
	memcpy(sent, auth, len);
	pthread_mutex_lock(&a->token_mu);
	token_refresh(a);
	diff |= (unsigned char)(len != a->token.len);
	for (i = 0; i < TOKEN_MAX; i++)
		diff |= (unsigned char)(sent[i] ^ a->token.text[i]);
	pthread_mutex_unlock(&a->token_mu);
	memset(sent, 0, sizeof(sent));
	return diff == 0;
}

static void
admin_stop(void *ctx)
{
	struct admin	*a = ctx;

	if (a == NULL)
		return;
	db_free(a->db);
	pthread_mutex_destroy(&a->db_mu);
	memset(&a->token, 0, sizeof(a->token));
	pthread_mutex_destroy(&a->token_mu);
	free(a);
}

static void *
admin_start(const struct settings *s, const char *name)
{
	struct admin	*a;
	const char	*path = getenv("TALLY_ADMIN_TOKEN_FILE");
	char		 err[160];

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->cfg = s;
	pthread_mutex_init(&a->token_mu, NULL);
	pthread_mutex_init(&a->db_mu, NULL);
	if (path != NULL && *path != '\0') {
		if (token_read(path, &a->token, err, sizeof(err)) != 0) {
			log_error("TALLY_ADMIN_TOKEN_FILE cannot be used",
			    "file", path, "error", err, NULL);
			admin_stop(a);
			return NULL;
		}
		a->path = path;
	}
	if ((a->db = db_new(s, name, statements, STMT__COUNT)) == NULL) {
		admin_stop(a);
		return NULL;
	}
	return a;
}

/* Runs a statement on the process's connection. */
static int
admin_exec(struct admin *a, enum stmt st, const char *const *values,
    PGresult **res)
{
	int	rc;

	pthread_mutex_lock(&a->db_mu);
	rc = db_exec(a->db, &statements[st], values, res);
	pthread_mutex_unlock(&a->db_mu);
	return rc;
}

/* One log line of an action: what, on which counter, for whom, how. */
static void
admin_log(struct admin *a, const struct request *req, enum log_level level,
    const char *action, const char *counter, const char *outcome,
    struct json_object *more)
{
	struct client_info	 ci;
	struct json_object	*f = more != NULL ? more :
				    json_object_new_object();

	clientip_resolve(&a->cfg->trusted_proxies, req->remote_addr,
	    req->forwarded_for, &ci);
	json_object_object_add(f, "action", json_object_new_string(action));
	if (counter != NULL)
		json_object_object_add(f, "counter",
		    json_object_new_string(counter));
	json_object_object_add(f, "client", ci.user_ip[0] != '\0' ?
	    json_object_new_string(ci.user_ip) : NULL);
	json_object_object_add(f, "outcome", json_object_new_string(outcome));
	log_event(level, "admin", f);
}

/* {"name": name, "counter": value}, and "keys_deleted" if keys >= 0. */
static struct json_object *
counter_body(const char *name, long long value, long long keys)
{
	struct json_object	*b = json_object_new_object();

	json_object_object_add(b, "name", json_object_new_string(name));
	json_object_object_add(b, "counter", json_object_new_int64(value));
	if (keys >= 0)
		json_object_object_add(b, "keys_deleted",
		    json_object_new_int64(keys));
	return b;
}

/* The value of a hex digit, or -1. */
static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes the %XX of s[0..len) into out (size bytes). Returns 0, or -1
 * if it is malformed, decodes a NUL or does not fit. */
static int
percent_decode(const char *s, size_t len, char *out, size_t size)
{
	size_t	i, n = 0;
	int	hi, lo;

	for (i = 0; i < len; i++) {
		if (n + 1 >= size)
			return -1;
		if (s[i] != '%') {
			out[n++] = s[i];
			continue;
		}
		if (i + 2 >= len)
			return -1;
		hi = hex_value((unsigned char)s[i + 1]);
		lo = hex_value((unsigned char)s[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		out[n++] = (char)(hi * 16 + lo);
		i += 2;
	}
	out[n] = '\0';
	return 0;
}

/* Only the characters of a name: A-Z a-z 0-9 . _ - / */
static int
name_chars(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
		    *s == '-' || *s == '/'))
			return 0;
	return 1;
}

#define QUERY_RULE							\
	"the query takes prefix (the start of a name), after (the name "\
	"a page ended with: its next) and limit (1 to 1000), each once"

/* GET /admin/counters?prefix=&after=&limit= */
static void
admin_list(struct admin *a, struct request *req)
{
	const char		*q = request_param(req, "QUERY_STRING");
	char			 prefix[REQUEST_NAME_MAX + 1] = "";
	char			 after[REQUEST_NAME_MAX + 1] = "";
	char			 value[REQUEST_NAME_MAX + 1];
	char			 lower[REQUEST_NAME_MAX + 2];
	char			 upper[REQUEST_NAME_MAX + 2];
	char			 lim[16];
	const char		*values[3] = { lower, upper, lim };
	struct json_object	*body, *list, *item;
	PGresult		*res;
	long			 parsed;
	int			 limit = ADMIN_LIST_DEFAULT;
	int			 seen = 0, rows, i, n;
	size_t			 len, klen;
	char			*end;

	while (q != NULL && *q != '\0') {
		len = strcspn(q, "&");
		klen = strcspn(q, "=");
		if (klen >= len || percent_decode(q + klen + 1, len - klen - 1,
		    value, sizeof(value)) != 0)
			goto bad;
		if (klen == 6 && strncmp(q, "prefix", 6) == 0 && !(seen & 1) &&
		    name_chars(value)) {
			seen |= 1;
			memcpy(prefix, value, sizeof(prefix));
		} else if (klen == 5 && strncmp(q, "after", 5) == 0 &&
		    !(seen & 2) && (*value == '\0' ||
		    request_name_check(value) == 0)) {
			seen |= 2;
			memcpy(after, value, sizeof(after));
		} else if (klen == 5 && strncmp(q, "limit", 5) == 0 &&
		    !(seen & 4)) {
			seen |= 4;
			errno = 0;
			parsed = strtol(value, &end, 10);
			if (errno != 0 || end == value || *end != '\0' ||
			    *value == '+' || *value == '-' || parsed < 1 ||
			    parsed > ADMIN_LIST_MAX)
				goto bad;
			limit = (int)parsed;
		} else
			goto bad;
		q += len;
		if (*q == '&')
			q++;
	}
	/* Names between prefix and prefix + 0x7f (above every character
	 * of a name) start with prefix; after a name, after + 0x01 (below
	 * them all) is the next one possible. Without after, the list
	 * starts at the first name, the default counter's "" if it has
	 * the prefix; with "after=", at the one after it. */
	snprintf(lower, sizeof(lower), "%s", prefix);
	if (seen & 2) {		/* "after=": after the default counter, "" */
		n = snprintf(lower, sizeof(lower), "%s\x01", after);
		if (n < 0 || strcmp(lower, prefix) < 0)
			snprintf(lower, sizeof(lower), "%s", prefix);
	}
	snprintf(upper, sizeof(upper), "%s\x7f", prefix);
	snprintf(lim, sizeof(lim), "%d", limit + 1);	/* one more: next? */
	if (admin_exec(a, STMT_LIST, values, &res) != 0) {
		admin_log(a, req, LOG_LEVEL_WARN, "list", NULL,
		    "database unavailable", NULL);
		response_db_unavailable(req);
		return;
	}
	rows = PQntuples(res);
	body = json_object_new_object();
	list = json_object_new_array();
	for (i = 0; i < rows && i < limit; i++) {
		item = counter_body(PQgetvalue(res, i, 0),
		    strtoll(PQgetvalue(res, i, 1), NULL, 10), -1);
		json_object_array_add(list, item);
	}
	json_object_object_add(body, "counters", list);
	json_object_object_add(body, "next", rows > limit ?
	    json_object_new_string(PQgetvalue(res, limit - 1, 0)) : NULL);
	PQclear(res);
	item = json_object_new_object();
	json_object_object_add(item, "prefix", json_object_new_string(prefix));
	json_object_object_add(item, "listed", json_object_new_int(
	    rows > limit ? limit : rows));
	admin_log(a, req, LOG_LEVEL_INFO, "list", NULL, "ok", item);
	response_json(req, 200, body, NULL);
	return;
bad:
	admin_log(a, req, LOG_LEVEL_INFO, "list", NULL, "bad request", NULL);
	response_error(req, 400, QUERY_RULE, NULL);
}

/* GET of one counter. */
static void
admin_get(struct admin *a, struct request *req, const char *name)
{
	const char	*values[1] = { name };
	PGresult	*res;

	if (admin_exec(a, STMT_GET, values, &res) != 0) {
		admin_log(a, req, LOG_LEVEL_WARN, "get", name,
		    "database unavailable", NULL);
		response_db_unavailable(req);
		return;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		admin_log(a, req, LOG_LEVEL_INFO, "get", name, "absent", NULL);
		response_error(req, 404, "no counter has this name", NULL);
		return;
	}
	admin_log(a, req, LOG_LEVEL_INFO, "get", name, "ok", NULL);
	response_json(req, 200, counter_body(name,
	    strtoll(PQgetvalue(res, 0, 0), NULL, 10), -1), NULL);
	PQclear(res);
}

#define BODY_RULE							\
	"the body is {\"counter\": N}, N a whole number from 0 to "	\
	"9223372036854775807"

/* Reads {"counter": N} from the request body: returns 0 with *value,
 * or -1. */
static int
read_value(struct request *req, long long *value)
{
	char			 buf[BODY_MAX + 1];
	struct json_tokener	*tok;
	struct json_object	*o, *v;
	size_t			 end;
	int			 n, rc = -1;

	n = FCGX_GetStr(buf, BODY_MAX + 1, req->fcgx->in);
	if (n <= 0 || n > BODY_MAX)
		return -1;
	if ((tok = json_tokener_new()) == NULL)
		return -1;
	o = json_tokener_parse_ex(tok, buf, n);
	/* the whole body is the object, but for one line ending */
	end = (size_t)n - (buf[n - 1] == '\n');
	if (o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
	    json_tokener_get_parse_end(tok) == end &&
	    json_object_is_type(o, json_type_object) &&
	    json_object_object_length(o) == 1 &&
	    json_object_object_get_ex(o, "counter", &v) &&
	    json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) >= 0 &&
	    json_object_get_uint64(v) <= (uint64_t)COUNTER_MAX) {
		*value = json_object_get_int64(v);
		rc = 0;
	}
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

/* PUT of one counter. */
static void
admin_set(struct admin *a, struct request *req, const char *name)
{
	char		 num[24];
	const char	*values[2] = { name, num };
	PGresult	*res;
	long long	 value;
	struct json_object *f;

	if (read_value(req, &value) != 0) {
		admin_log(a, req, LOG_LEVEL_INFO, "set", name, "bad request",
		    NULL);
		response_error(req, 400, BODY_RULE, NULL);
		return;
	}
	snprintf(num, sizeof(num), "%lld", value);
	f = json_object_new_object();
	json_object_object_add(f, "value", json_object_new_int64(value));
	if (admin_exec(a, STMT_SET, values, &res) != 0) {
		admin_log(a, req, LOG_LEVEL_WARN, "set", name,
		    "database unavailable", f);
		response_db_unavailable(req);
		return;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		admin_log(a, req, LOG_LEVEL_INFO, "set", name, "absent", f);
		response_error(req, 404, "no counter has this name: its first "
		    "write creates it", NULL);
		return;
	}
	PQclear(res);
	admin_log(a, req, LOG_LEVEL_INFO, "set", name, "ok", f);
	response_json(req, 200, counter_body(name, value, -1), NULL);
}

/* DELETE of a named counter, then of its keys. */
static void
admin_delete(struct admin *a, struct request *req, const char *name)
{
	const char		*values[1] = { name };
	char			 id[24];
	const char		*ids[1] = { id };
	PGresult		*res;
	long long		 value, keys = 0;
	struct json_object	*f;

	if (admin_exec(a, STMT_DELETE, values, &res) != 0) {
		admin_log(a, req, LOG_LEVEL_WARN, "delete", name,
		    "database unavailable", NULL);
		response_db_unavailable(req);
		return;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		admin_log(a, req, LOG_LEVEL_INFO, "delete", name, "absent",
		    NULL);
		response_error(req, 404, "no counter has this name", NULL);
		return;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	value = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	/* The counter is gone; its keys expire anyway if this fails. */
	if (admin_exec(a, STMT_DELETE_KEYS, ids, &res) == 0) {
		keys = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
	} else
		keys = -1;
	f = json_object_new_object();
	json_object_object_add(f, "value", json_object_new_int64(value));
	json_object_object_add(f, "keys_deleted",
	    keys >= 0 ? json_object_new_int64(keys) : NULL);
	admin_log(a, req, keys >= 0 ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
	    "delete", name, keys >= 0 ? "ok" : "ok, keys left to expire", f);
	response_json(req, 200, counter_body(name, value, keys >= 0 ? keys :
	    0), NULL);
}

/* Each path's methods; when off, every method is taken (and gets the
 * 404 of a path that is not there). */
static unsigned int
admin_route_methods(const struct request *req, void *ctx)
{
	const struct admin	*a = ctx;
	unsigned int		 m;

	if (a->path == NULL)
		return ~0u;
	m = METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD);
	if (req->route == ROUTE_ADMIN_NAMED)
		m |= METHOD_BIT(METHOD_PUT) | METHOD_BIT(METHOD_DELETE);
	else if (req->route == ROUTE_ADMIN_DEFAULT)
		m |= METHOD_BIT(METHOD_PUT);
	return m;
}

static void
admin_handle(struct request *req, void *ctx)
{
	struct admin	*a = ctx;
	const char	*name;

	name = req->route == ROUTE_ADMIN_DEFAULT ? "" : req->name;
	if (a->path == NULL) {		/* off: as if there were no path */
		response_error(req, 404, "not found", NULL);
		return;
	}
	if (!token_ok(a, req)) {
		admin_log(a, req, LOG_LEVEL_WARN, req->route ==
		    ROUTE_ADMIN_LIST ? "list" : req->method == METHOD_PUT ?
		    "set" : req->method == METHOD_DELETE ? "delete" : "get",
		    req->route == ROUTE_ADMIN_LIST ||
		    (req->route == ROUTE_ADMIN_NAMED &&
		    request_name_check(name) != 0) ? NULL : name,
		    request_param(req, "HTTP_AUTHORIZATION") == NULL ?
		    "no token" : "wrong token", NULL);
		response_error(req, 401, "this path takes \"Authorization: "
		    "Bearer\" with the admin token",
		    "WWW-Authenticate: Bearer realm=\"tally-admin\"\r\n");
		return;
	}
	if (req->route == ROUTE_ADMIN_LIST) {
		admin_list(a, req);
		return;
	}
	if (req->route == ROUTE_ADMIN_NAMED &&
	    request_name_check(req->name) != 0) {
		response_error(req, 400, REQUEST_NAME_RULE, NULL);
		return;
	}
	if (req->method == METHOD_PUT)
		admin_set(a, req, name);
	else if (req->method == METHOD_DELETE)
		admin_delete(a, req, name);
	else
		admin_get(a, req, name);
}

static const struct responder admin_responder = {
	RESPONDER_DECLARED(admin),	/* src/responders.def */
	.reads_body = 1,
	.route_methods = admin_route_methods,
	.start = admin_start,
	.handle = admin_handle,
	.stop = admin_stop,
};

int
main(int argc, char **argv)
{
	return responder_main(&admin_responder, argc, argv);
}
