/* tally - unit tests for counter.c's arithmetic: its static functions,
 * reached by including the file (as lighttpd's src/t tests do). The text
 * of a bigint read back exactly, up to the counter's maximum and not past
 * it; the values a committed batch hands out, in order, and the
 * increments refused at the maximum (the 409 of /write) without a sum
 * past it; tally_count_named's array literals; and its rows (made
 * by libpq itself, as the database would send them) read into the
 * calls, and the one call that created a named counter. */
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

/* The calls, sorted, become tally_count_named's arrays: each counter
 * once with its unkeyed increments, each distinct key of a counter once
 * with its counter's name, '"' and '\' escaped. */
static void
test_named_literals(void)
{
	struct fixture		 f = { .n = 0 };
	struct counter_call	*calls[NCALLS] = { NULL };
	struct literal		 lit[4];
	size_t			 i;

	add(&f, COUNTER_INCREMENT, "a");
	add(&f, COUNTER_INCREMENT, "a");
	add(&f, COUNTER_INCREMENT, "b\"c");
	add(&f, COUNTER_INCREMENT, "d\\e");
	add(&f, COUNTER_INCREMENT, "\"\"\"");	/* the worst case: doubled */
	add(&f, COUNTER_INCREMENT, NULL);
	add(&f, COUNTER_READ, NULL)->name = "ns/x";
	add(&f, COUNTER_INCREMENT, "a")->name = "ns/x";
	for (i = 0; i < f.n; i++)
		calls[i] = &f.calls[i];
	qsort(calls, f.n, sizeof(*calls), compare_calls);
	CHECK(calls[0]->key == NULL && calls[7]->key != NULL);
	CHECK(named_literals(calls, f.n, &lit[0], &lit[1], &lit[2],
	    &lit[3]) == 0);
	CHECK_STR(literal_end(&lit[0]), "{\"\",\"ns/x\"}");
	CHECK_STR(literal_end(&lit[1]), "{1,0}");
	CHECK_STR(literal_end(&lit[2]),
	    "{\"\\\"\\\"\\\"\",\"a\",\"b\\\"c\",\"d\\\\e\",\"a\"}");
	CHECK_STR(literal_end(&lit[3]), "{\"\",\"\",\"\",\"\",\"ns/x\"}");
	for (i = 0; i < 4; i++)
		free(lit[i].s);

	CHECK(named_literals(calls, 1, &lit[0], &lit[1], &lit[2],
	    &lit[3]) == 0);
	CHECK_STR(literal_end(&lit[1]), "{1}");
	CHECK_STR(literal_end(&lit[2]), "{}");
	CHECK_STR(literal_end(&lit[3]), "{}");
	for (i = 0; i < 4; i++)
		free(lit[i].s);
}

/* A result as tally_count_named answers: per counter, its row (name,
 * key NULL, its value, outcome NULL, the unkeyed increments counted),
 * then one row per distinct key, sorted: name, key, value, outcome. */
static PGresult *
named_result(const char *const rows[][5], int n)
{
	static const char *const names[5] = { "name", "key", "value",
	    "outcome", "counted" };
	PGresAttDesc	 attrs[5];
	PGresult	*res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	int		 row, col;

	CHECK(res != NULL);
	memset(attrs, 0, sizeof(attrs));
	for (col = 0; col < 5; col++)
		attrs[col].name = (char *)names[col];	/* libpq copies it */
	CHECK(PQsetResultAttrs(res, 5, attrs) != 0);
	for (row = 0; row < n; row++)
		for (col = 0; col < 5; col++)
			CHECK(PQsetvalue(res, row, col, (char *)rows[row][col],
			    rows[row][col] == NULL ? -1 :
			    (int)strlen(rows[row][col])) != 0);
	return res;
}

static void
test_keyed_rows(void)
{
	static const char *const rows[][5] = {
		{ "", NULL, "9223372036854775807", NULL, "0" },
		{ "", "k1", "9223372036854775806", "counted", NULL },
		{ "", "k2", "7", "replayed", NULL },
		{ "", "k3", NULL, "maximum", NULL },
		{ "", "k4", NULL, "full", NULL },
		{ "", "k5", NULL, "other", NULL },
	};
	struct fixture		 f = { .n = 0 };
	struct counter_call	*keyed[NCALLS] = { NULL };
	PGresult		*res;
	size_t			 i;
	int			 row;

	add(&f, COUNTER_INCREMENT, "k1");
	add(&f, COUNTER_INCREMENT, "k1");	/* a replay of the first */
	add(&f, COUNTER_INCREMENT, "k2");
	add(&f, COUNTER_INCREMENT, "k3");
	add(&f, COUNTER_INCREMENT, "k3");	/* refused like the first */
	add(&f, COUNTER_INCREMENT, "k4");
	add(&f, COUNTER_INCREMENT, "k5");
	for (i = 0; i < f.n; i++)
		keyed[i] = &f.calls[i];

	res = named_result(rows, 6);
	row = 0;
	CHECK_INT(read_counter_rows(res, &row, keyed, f.n), 0);
	CHECK_INT(row, 6);
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
	CHECK_INT(keyed[6]->ok, 0);
	CHECK_INT(keyed[6]->refused, COUNTER_KEY_ELSEWHERE);
	PQclear(res);

	/* a row missing, one too many (rows left over: run_named refuses
	 * them), a key out of order, an odd outcome, a value past a bigint,
	 * another counter's row: all odd */
	res = named_result(rows, 5);
	row = 0;
	CHECK_INT(read_counter_rows(res, &row, keyed, f.n), -1);
	PQclear(res);
	res = named_result(rows, 6);
	row = 0;
	CHECK_INT(read_counter_rows(res, &row, keyed, 5), 0);
	CHECK_INT(row, 4);	/* no calls for k4, k5: rows left */
	PQclear(res);
	{
		static const char *const swapped[][5] = {
			{ "", NULL, "3", NULL, "0" },
			{ "", "k2", "2", "counted", NULL },
			{ "", "k1", "3", "counted", NULL },
		};
		static const char *const odd[][5] = {
			{ "", NULL, "3", NULL, "0" },
			{ "", "k1", "3", "lost", NULL },
		};
		static const char *const big[][5] = {
			{ "", NULL, "3", NULL, "0" },
			{ "", "k1", "9223372036854775808", "counted", NULL },
		};
		static const char *const other[][5] = {
			{ "x", NULL, "3", NULL, "0" },
			{ "x", "k1", "3", "counted", NULL },
		};
		struct counter_call	*two[2] = { &f.calls[0], &f.calls[2] };

		res = named_result(swapped, 3);
		row = 0;
		CHECK_INT(read_counter_rows(res, &row, two, 2), -1);
		PQclear(res);
		res = named_result(odd, 2);
		row = 0;
		CHECK_INT(read_counter_rows(res, &row, keyed, 1), -1);
		PQclear(res);
		res = named_result(big, 2);
		row = 0;
		CHECK_INT(read_counter_rows(res, &row, keyed, 1), -1);
		PQclear(res);
		res = named_result(other, 2);
		row = 0;
		CHECK_INT(read_counter_rows(res, &row, keyed, 1), -1);
		PQclear(res);
	}
}

