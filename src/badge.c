/* tally - badge: a counter as an SVG image. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "badge.h"

/*
 * Advance widths of DejaVu Sans (Book, version 2.37, the font of
 * Debian's fonts-dejavu-core), in font units (2048 to the em), read from
 * the font's hmtx table through its cmap: U+0020 to U+007E, then U+00A0
 * to U+00FF. Other characters count 1 em (wide enough for most
 * scripts), but combining marks (U+0300 to U+036F), which count 0. At
 * 11 px a text is sum * 11 / 2048 pixels wide, rounded up. The SVG names
 * DejaVu Sans first, then Verdana (a little wider); its textLength fits
 * the text to the width computed here in whatever font renders it.
 */
static const unsigned short adv_ascii[0x7f - 0x20] = {
	651, 821, 942, 1716, 1303, 1946, 1597, 563,		/*  !"#$%&' */
	799, 799, 1024, 1716, 651, 739, 651, 690,		/* ()*+,-./ */
	1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303,		/* 01234567 */
	1303, 1303, 690, 690, 1716, 1716, 1716, 1087,		/* 89:;<=>? */
	2048, 1401, 1405, 1430, 1577, 1294, 1178, 1587,		/* @ABCDEFG */
	1540, 604, 604, 1343, 1141, 1767, 1532, 1612,		/* HIJKLMNO */
	1235, 1612, 1423, 1300, 1251, 1499, 1401, 2025,		/* PQRSTUVW */
	1403, 1251, 1403, 799, 690, 799, 1716, 1024,		/* XYZ[\]^_ */
	1024, 1255, 1300, 1126, 1300, 1260, 721, 1300,		/* `abcdefg */
	1298, 569, 569, 1186, 569, 1995, 1298, 1253,		/* hijklmno */
	1300, 1300, 842, 1067, 803, 1298, 1212, 1675,		/* pqrstuvw */
	1212, 1212, 1075, 1303, 690, 1303, 1716,		/* xyz{|}~ */
};
static const unsigned short adv_latin1[0x100 - 0xa0] = {
	651, 821, 1303, 1303, 1303, 1303, 690, 1024,		/* U+00A0 */
	1024, 2048, 965, 1253, 1716, 739, 2048, 1024,
	1024, 1716, 821, 821, 1024, 1303, 1303, 651,		/* U+00B0 */
	1024, 821, 965, 1253, 1985, 1985, 1985, 1087,
	1401, 1401, 1401, 1401, 1401, 1401, 1995, 1430,		/* U+00C0 */
	1294, 1294, 1294, 1294, 604, 604, 604, 604,
	1587, 1532, 1612, 1612, 1612, 1612, 1612, 1716,		/* U+00D0 */
	1612, 1499, 1499, 1499, 1499, 1251, 1239, 1290,
	1255, 1255, 1255, 1255, 1255, 1255, 2011, 1126,		/* U+00E0 */
	1260, 1260, 1260, 1260, 569, 569, 569, 569,
	1253, 1298, 1253, 1253, 1253, 1253, 1253, 1716,		/* U+00F0 */
	1253, 1298, 1298, 1298, 1298, 1212, 1300, 1212,
};
#define UNITS_PER_EM	2048
#define FONT_PX		11

/* Decodes the UTF-8 character at s into *cp; returns its length, or 0
 * if s holds none (overlong, a surrogate, past U+10FFFF, cut). */
