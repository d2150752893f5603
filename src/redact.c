/* tally - redact: a connection string's secrets out of libpq's messages. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "redact.h"

#define UNPARSEABLE	"DATABASE_URL is not a valid connection string or " \
			"URI (not quoted here: it may hold a password)"
#define NO_MEMORY	"out of memory while leaving the password out of " \
			"libpq's message"

struct secrets {
	char	**v;
	size_t	  n, cap;
	int	  failed;	/* out of memory */
};

/* Adds a copy of s (NULL or empty: nothing). */
static void
secrets_add(struct secrets *s, const char *value)
{
	char	**v;

	if (value == NULL || *value == '\0' || s->failed)
		return;
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 8 : s->cap * 2;
		if ((v = realloc(s->v, s->cap * sizeof(*v))) == NULL) {
			s->failed = 1;
			return;
		}
		s->v = v;
	}
	if ((s->v[s->n] = strdup(value)) == NULL)
		s->failed = 1;
	else
		s->n++;
}

/* Adds value percent-encoded as a URI spells it: every byte but the
 * unreserved ones as %XX, with hex digits in the case of digits. */
static void
secrets_add_encoded(struct secrets *s, const char *value, const char *digits)
{
	static const char	 unreserved[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
	const unsigned char	*p;
	char			*enc, *q;

	if (value == NULL || (enc = malloc(strlen(value) * 3 + 1)) == NULL) {
		s->failed |= value != NULL;
		return;
	}
	for (p = (const unsigned char *)value, q = enc; *p != '\0'; p++)
		if (strchr(unreserved, *p) != NULL)
			*q++ = (char)*p;
		else {
			*q++ = '%';
			*q++ = digits[*p >> 4];
			*q++ = digits[*p & 0xf];
		}
	*q = '\0';
	secrets_add(s, enc);
	free(enc);
}

/* Adds value as a connection string's quoted value spells it: a
 * backslash before each quote and backslash. */
static void
secrets_add_escaped(struct secrets *s, const char *value)
{
	char	*esc, *q;

	if (value == NULL || (esc = malloc(strlen(value) * 2 + 1)) == NULL) {
		s->failed |= value != NULL;
		return;
	}
	for (q = esc; *value != '\0'; value++) {
		if (*value == '\'' || *value == '\\')
			*q++ = '\\';
		*q++ = *value;
	}
	*q = '\0';
	secrets_add(s, esc);
	free(esc);
}

static void
secrets_free(struct secrets *s)
{
	size_t	i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

/* As libpq tells a connection string or URI from a database name. */
static int
is_uri(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 ||
	    strncmp(s, "postgres://", 11) == 0;
}

/*
 * Whether libpq read a URI as no well-formed URI is read: an '@' in a
 * value other than the password (only the user information ends in one),
 * or a port that is not a list of numbers.
 */
static int
misread(const PQconninfoOption *opts)
{
	const PQconninfoOption	*o;

	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || strcmp(o->keyword, "password") == 0)
			continue;
		if (strchr(o->val, '@') != NULL)
			return 1;
		if (strcmp(o->keyword, "port") == 0 &&
		    o->val[strspn(o->val, "0123456789,")] != '\0')
			return 1;
	}
	return 0;
}

/* Finds the secrets of conninfo. Returns 0, or -1 if it does not parse. */
static int
secrets_find(struct secrets *s, const char *conninfo)
{
	PQconninfoOption	*opts, *o;
	char			*err = NULL;
	int			 all;

	secrets_add(s, getenv("PGPASSWORD"));
	if (conninfo == NULL ||
	    (!is_uri(conninfo) && strchr(conninfo, '=') == NULL))
		return 0;	/* a database name: libpq takes it as is */
	if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
		PQfreemem(err);	/* it may quote the string */
		return -1;
	}
	all = is_uri(conninfo) && misread(opts);
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "password") == 0) {
			secrets_add(s, o->val);
			secrets_add_encoded(s, o->val, "0123456789ABCDEF");
			secrets_add_encoded(s, o->val, "0123456789abcdef");
			secrets_add_escaped(s, o->val);
		} else if (all)
			secrets_add(s, o->val);
	}
	PQconninfoFree(opts);
	return 0;
}

/* The length of the longest secret that msg starts with, or 0. */
static size_t
secret_at(const struct secrets *s, const char *msg)
{
	size_t	i, len, best = 0;

	for (i = 0; i < s->n; i++) {
		len = strlen(s->v[i]);
		if (len > best && strncmp(msg, s->v[i], len) == 0)
			best = len;
	}
	return best;
}

const char *
redact_conn_error(const char *conninfo, const char *msg, char *out,
    size_t size)
{
	struct secrets	 s = { NULL, 0, 0, 0 };
	size_t		 len = 0, skip;
	const char	*fixed = NULL;

	if (size == 0)
		return out;
	if (secrets_find(&s, conninfo) != 0)
		fixed = UNPARSEABLE;
	else if (s.failed)
		fixed = NO_MEMORY;
	if (fixed != NULL) {
		secrets_free(&s);
		(void)snprintf(out, size, "%s", fixed);
		return out;
	}
	for (msg = msg != NULL ? msg : ""; *msg != '\0' && len + 1 < size;) {
		if ((skip = secret_at(&s, msg)) > 0) {
			/* all of the marker or none: never a part */
			if (len + sizeof(REDACT_MARK) > size)
				break;
			memcpy(out + len, REDACT_MARK, sizeof(REDACT_MARK) - 1);
			len += sizeof(REDACT_MARK) - 1;
			msg += skip;
		} else
			out[len++] = *msg++;
	}
	out[len] = '\0';
	secrets_free(&s);
	return out;
}
