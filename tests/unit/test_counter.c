/* tally - unit tests for counter.c's arithmetic: its static functions,
 * reached by including the file (as lighttpd's src/t tests do). The text
 * of a bigint read back exactly, up to the counter's maximum and not past
 * it; the values a committed batch hands out, in order, and the
 * increments refused at the maximum (the 409 of /write) without a sum
 * past it; the keys' text[] literal; and tally_count_keyed's rows (made
 * by libpq itself, as the database would send them) read into the
 * calls. */
#include "../../src/counter.c"	/* NOLINT(bugprone-suspicious-include) */

#include <limits.h>

#include "check.h"

#define TWO_TO_53	9007199254740992LL	/* JSON's exact integers end */
#define NCALLS		8

/* A batch of calls as the database thread sees it. */
struct fixture {
	struct counter_call	 calls[NCALLS];
	struct batch_item	*items[NCALLS];
	size_t			 n;
};

/* Appends a call: op, and key (NULL: unkeyed). */
static struct counter_call *
add(struct fixture *f, enum counter_op op, const char *key)
{
	struct counter_call	*c = &f->calls[f->n];

	memset(c, 0, sizeof(*c));
	c->op = op;
	c->key = key;
	c->value = -1;		/* "not set" */
	c->item.arg = c;
	f->items[f->n++] = &c->item;
	return c;
}

static void
test_parse_value(void)
{
	static const struct {
		const char	*text;
		int		 rc;
		long long	 value;
	} cases[] = {
		{ "0", 0, 0 },
		{ "42", 0, 42 },
		{ "9007199254740992", 0, TWO_TO_53 },
		/* not a double's: read as text, not through a float */
		{ "9007199254740993", 0, TWO_TO_53 + 1 },
		{ "9223372036854775806", 0, COUNTER_MAX - 1 },
		{ "9223372036854775807", 0, COUNTER_MAX },
		{ "-9223372036854775808", 0, LLONG_MIN },
		/* one past a bigint: strtoll would clamp it to the maximum */
		{ "9223372036854775808", -1, 0 },
		{ "-9223372036854775809", -1, 0 },
		{ "99999999999999999999", -1, 0 },
		{ "", -1, 0 },
		{ "12x", -1, 0 },
		{ "x", -1, 0 },
		{ "1 ", -1, 0 },
	};
	long long	v;
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_case("\"%s\"", cases[i].text);
		CHECK_INT(parse_value(cases[i].text, &v), cases[i].rc);
		if (cases[i].rc == 0)
			CHECK_INT(v, cases[i].value);
	}
	check_case_end();
}

/* Unkeyed increments take before+1, before+2, ... in batch order; reads
 * take the value after the statement; keyed calls are left alone. */
static void
test_assign_in_order(void)
{
	struct fixture		 f = { .n = 0 };
	struct counter_call	*a, *r, *b, *k, *c;

	a = add(&f, COUNTER_INCREMENT, NULL);
	r = add(&f, COUNTER_READ, NULL);
	b = add(&f, COUNTER_INCREMENT, NULL);
	k = add(&f, COUNTER_INCREMENT, "key");
	c = add(&f, COUNTER_INCREMENT, NULL);
	/* 3 unkeyed and one key counted now: 10 -> 14 */
	assign_values(f.items, f.n, 10, 3, 14);
	CHECK_INT(a->ok, 1);
	CHECK_INT(a->value, 11);
	CHECK_INT(b->value, 12);
	CHECK_INT(c->ok, 1);
	CHECK_INT(c->value, 13);
	CHECK_INT(r->ok, 1);
	CHECK_INT(r->value, 14);
	CHECK_INT(k->ok, 0);
	CHECK_INT(k->value, -1);
	CHECK_INT(k->refused, COUNTER_NOT_REFUSED);
}

/* Around 2^53, where a double stops telling neighbours apart. */
static void
test_assign_past_two_to_53(void)
{
	struct fixture		 f = { .n = 0 };
	struct counter_call	*a, *b, *r;

	a = add(&f, COUNTER_INCREMENT, NULL);
	b = add(&f, COUNTER_INCREMENT, NULL);
	r = add(&f, COUNTER_READ, NULL);
	assign_values(f.items, f.n, TWO_TO_53 - 1, 2, TWO_TO_53 + 1);
	CHECK_INT(a->value, TWO_TO_53);
	CHECK_INT(b->value, TWO_TO_53 + 1);
	CHECK_INT(r->value, TWO_TO_53 + 1);
}

