/* tally - unit tests for badge: the query's rules, including what
 * lighttpd refuses before a responder sees it (control characters, bytes
 * that are no UTF-8); the widths against figures of DejaVu Sans worked
 * out by hand; the escaping of every character XML gives a meaning; the
 * largest badge fitting the responder's buffer; the ETag and
 * If-None-Match's comparison. */
#include <stdio.h>
#include <string.h>

#include "badge.h"
#include "check.h"

/* The responder's buffer (read.c, BADGE_SIZE). */
#define BADGE_SIZE	4096

/* "label=" and n times c, in q (size bytes); returns q. */
static const char *
label_query(char *q, size_t size, const char *c, size_t n)
{
	size_t	len, i;

	len = (size_t)snprintf(q, size, "label=");
	for (i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(q + len, size - len, "%s", c);
	CHECK(len < size);
	return q;
}

static void
test_params(void)
{
	static const struct {
		const char	*query, *label, *color, *rule;
	} cases[] = {
		{ NULL, "counter", "#007ec6", NULL },
		{ "", "counter", "#007ec6", NULL },
		{ "v=2&x&=y", "counter", "#007ec6", NULL },
		{ "label=visits&color=green", "visits", "#97ca00", NULL },
		{ "label=a+b%20c&color=0A7", "a b c", "#0a7", NULL },
		{ "color=%2300AA77", "counter", "#00aa77", NULL },
		{ "label=caf%C3%A9%E4%B8%AD%F0%9F%98%80", "caf\xc3\xa9\xe4\xb8\xad"
		    "\xf0\x9f\x98\x80", "#007ec6", NULL },
		{ "label=%3Cscript%3E%22%27%26", "<script>\"'&", "#007ec6", NULL },
		{ "label=", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%00", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=a%0Ab", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=a%09", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%7F", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%C2%80", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%FF", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%C0%AF", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%E0%80%AF", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%ED%A0%80", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%F4%90%80%80", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%EF%BF%BF", NULL, NULL, BADGE_LABEL_RULE },
		{ "label=%E2%82", NULL, NULL, BADGE_LABEL_RULE },
		{ "color=", NULL, NULL, BADGE_COLOR_RULE },
		{ "color=purple", NULL, NULL, BADGE_COLOR_RULE },
		{ "color=Red", NULL, NULL, BADGE_COLOR_RULE },
		{ "color=12", NULL, NULL, BADGE_COLOR_RULE },
		{ "color=1234", NULL, NULL, BADGE_COLOR_RULE },
		{ "color=12345g", NULL, NULL, BADGE_COLOR_RULE },
		{ "color=%23%23abc", NULL, NULL, BADGE_COLOR_RULE },
		{ "color=abc%00", NULL, NULL, BADGE_COLOR_RULE },
		{ "label=a&label=a", NULL, NULL, BADGE_QUERY_RULE },
		{ "color=red&color=red", NULL, NULL, BADGE_QUERY_RULE },
		{ "label", NULL, NULL, BADGE_QUERY_RULE },
		{ "label=%zz", NULL, NULL, BADGE_QUERY_RULE },
		{ "label=a%2", NULL, NULL, BADGE_QUERY_RULE },
	};
	struct badge_params	 p;
	const char		*rule;
	char			 q[1024];
	size_t			 i;
	int			 rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_case("query %s", cases[i].query ? cases[i].query : "NULL");
		rule = NULL;
		rc = badge_params_parse(cases[i].query, &p, &rule);
		if (cases[i].rule == NULL) {
			CHECK_INT(rc, 0);
			CHECK_STR(p.label, cases[i].label);
			CHECK_STR(p.color, cases[i].color);
		} else {
			CHECK_INT(rc, -1);
			CHECK_STR(rule, cases[i].rule);
		}
	}
	/* 40 characters pass, 41 do not; 40 of four bytes each too */
	check_case("40 characters");
	CHECK_INT(badge_params_parse(label_query(q, sizeof(q), "x",
	    BADGE_LABEL_MAX), &p, &rule), 0);
	check_case("41 characters");
	CHECK_INT(badge_params_parse(label_query(q, sizeof(q), "x",
	    BADGE_LABEL_MAX + 1), &p, &rule), -1);
	CHECK_STR(rule, BADGE_LABEL_RULE);
	check_case("40 four-byte characters");
	CHECK_INT(badge_params_parse(label_query(q, sizeof(q), "%F0%9F%98%80",
	    BADGE_LABEL_MAX), &p, &rule), 0);
	CHECK_INT(strlen(p.label), 4 * BADGE_LABEL_MAX);
	check_case("41 four-byte characters");
	CHECK_INT(badge_params_parse(label_query(q, sizeof(q), "%F0%9F%98%80",
	    BADGE_LABEL_MAX + 1), &p, &rule), -1);
	CHECK_STR(rule, BADGE_LABEL_RULE);
	check_case_end();
}

static void
test_width(void)
{
	/* "counter": c 1126 o 1253 u 1298 n 1298 t 803 e 1260 r 842 = 7880
	 * units, * 11 / 2048 = 42.3 px: 43 */
	CHECK_INT(badge_text_width("counter"), 43);
	/* ten digits of 1303: 13030 * 11 / 2048 = 69.98: 70 */
	CHECK_INT(badge_text_width("1234567890"), 70);
	/* "é" (U+00E9) 1260 as "e"; an "e" with a combining acute
	 * (U+0301) is as wide as "e" */
	CHECK_INT(badge_text_width("\xc3\xa9"), badge_text_width("e"));
	CHECK_INT(badge_text_width("e\xcc\x81"), badge_text_width("e"));
	/* beyond the table: 1 em, 11 px */
	CHECK_INT(badge_text_width("\xe4\xb8\xad"), 11);
	CHECK_INT(badge_text_width(""), 0);
	CHECK(badge_text_width("WWWW") > badge_text_width("iiii"));
}

static void
test_render(void)
{
	char		svg[BADGE_SIZE], label[BADGE_LABEL_MAX + 1];
	const char	*s;
	size_t		len;

	len = badge_render(svg, sizeof(svg), "<a href=\"x\">'&'</a>", "42",
	    "#4c1");
	CHECK(len > 0);
	CHECK_INT(strlen(svg), len);
	CHECK_HAS(svg, "<title>&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;"
	    "&lt;/a&gt;: 42</title>");
	CHECK_HAS(svg, "aria-label=\"&lt;a href=&quot;x&quot;&gt;&apos;&amp;"
	    "&apos;&lt;/a&gt;: 42\"");
	CHECK(strstr(svg, "<a ") == NULL);
	CHECK(strstr(svg, "'&'") == NULL);
	CHECK_HAS(svg, "fill=\"#4c1\"");
	/* width: the sections' widths, 5 px each side of each text */
	CHECK(badge_render(svg, sizeof(svg), "counter", "1234567890", "#555") > 0);
	CHECK_HAS(svg, "width=\"133\"");	/* 43 + 10 + 70 + 10 */
	CHECK_HAS(svg, "<rect x=\"53\" width=\"80\"");
	CHECK_HAS(svg, "textLength=\"43\">counter<");
	CHECK_HAS(svg, "x=\"26.5\"");	/* the label's middle */
	CHECK_HAS(svg, "x=\"93.0\"");	/* the value's */
	/* on a light colour the value is dark */
	(void)badge_render(svg, sizeof(svg), "a", "1", "#ff0");
	CHECK_HAS(svg, "fill=\"#333\" textLength");
	(void)badge_render(svg, sizeof(svg), "a", "1", "#007ec6");
	CHECK(strstr(svg, "#333") == NULL);
	/* the largest: 40 characters that each take 6 bytes escaped, and
	 * the largest value */
	memset(label, '"', BADGE_LABEL_MAX);
	label[BADGE_LABEL_MAX] = '\0';
	len = badge_render(svg, sizeof(svg), label, "9223372036854775807",
	    "#00aa77");
	CHECK(len > 0 && len < sizeof(svg));
	for (s = svg; (s = strchr(s, '"')) != NULL; s++)
		CHECK(s[-1] == '=' || s[1] == ' ' || s[1] == '>' ||
		    s[1] == '/');	/* only the attributes' own quotes */
	/* too small a buffer: 0, never a cut SVG */
	CHECK_INT(badge_render(svg, 100, "counter", "1", "#555"), 0);
}

static void
test_etag(void)
{
	char	a[BADGE_ETAG_SIZE], b[BADGE_ETAG_SIZE];

	badge_etag("<svg>1</svg>", 12, a);
	badge_etag("<svg>2</svg>", 12, b);
	CHECK_INT(strlen(a), BADGE_ETAG_SIZE - 1);
	CHECK(a[0] == '"' && a[1] == 'b' && a[BADGE_ETAG_SIZE - 2] == '"');
	CHECK(strcmp(a, b) != 0);
	badge_etag("<svg>1</svg>", 12, b);
	CHECK_STR(a, b);
	CHECK_INT(badge_etag_matches(NULL, a), 0);
	CHECK_INT(badge_etag_matches("", a), 0);
	CHECK_INT(badge_etag_matches(a, a), 1);
	CHECK_INT(badge_etag_matches("*", a), 1);
	snprintf(b, sizeof(b), "W/%.17s", a);	/* cut: no match */
	CHECK_INT(badge_etag_matches(b, a), 0);
	{
		char	list[96];

		snprintf(list, sizeof(list), "\"x\" ,\tW/%s , \"y\"", a);
		CHECK_INT(badge_etag_matches(list, a), 1);
		snprintf(list, sizeof(list), "\"x\", \"y\"");
		CHECK_INT(badge_etag_matches(list, a), 0);
		snprintf(list, sizeof(list), "%.18s", a);	/* no end quote */
		CHECK_INT(badge_etag_matches(list, a), 0);
	}
}

int
main(void)
{
	test_params();
	test_width();
	test_render();
	test_etag();
	printf("test_badge: ok\n");
	return 0;
}
