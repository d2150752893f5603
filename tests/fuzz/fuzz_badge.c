/* tally - fuzzes badge_params_parse, the badge's query string (the
 * internet's bytes, as lighttpd passes them), and badge_render with what
 * it accepts. An accepted label is 1 to BADGE_LABEL_MAX characters of
 * UTF-8 and the colour "#" and 3 or 6 lower-case hex digits; a refused
 * query names one of the rules. The SVG always fits the responder's
 * buffer, and every '<' and '&' in it is the template's: a tag of its
 * own or one of the five escapes, whatever the label holds. */
#include "fuzz.h"

#include "badge.h"

/* The responder's buffer (read.c, BADGE_SIZE). */
#define BADGE_SIZE	4096

static const char *const tags[] = {
	"svg ", "title>", "linearGradient ", "stop ", "clipPath ", "rect ",
	"g ", "g>", "text ", "/",
};
static const char *const escapes[] = {
	"amp;", "lt;", "gt;", "quot;", "apos;",
};

static int
starts_with_one(const char *s, const char *const *list, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strncmp(s, list[i], strlen(list[i])) == 0)
			return 1;
	return 0;
}

static void
check_accepted(const struct badge_params *p)
{
	char		 svg[BADGE_SIZE], etag[BADGE_ETAG_SIZE];
	const char	*s;
	size_t		 len, n, i;

	n = strlen(p->color);
	assert(p->color[0] == '#' && (n == 4 || n == 7));
	for (i = 1; i < n; i++)
		assert((p->color[i] >= '0' && p->color[i] <= '9') ||
		    (p->color[i] >= 'a' && p->color[i] <= 'f'));
	assert(p->label[0] != '\0');
	len = badge_render(svg, sizeof(svg), p->label, "9223372036854775807",
	    p->color);
	assert(len > 0 && len == strlen(svg));
	for (s = svg; (s = strpbrk(s, "<&")) != NULL; s++)
		assert(*s == '<' ?
		    starts_with_one(s + 1, tags, sizeof(tags) / sizeof(tags[0])) :
		    starts_with_one(s + 1, escapes,
		    sizeof(escapes) / sizeof(escapes[0])));
	badge_etag(svg, len, etag);
	assert(strlen(etag) == BADGE_ETAG_SIZE - 1);
	assert(badge_etag_matches(etag, etag));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct badge_params	 p;
	const char		*rule = NULL;
	char			*s = fuzz_string(data, size);

	if (badge_params_parse(s, &p, &rule) == 0)
		check_accepted(&p);
	else
		assert(rule != NULL && (strcmp(rule, BADGE_LABEL_RULE) == 0 ||
		    strcmp(rule, BADGE_COLOR_RULE) == 0 ||
		    strcmp(rule, BADGE_QUERY_RULE) == 0));
	/* any header value against any tag: no crash, no read past it */
	(void)badge_etag_matches(s, "\"b0123456789abcdef\"");
	free(s);
	return 0;
}