/* Near the maximum only what fits counts, in batch order; the rest is
 * refused for good (409), and no sum goes past COUNTER_MAX (UBSan would
 * report a signed overflow). */
static void
test_assign_at_maximum(void)
{
	struct fixture		 f = { .n = 0 };
	struct counter_call	*a, *b, *c, *r;

	a = add(&f, COUNTER_INCREMENT, NULL);
	b = add(&f, COUNTER_INCREMENT, NULL);
	r = add(&f, COUNTER_READ, NULL);
	c = add(&f, COUNTER_INCREMENT, NULL);
	/* one of three fits: MAX-1 -> MAX */
	assign_values(f.items, f.n, COUNTER_MAX - 1, 1, COUNTER_MAX);
	CHECK_INT(a->ok, 1);
	CHECK_INT(a->value, COUNTER_MAX);
	CHECK_INT(b->ok, 0);
	CHECK_INT(b->refused, COUNTER_AT_MAXIMUM);
	CHECK_INT(c->ok, 0);
	CHECK_INT(c->refused, COUNTER_AT_MAXIMUM);
	CHECK_INT(r->ok, 1);
	CHECK_INT(r->value, COUNTER_MAX);

	/* at the maximum already: nothing fits */
	f.n = 0;
	a = add(&f, COUNTER_INCREMENT, NULL);
	r = add(&f, COUNTER_READ, NULL);
	assign_values(f.items, f.n, COUNTER_MAX, 0, COUNTER_MAX);
	CHECK_INT(a->ok, 0);
	CHECK_INT(a->refused, COUNTER_AT_MAXIMUM);
	CHECK_INT(a->value, -1);
	CHECK_INT(r->ok, 1);
	CHECK_INT(r->value, COUNTER_MAX);

	/* exactly up to it: every one fits */
	f.n = 0;
	a = add(&f, COUNTER_INCREMENT, NULL);
	b = add(&f, COUNTER_INCREMENT, NULL);
	assign_values(f.items, f.n, COUNTER_MAX - 2, 2, COUNTER_MAX);
	CHECK_INT(a->value, COUNTER_MAX - 1);
	CHECK_INT(b->value, COUNTER_MAX);
	CHECK_INT(b->refused, COUNTER_NOT_REFUSED);
}

/* The keys, sorted, become one text[] literal: each distinct key once,
 * '"' and '\' escaped. */
static void
test_keys_literal(void)
{
	struct fixture		 f = { .n = 0 };
	struct counter_call	*keyed[NCALLS] = { NULL };
	char			*lit;
	size_t			 i;

	add(&f, COUNTER_INCREMENT, "a");
	add(&f, COUNTER_INCREMENT, "a");
	add(&f, COUNTER_INCREMENT, "b\"c");
	add(&f, COUNTER_INCREMENT, "d\\e");
	add(&f, COUNTER_INCREMENT, "\"\"\"");	/* the worst case: doubled */
	for (i = 0; i < f.n; i++)
		keyed[i] = &f.calls[i];
	qsort(keyed, f.n, sizeof(*keyed), compare_keys);
	lit = keys_literal(keyed, f.n);
	CHECK_STR(lit, "{\"\\\"\\\"\\\"\",\"a\",\"b\\\"c\",\"d\\\\e\"}");
	free(lit);

	lit = keys_literal(keyed, 0);
	CHECK_STR(lit, "{}");
	free(lit);
}

/* A result as tally_count_keyed answers: row 0 the batch's (its value
 * and the unkeyed increments counted), then one row per distinct key,
 * sorted: key, value, outcome. */
static PGresult *
keyed_result(const char *const rows[][4], int n)
{
	static const char *const names[4] = { "key", "value", "outcome",
	    "counted" };
	PGresAttDesc	 attrs[4];
	PGresult	*res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	int		 row, col;

	CHECK(res != NULL);
	memset(attrs, 0, sizeof(attrs));
	for (col = 0; col < 4; col++)
		attrs[col].name = (char *)names[col];	/* libpq copies it */
	CHECK(PQsetResultAttrs(res, 4, attrs) != 0);
	for (row = 0; row < n; row++)
		for (col = 0; col < 4; col++)
			CHECK(PQsetvalue(res, row, col, (char *)rows[row][col],
			    rows[row][col] == NULL ? -1 :
			    (int)strlen(rows[row][col])) != 0);
	return res;
}

