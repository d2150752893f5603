/* tally - check: the unit tests' checker, one statement per condition (as
 * lighttpd's src/t and kcgi's regress/ state theirs):
 *
 *	CHECK(cond);		the condition holds
 *	CHECK_INT(have, want);	two integers are equal
 *	CHECK_STR(have, want);	two strings are equal (NULL is no string)
 *	CHECK_HAS(have, part);	the string have contains part
 *
 * A failure prints the file and line, the expression, what the code had
 * and what the test wanted, and the case check_case() last named (the
 * input of a table-driven test), unless check_case_end() ended it; then it
 * aborts, so a test stops at its first broken condition, as with assert(),
 * and make check counts it. */
#ifndef TALLY_CHECK_H
#define TALLY_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) \
	check_true((cond) != 0, #cond, __FILE__, __LINE__)
#define CHECK_INT(have, want) \
	check_int((long long)(have), (long long)(want), #have, __FILE__, \
	    __LINE__)
#define CHECK_STR(have, want) \
	check_str((have), (want), #have, __FILE__, __LINE__)
#define CHECK_HAS(have, part) \
	check_has((have), (part), #have, __FILE__, __LINE__)

/* The text of the current case: empty until check_case() names one. */
static inline char *
check_case_text(void)
{
	static char	text[256] = "";

	return text;
}

/* Names the case the next checks are about, printf-style. */
static inline void __attribute__((format(printf, 1, 2)))
check_case(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(check_case_text(), 256, fmt, ap);
	va_end(ap);
}

/* Ends the case check_case() named: the checks after it are about none. */
static inline void
check_case_end(void)
{
	check_case_text()[0] = '\0';
}

/* Reports a broken condition and aborts; have and want may be NULL. */
static inline void __attribute__((noreturn))
check_failed(const char *file, int line, const char *expr, const char *have,
    const char *want)
{
	fprintf(stderr, "%s:%d: check failed: %s", file, line, expr);
	if (check_case_text()[0] != '\0')
		fprintf(stderr, " (case %s)", check_case_text());
	if (have != NULL)
		fprintf(stderr, "\n  have: %s\n  want: %s", have, want);
	fputc('\n', stderr);
	abort();
}

static inline void
check_true(int ok, const char *expr, const char *file, int line)
{
	if (!ok)
		check_failed(file, line, expr, NULL, NULL);
}

static inline void
check_int(long long have, long long want, const char *expr, const char *file,
    int line)
{
	char	h[32], w[32];

	if (have == want)
		return;
	(void)snprintf(h, sizeof(h), "%lld", have);
	(void)snprintf(w, sizeof(w), "%lld", want);
	check_failed(file, line, expr, h, w);
}

/* A string for a failure message: quoted, or (null). */
static inline const char *
check_quote(char *buf, size_t size, const char *s)
{
	if (s == NULL)
		return "(null)";
	(void)snprintf(buf, size, "\"%s\"", s);
	return buf;
}

static inline void
check_str(const char *have, const char *want, const char *expr,
    const char *file, int line)
{
	char	h[512], w[512];

	if (have != NULL && want != NULL && strcmp(have, want) == 0)
		return;
	check_failed(file, line, expr, check_quote(h, sizeof(h), have),
	    check_quote(w, sizeof(w), want));
}

static inline void
check_has(const char *have, const char *part, const char *expr,
    const char *file, int line)
{
	char	h[512], p[512], w[sizeof(p) + 16];

	if (have != NULL && part != NULL && strstr(have, part) != NULL)
		return;
	(void)snprintf(w, sizeof(w), "something with %s",
	    check_quote(p, sizeof(p), part));
	check_failed(file, line, expr, check_quote(h, sizeof(h), have), w);
}

#endif /* TALLY_CHECK_H */
