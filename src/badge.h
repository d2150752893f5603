/* tally - badge: a counter as an SVG image, a label beside its value,
 * for other sites' pages (a README) to embed: the query's parameters,
 * checked; the text's width; the SVG, made of escaped text only; and
 * the ETag of an answer. */
#ifndef TALLY_BADGE_H
#define TALLY_BADGE_H

#include <stddef.h>
#include <stdint.h>

/* The label: BADGE_LABEL_MAX characters at most. */
#define BADGE_LABEL_MAX		40
#define BADGE_LABEL_DEFAULT	"counter"
#define BADGE_COLOR_DEFAULT	"blue"
/* The rules, as a 400 states them. */
#define BADGE_LABEL_RULE						\
	"label is 1 to 40 characters of UTF-8 text, no control characters"
#define BADGE_COLOR_RULE						\
	"color is one of brightgreen, green, yellowgreen, yellow, orange, "	\
	"red, blue, lightgrey, grey, or 3 or 6 hex digits (0a7, 00aa77)"
#define BADGE_QUERY_RULE						\
	"the query is label=TEXT and color=COLOR, each at most once, "	\
	"%-encoded"

/* A badge's parameters, from the query (BADGE_*_DEFAULT without). */
struct badge_params {
	/* 4 bytes a character at most, and the '\0' */
	char	label[4 * BADGE_LABEL_MAX + 1];
	char	color[8];	/* "#rgb" or "#rrggbb" */
};

/* Reads a query string (QUERY_STRING: "label=x&color=red", or NULL):
 * label and color, %-decoded ('+' is a space), each at most once; other
 * parameters are ignored (a cache-busting "?v=2" passes). Returns 0, or
 * -1 and sets *rule to the rule broken (BADGE_*_RULE). */
int	badge_params_parse(const char *query, struct badge_params *p,
	    const char **rule);

/* The width in pixels of text (UTF-8) in DejaVu Sans at 11 px: the sum
 * of its characters' advance widths, rounded up to a whole pixel. */
unsigned int badge_text_width(const char *text);

/* Writes the badge, "label | value" on the color, into buf (size
 * bytes), '\0'-terminated. label and value are text (escaped here).
 * Returns the SVG's length, or 0 if it does not fit. */
size_t	badge_render(char *buf, size_t size, const char *label,
	    const char *value, const char *color);

/* The strong entity-tag of an answer's body: "\"b" + 16 hex digits +
 * "\"" (19 characters and the '\0'). */
#define BADGE_ETAG_SIZE	20
void	badge_etag(const char *body, size_t len, char etag[BADGE_ETAG_SIZE]);

/* 1 if an If-None-Match header's value (or NULL) matches etag, by the
 * weak comparison RFC 9110 asks of it ("*", or one of the list, W/ or
 * not), else 0. */
int	badge_etag_matches(const char *if_none_match, const char *etag);

#endif
