/* tally - unit tests for redact: hostile passwords, spelled every way
 * DATABASE_URL or PGPASSWORD can hold them, leave no piece in what tally
 * would log of libpq's real connect errors (libpq itself connects to a
 * closed port), nor of a message that quotes them outright. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "check.h"
#include "redact.h"

/* Quotes, '@', '/', ':', '%'-escapes, spaces, backslashes, UTF-8, and the
 * password of the tally-migrate report ("ab\"~!~:~/x"). */
static const char *const passwords[] = {
	"ab\"~!~:~/x",
	"hunter@2secret",
	"pa/ss3cret",
	"Qz'7 \"Kp\\ 9w",
	"Vq%41Zr%zz9",
	"Wx:Yk@Jm/Hn?Tp=Ub#Rc",
	"Ünï©ødé€Pw",
	"Gh\\'Lm\\\\Nq",
	"Dd@Ee@Ff:Gg",
	"Jk Lm/No@Pq:Rs%2FTu",
	"密码/🔑@Zz",
};
#define NPASSWORDS	(sizeof(passwords) / sizeof(passwords[0]))

/* How DATABASE_URL spells the password: %s is the password as enc()
 * makes it. PGPASSWORD spelled: the URL has none. */
enum spelling { RAW, ENC_UPPER, ENC_LOWER, KEYVALUE, QUERY, ENV };
static const struct {
	const char	*fmt;
	enum spelling	 how;
} spellings[] = {
	{ "postgresql://tally:%s@localhost:1/tally?connect_timeout=2", RAW },
	{ "postgres://tally:%s@localhost:1/tally", RAW },
	{ "postgresql://tally:%s@localhost:1/tally", ENC_UPPER },
	{ "postgresql://tally:%s@localhost:1/tally", ENC_LOWER },
	{ "host=localhost port=1 dbname=tally user=tally password='%s' "
	    "connect_timeout=2", KEYVALUE },
	{ "postgresql://localhost:1/tally?user=tally&password=%s", ENC_UPPER },
	{ "postgresql://tally@localhost:1/tally", ENV },
};
#define NSPELLINGS	(sizeof(spellings) / sizeof(spellings[0]))

/* The password as the spelling writes it. */
static void
enc(const char *pw, enum spelling how, char *out, size_t size)
{
	const char	*hex = how == ENC_LOWER ? "0123456789abcdef" :
	    "0123456789ABCDEF";
	size_t		 len = 0;
	unsigned char	 c;

	for (; *pw != '\0' && len + 4 < size; pw++) {
		c = (unsigned char)*pw;
		if (how == KEYVALUE && (c == '\'' || c == '\\'))
			out[len++] = '\\';
		if (how == RAW || how == ENV || how == KEYVALUE ||
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c) != NULL)
			out[len++] = (char)c;
		else {
			out[len++] = '%';
			out[len++] = hex[c >> 4];
			out[len++] = hex[c & 0xf];
		}
	}
	out[len] = '\0';
}

/* Fails if text holds any three bytes of pw in a row, or all of pw. */
static void
check_no_piece(const char *text, const char *pw)
{
	char	piece[4];
	size_t	i, len = strlen(pw);

	CHECK(strstr(text, pw) == NULL);
	for (i = 0; i + 3 <= len; i++) {
		memcpy(piece, pw + i, 3);
		piece[3] = '\0';
		if (strstr(text, piece) != NULL) {
			fprintf(stderr, "piece \"%s\" in \"%s\"\n", piece, text);
			CHECK(strstr(text, piece) == NULL);
		}
	}
}

/* libpq's own connect error for url, redacted as tally logs it. */
static void
test_connect(const char *url, const char *pw)
{
	const char	*keys[] = { "dbname", NULL }, *vals[] = { url, NULL };
	char		 out[512];
	PGconn		*conn;

	conn = PQconnectdbParams(keys, vals, 1);
	CHECK(conn != NULL);
	CHECK(PQstatus(conn) != CONNECTION_OK);
	redact_conn_error(url, PQerrorMessage(conn), out, sizeof(out));
	PQfinish(conn);
	CHECK(out[0] != '\0');
	check_no_piece(out, pw);
	CHECK(strstr(out, url) == NULL);
}

/* A message that quotes the password and its encodings outright. */
static void
test_quoted(const char *url, const char *pw, const char *spelled)
{
	char	msg[1024], out[512];

	(void)snprintf(msg, sizeof(msg), "a \"%s\" b '%s' c %s%s d",
	    pw, spelled, pw, spelled);
	redact_conn_error(url, msg, out, sizeof(out));
	check_no_piece(out, pw);
}

int
main(void)
{
	char	spelled[256], url[512], out[512];
	size_t	i, j;

	for (i = 0; i < NPASSWORDS; i++)
		for (j = 0; j < NSPELLINGS; j++) {
			enc(passwords[i], spellings[j].how, spelled,
			    sizeof(spelled));
			(void)snprintf(url, sizeof(url), spellings[j].fmt,
			    spelled);
			check_case("password %zu, spelling %zu: %s", i, j, url);
			if (spellings[j].how == ENV)
				CHECK(setenv("PGPASSWORD", passwords[i], 1) == 0);
			else
				CHECK(unsetenv("PGPASSWORD") == 0);
			test_connect(url, passwords[i]);
			if (spellings[j].how != RAW)
				test_quoted(url, passwords[i], spelled);
			check_case_end();
		}
	CHECK(unsetenv("PGPASSWORD") == 0);

	/* Without a password, nothing is left out. */
	CHECK_STR(redact_conn_error("postgresql://tally@db1:5432/tally",
	    "connection to server at \"db1\", port 5432 failed", out,
	    sizeof(out)), "connection to server at \"db1\", port 5432 failed");
	CHECK_STR(redact_conn_error(NULL, "no such host", out, sizeof(out)),
	    "no such host");
	CHECK_STR(redact_conn_error("tally", "database \"tally\"", out,
	    sizeof(out)), "database \"tally\"");
	/* A well-formed URI keeps its host and port in the message. */
	CHECK_STR(redact_conn_error("postgresql://u:Se%2Fcret@db1:5432/tally",
	    "at \"db1\", port 5432: \"Se/cret\" Se%2fcret", out, sizeof(out)),
	    "at \"db1\", port 5432: \"***\" ***");
	/* A URI libpq cannot parse: nothing of the message. */
	CHECK_HAS(redact_conn_error("postgresql://u:p@[zz/tally",
	    "invalid \"[zz\"", out, sizeof(out)), "not a valid connection");
	CHECK(strstr(out, "zz") == NULL);
	/* A mark is never cut, and the result always ends. */
	CHECK_STR(redact_conn_error("password=secret", "ab secret", out, 5),
	    "ab ");
	CHECK_STR(redact_conn_error("password=secret", "secret", out, 4),
	    "***");
	CHECK_STR(redact_conn_error("password=secret", "x", out, 1), "");
	return 0;
}