static size_t
utf8_next(const unsigned char *s, unsigned long *cp)
{
	size_t		n, i;
	unsigned long	c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, c = s[0] & 0x1f, min = 0x80;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, c = s[0] & 0x0f, min = 0x800;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, c = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static unsigned int
advance(unsigned long cp)
{
	if (cp >= 0x20 && cp < 0x7f)
		return adv_ascii[cp - 0x20];
	if (cp >= 0xa0 && cp <= 0xff)
		return adv_latin1[cp - 0xa0];
	if (cp >= 0x300 && cp <= 0x36f)
		return 0;
	return UNITS_PER_EM;
}

unsigned int
badge_text_width(const char *text)
{
	const unsigned char	*s = (const unsigned char *)text;
	unsigned long		 units = 0, cp;
	size_t			 n;

	while (*s != '\0') {
		if ((n = utf8_next(s, &cp)) == 0)
			n = 1, cp = 0xfffd;	/* checked text has none */
		units += advance(cp);
		s += n;
	}
	return (unsigned int)((units * FONT_PX + UNITS_PER_EM - 1) /
	    UNITS_PER_EM);
}

/* 0 if s is 1 to BADGE_LABEL_MAX characters of UTF-8 that XML allows
 * and that are no control characters, else -1. */
static int
label_check(const char *label)
{
	const unsigned char	*s = (const unsigned char *)label;
	unsigned long		 cp;
	size_t			 n, chars = 0;

	for (; *s != '\0'; s += n) {
		if ((n = utf8_next(s, &cp)) == 0 || cp < 0x20 ||
		    (cp >= 0x7f && cp <= 0x9f) || cp == 0xfffe ||
		    cp == 0xffff || ++chars > BADGE_LABEL_MAX)
			return -1;
	}
	return chars > 0 ? 0 : -1;
}

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The colours a name may give (shields.io's). */
static const struct {
	const char	*name, *hex;
} color_names[] = {
	{ "brightgreen", "#4c1" }, { "green", "#97ca00" },
	{ "yellowgreen", "#a4a61d" }, { "yellow", "#dfb317" },
	{ "orange", "#fe7d37" }, { "red", "#e05d44" },
	{ "blue", "#007ec6" }, { "lightgrey", "#9f9f9f" },
	{ "grey", "#555" },
};

/* Sets out ("#rgb", "#rrggbb") from a name or hex digits; 0, or -1. */
static int
color_parse(const char *s, char out[8])
{
	size_t	i, n;

	for (i = 0; i < sizeof(color_names) / sizeof(color_names[0]); i++)
		if (strcmp(s, color_names[i].name) == 0) {
			(void)snprintf(out, 8, "%s", color_names[i].hex);
			return 0;
		}
	n = strlen(s);
	if (n != 3 && n != 6)
		return -1;
	out[0] = '#';
	for (i = 0; i < n; i++) {
		if (hex_digit((unsigned char)s[i]) < 0)
			return -1;
		out[i + 1] = (char)(s[i] | 0x20);	/* lower case */
	}
	out[n + 1] = '\0';
	return 0;
}

/* %-decodes s[0..len) into out (size bytes), '+' as a space. Returns
 * 0; -1 for a bad escape; -2 if it does not fit or holds a '\0' (%00),
 * which no parameter may. */
static int
decode(const char *s, size_t len, char *out, size_t size)
{
	size_t	i, o = 0;
	int	hi, lo;
	char	c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (len - i < 3 ||
			    (hi = hex_digit((unsigned char)s[i + 1])) < 0 ||
			    (lo = hex_digit((unsigned char)s[i + 2])) < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= size || c == '\0')
			return -2;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int
badge_params_parse(const char *query, struct badge_params *p,
    const char **rule)
{
	const char	*s, *eq, *end;
	char		 key[8], value[sizeof(p->label)];
	int		 is_label, seen_label = 0, seen_color = 0, rc;

	(void)snprintf(p->label, sizeof(p->label), "%s", BADGE_LABEL_DEFAULT);
	(void)color_parse(BADGE_COLOR_DEFAULT, p->color);
	for (s = query; s != NULL && *s != '\0'; s = *end != '\0' ? end + 1 :
	    end) {
		end = s + strcspn(s, "&");
		eq = memchr(s, '=', (size_t)(end - s));
		if (decode(s, (size_t)((eq != NULL ? eq : end) - s), key,
		    sizeof(key)) != 0 || (strcmp(key, "label") != 0 &&
		    strcmp(key, "color") != 0))
			continue;	/* not one of ours: ignored */
		is_label = key[0] == 'l';
		if (eq == NULL || (is_label ? seen_label++ : seen_color++) > 0) {
			*rule = BADGE_QUERY_RULE;
			return -1;
		}
		rc = decode(eq + 1, (size_t)(end - eq - 1), value,
		    sizeof(value));
		if (rc == -1) {
			*rule = BADGE_QUERY_RULE;
			return -1;
		}
		if (is_label) {
			if (rc != 0 || label_check(value) != 0) {
				*rule = BADGE_LABEL_RULE;
				return -1;
			}
			(void)snprintf(p->label, sizeof(p->label), "%s", value);
		} else if (rc != 0 || color_parse(value[0] == '#' ? value + 1 :
		    value, p->color) != 0) {
			*rule = BADGE_COLOR_RULE;
			return -1;
		}
	}
	return 0;
}

/* Appends text to buf (size bytes, holding *len), escaped for XML text
 * and attribute values alike; returns -1 if it does not fit. */
static int
put_escaped(char *buf, size_t size, size_t *len, const char *text)
{
	const char	*rep;
	size_t		 n;

	for (; *text != '\0'; text++) {
		switch (*text) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default: rep = NULL; break;
		}
		n = rep != NULL ? strlen(rep) : 1;
		if (*len + n >= size)
			return -1;
		memcpy(buf + *len, rep != NULL ? rep : text, n);
		*len += n;
	}
	buf[*len] = '\0';
	return 0;
}

/* Appends printf's output to buf; -1 if it does not fit. */
static int
put(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
put(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

/* 1 if text on colour c ("#rgb", "#rrggbb") reads better dark than
 * white: its perceived brightness (ITU-R BT.601 weights) is high. */
static int
light_color(const char *c)
{
	int	r, g, b;

	if (strlen(c) == 4) {
		r = hex_digit(c[1]) * 17;
		g = hex_digit(c[2]) * 17;
		b = hex_digit(c[3]) * 17;
	} else {
		r = hex_digit(c[1]) * 16 + hex_digit(c[2]);
		g = hex_digit(c[3]) * 16 + hex_digit(c[4]);
		b = hex_digit(c[5]) * 16 + hex_digit(c[6]);
	}
	return r * 299 + g * 587 + b * 114 > 180 * 1000;
}

/* One section's text: its shadow, then the text, centred on x (tenths
 * of a pixel), fitted to width pixels. */
static int
put_text(char *buf, size_t size, size_t *len, unsigned int x10,
    unsigned int width, const char *text, int dark)
{
	return put(buf, size, len, "<text x=\"%u.%u\" y=\"15\" fill=\"%s\" "
	    "fill-opacity=\".3\" textLength=\"%u\">", x10 / 10, x10 % 10,
	    dark ? "#fff" : "#010101", width) ||
	    put_escaped(buf, size, len, text) ||
	    put(buf, size, len, "</text><text x=\"%u.%u\" y=\"14\" fill=\"%s\" "
	    "textLength=\"%u\">", x10 / 10, x10 % 10, dark ? "#333" : "#fff",
	    width) ||
	    put_escaped(buf, size, len, text) ||
	    put(buf, size, len, "</text>") ? -1 : 0;
}

/* Pixels each side of a section's text. */
#define PAD	5

size_t
badge_render(char *buf, size_t size, const char *label, const char *value,
    const char *color)
{
	unsigned int	lt = badge_text_width(label), vt = badge_text_width(value);
	unsigned int	lw = lt + 2 * PAD, vw = vt + 2 * PAD, w = lw + vw;
	size_t		len = 0;

	if (size == 0)
		return 0;
	buf[0] = '\0';
	/* The accessible name, then the shapes, then the texts. */
	if (put(buf, size, &len, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%u\" height=\"20\" role=\"img\" aria-label=\"", w) ||
	    put_escaped(buf, size, &len, label) ||
	    put(buf, size, &len, ": ") ||
	    put_escaped(buf, size, &len, value) ||
	    put(buf, size, &len, "\"><title>") ||
	    put_escaped(buf, size, &len, label) ||
	    put(buf, size, &len, ": ") ||
	    put_escaped(buf, size, &len, value) ||
	    put(buf, size, &len, "</title>"
	    "<linearGradient id=\"s\" x2=\"0\" y2=\"100%%\">"
	    "<stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/>"
	    "<stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>"
	    "<clipPath id=\"r\"><rect width=\"%u\" height=\"20\" rx=\"3\" "
	    "fill=\"#fff\"/></clipPath>"
	    "<g clip-path=\"url(#r)\"><rect width=\"%u\" height=\"20\" "
	    "fill=\"#555\"/><rect x=\"%u\" width=\"%u\" height=\"20\" "
	    "fill=\"%s\"/><rect width=\"%u\" height=\"20\" fill=\"url(#s)\"/>"
	    "</g><g text-anchor=\"middle\" font-family=\"DejaVu Sans,Verdana,"
	    "Geneva,sans-serif\" font-size=\"%u\" "
	    "text-rendering=\"geometricPrecision\">",
	    w, lw, lw, vw, color, w, FONT_PX) ||
	    put_text(buf, size, &len, lw * 5, lt, label, 0) ||
	    put_text(buf, size, &len, lw * 10 + vw * 5, vt, value,
	    light_color(color)) ||
	    put(buf, size, &len, "</g></svg>\n"))
		return 0;
	return len;
}

void
badge_etag(const char *body, size_t len, char etag[BADGE_ETAG_SIZE])
{
	/* FNV-1a, 64 bits */
	uint64_t	h = 0xcbf29ce484222325ULL;
	size_t		i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)body[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(etag, BADGE_ETAG_SIZE, "\"b%016llx\"", (unsigned long long)h);
}

int
badge_etag_matches(const char *if_none_match, const char *etag)
{
	const char	*s = if_none_match, *end;
	size_t		 n = strlen(etag);

	if (s == NULL)
		return 0;
	for (;;) {
		s += strspn(s, " \t,");
		if (*s == '\0')
			return 0;
		if (*s == '*')
			return 1;
		if (strncmp(s, "W/", 2) == 0)
			s += 2;
		end = s + strcspn(s, ",");
		while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - s) == n && strncmp(s, etag, n) == 0)
			return 1;
		s += strcspn(s, ",");
	}
}