static void
test_keyed_rows(void)
{
	static const char *const rows[][4] = {
		{ NULL, "9223372036854775807", NULL, "0" },
		{ "k1", "9223372036854775806", "counted", NULL },
		{ "k2", "7", "replayed", NULL },
		{ "k3", NULL, "maximum", NULL },
		{ "k4", NULL, "full", NULL },
	};
	struct fixture		 f = { .n = 0 };
	struct counter_call	*keyed[NCALLS] = { NULL };
	PGresult		*res;
	size_t			 i;

	add(&f, COUNTER_INCREMENT, "k1");
	add(&f, COUNTER_INCREMENT, "k1");	/* a replay of the first */
	add(&f, COUNTER_INCREMENT, "k2");
	add(&f, COUNTER_INCREMENT, "k3");
	add(&f, COUNTER_INCREMENT, "k3");	/* refused like the first */
	add(&f, COUNTER_INCREMENT, "k4");
	for (i = 0; i < f.n; i++)
		keyed[i] = &f.calls[i];

	res = keyed_result(rows, 5);
	/* only k1 is counted now */
	CHECK_INT(read_keyed_rows(res, keyed, f.n), 1);
	CHECK_INT(keyed[0]->ok, 1);
	CHECK_INT(keyed[0]->replayed, 0);
	CHECK_INT(keyed[0]->value, COUNTER_MAX - 1);
	CHECK_INT(keyed[1]->ok, 1);
	CHECK_INT(keyed[1]->replayed, 1);
	CHECK_INT(keyed[1]->value, COUNTER_MAX - 1);
	CHECK_INT(keyed[2]->ok, 1);
	CHECK_INT(keyed[2]->replayed, 1);
	CHECK_INT(keyed[2]->value, 7);
	for (i = 3; i < 5; i++) {
		check_case("k3, call %zu", i);
		CHECK_INT(keyed[i]->ok, 0);
		CHECK_INT(keyed[i]->replayed, 0);
		CHECK_INT(keyed[i]->refused, COUNTER_AT_MAXIMUM);
	}
	check_case_end();
	CHECK_INT(keyed[5]->ok, 0);
	CHECK_INT(keyed[5]->refused, COUNTER_KEYS_FULL);
	PQclear(res);

	/* a row missing, one too many, a key out of order, an odd
	 * outcome, a value past a bigint: all odd */
	res = keyed_result(rows, 4);
	CHECK_INT(read_keyed_rows(res, keyed, f.n), -1);
	PQclear(res);
	res = keyed_result(rows, 5);
	CHECK_INT(read_keyed_rows(res, keyed, 5), -1);	/* no call for k4 */
	PQclear(res);
	{
		static const char *const swapped[][4] = {
			{ NULL, "3", NULL, "0" },
			{ "k2", "2", "counted", NULL },
			{ "k1", "3", "counted", NULL },
		};
		struct counter_call	*two[2] = { &f.calls[0], &f.calls[2] };

		res = keyed_result(swapped, 3);
		CHECK_INT(read_keyed_rows(res, two, 2), -1);
		PQclear(res);
	}
	{
		static const char *const odd[][4] = {
			{ NULL, "3", NULL, "0" },
			{ "k1", "3", "lost", NULL },
		};
		static const char *const big[][4] = {
			{ NULL, "3", NULL, "0" },
			{ "k1", "9223372036854775808", "counted", NULL },
		};

		res = keyed_result(odd, 2);
		CHECK_INT(read_keyed_rows(res, keyed, 1), -1);
		PQclear(res);
		res = keyed_result(big, 2);
		CHECK_INT(read_keyed_rows(res, keyed, 1), -1);
		PQclear(res);
	}
}

int
main(void)
{
	test_parse_value();
	test_assign_in_order();
	test_assign_past_two_to_53();
	test_assign_at_maximum();
	test_keys_literal();
	test_keyed_rows();
	return 0;
}