/* A named counter's reads and unkeyed writes: values in order after the
 * counter's row; a counter not created answers absent to its reads and
 * cap to its writes. */
static void
test_counter_rows(void)
{
	static const char *const made[][5] = {
		{ "a", NULL, "5", NULL, "2" },
	};
	static const char *const capped[][5] = {
		{ "b", NULL, NULL, "cap", "0" },
	};
	static const char *const absent[][5] = {
		{ "c", NULL, NULL, "absent", "0" },
	};
	struct fixture		 f = { .n = 0 };
	struct counter_call	*calls[NCALLS] = { NULL };
	PGresult		*res;
	size_t			 i;
	int			 row;

	add(&f, COUNTER_READ, NULL)->name = "a";
	add(&f, COUNTER_INCREMENT, NULL)->name = "a";
	add(&f, COUNTER_INCREMENT, NULL)->name = "a";
	for (i = 0; i < f.n; i++)
		calls[i] = &f.calls[i];
	res = named_result(made, 1);
	row = 0;
	CHECK_INT(read_counter_rows(res, &row, calls, 3), 0);
	CHECK_INT(calls[0]->value, 5);
	CHECK_INT(calls[1]->value, 4);
	CHECK_INT(calls[2]->value, 5);
	PQclear(res);

	for (i = 0; i < f.n; i++) {	/* as run_batch sets them */
		f.calls[i].name = "b";
		f.calls[i].ok = 0;
	}
	res = named_result(capped, 1);
	row = 0;
	CHECK_INT(read_counter_rows(res, &row, calls, 3), 0);
	CHECK_INT(calls[0]->refused, COUNTER_ABSENT);
	CHECK_INT(calls[1]->refused, COUNTER_CAP);
	CHECK_INT(calls[2]->ok, 0);
	CHECK_INT(calls[2]->refused, COUNTER_CAP);
	PQclear(res);

	f.calls[0].name = "c";
	res = named_result(absent, 1);
	row = 0;
	CHECK_INT(read_counter_rows(res, &row, calls, 1), 0);
	CHECK_INT(calls[0]->ok, 0);
	CHECK_INT(calls[0]->refused, COUNTER_ABSENT);
	PQclear(res);
}

/* The call that created a named counter (it held 0 before the
 * statement) is marked, once: the first increment that counted, not a
 * read; a counter that held more, or the default counter, has none. */
static void
test_created(void)
{
	static const char *const made[][5] = {
		{ "n", NULL, "3", NULL, "2" },
		{ "n", "k", "3", "counted", NULL },
	};
	static const char *const held[][5] = {
		{ "n", NULL, "5", NULL, "2" },
		{ "n", "k", "5", "counted", NULL },
	};
	static const char *const dflt[][5] = {
		{ "", NULL, "3", NULL, "2" },
		{ "", "k", "3", "counted", NULL },
	};
	const char		*names[3] = { "n", "n", "" };
	const char *const	(*rows[3])[5] = { made, held, dflt };
	struct fixture		 f;
	struct counter_call	*calls[NCALLS] = { NULL };
	PGresult		*res;
	size_t			 i, c;
	int			 row;

	for (c = 0; c < 3; c++) {
		check_case("counter %zu", c);
		f.n = 0;
		add(&f, COUNTER_READ, NULL);
		add(&f, COUNTER_INCREMENT, NULL);
		add(&f, COUNTER_INCREMENT, NULL);
		add(&f, COUNTER_INCREMENT, "k");
		for (i = 0; i < f.n; i++) {
			f.calls[i].name = names[c];
			calls[i] = &f.calls[i];
		}
		res = named_result(rows[c], 2);
		row = 0;
		CHECK_INT(read_counter_rows(res, &row, calls, f.n), 0);
		CHECK_INT(calls[0]->created, 0);
		CHECK_INT(calls[1]->created, c == 0);
		CHECK_INT(calls[2]->created, 0);
		CHECK_INT(calls[3]->created, 0);
		PQclear(res);
	}
	check_case_end();
}

int
main(void)
{
	test_parse_value();
	test_assign_in_order();
	test_assign_past_two_to_53();
	test_assign_at_maximum();
	test_named_literals();
	test_keyed_rows();
	test_counter_rows();
	test_created();
	return 0;
}
