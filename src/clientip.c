/* tally - clientip: trusted-proxy CIDR lists and the X-Forwarded-For walk. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clientip.h"

static const unsigned char v4mapped_prefix[12] =
    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && is_blank(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_blank((*s)[*len - 1]))
		(*len)--;
}

static int
all_digits(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > 5)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int
ip_parse(const char *s, size_t len, struct ipaddr *out)
{
	char		 buf[XFF_ENTRY_MAX + 1];
	const char	*colon, *pct, *end;

	trim(&s, &len);
	if (len == 0 || len > XFF_ENTRY_MAX)
		return -1;
	if (s[0] == '[') {		/* "[v6]" or "[v6]:port" */
		end = memchr(s, ']', len);
		if (end == NULL)
			return -1;
		if ((size_t)(end - s) + 1 != len &&
		    (end[1] != ':' || !all_digits(end + 2,
		    len - (size_t)(end - s) - 2)))
			return -1;
		len = (size_t)(end - s) - 1;
		s++;
	} else if ((colon = memchr(s, ':', len)) != NULL &&
	    memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
		/* exactly one colon: "v4:port" */
		if (!all_digits(colon + 1, len - (size_t)(colon - s) - 1))
			return -1;
		len = (size_t)(colon - s);
	}
	if ((pct = memchr(s, '%', len)) != NULL)	/* zone id */
		len = (size_t)(pct - s);
	if (len == 0)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->bytes) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->bytes) == 1) {
		out->family = AF_INET6;
		if (memcmp(out->bytes, v4mapped_prefix, 12) == 0) {
			memmove(out->bytes, out->bytes + 12, 4);
			memset(out->bytes + 4, 0, 12);
			out->family = AF_INET;
		}
		return 0;
	}
	return -1;
}

void
ip_format(const struct ipaddr *ip, char *buf)
{
	if (inet_ntop(ip->family, ip->bytes, buf, IP_TEXT_MAX) == NULL)
		buf[0] = '\0';
}

static int
cidr_parse(const char *s, size_t len, struct cidr *out)
{
	const char	*slash = memchr(s, '/', len);
	size_t		 addrlen = slash == NULL ? len : (size_t)(slash - s);
	unsigned int	 max, prefix = 0, i, bits;
	size_t		 j;

	if (ip_parse(s, addrlen, &out->net) != 0)
		return -1;
	max = out->net.family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		out->prefix = max;
		return 0;
	}
	if (len - addrlen - 1 == 0 || len - addrlen - 1 > 3)
		return -1;
	for (j = addrlen + 1; j < len; j++) {
		if (s[j] < '0' || s[j] > '9')
			return -1;
		prefix = prefix * 10 + (unsigned int)(s[j] - '0');
	}
	if (prefix > max)
		return -1;
	out->prefix = prefix;
	/* Clear host bits so matching compares networks only. */
	for (i = 0; i < max / 8; i++) {
		bits = prefix > i * 8 ? prefix - i * 8 : 0;
		if (bits < 8)
			out->net.bytes[i] &= (unsigned char)(0xff00 >> bits);
	}
	return 0;
}

int
cidr_list_parse(const char *s, struct cidr_list *out, char *err, size_t errlen)
{
	const char	*p, *comma;
	size_t		 n = 1, len;
	struct cidr	 c;

	out->items = NULL;
	out->len = 0;
	if (s == NULL)
		return 0;
	for (p = s; *p != '\0'; p++)
		if (*p == ',')
			n++;
	if ((out->items = calloc(n, sizeof(*out->items))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (p = s; ; p = comma + 1) {
		comma = strchr(p, ',');
		len = comma == NULL ? strlen(p) : (size_t)(comma - p);
		trim(&p, &len);
		if (len > 0) {
			if (cidr_parse(p, len, &c) != 0) {
				snprintf(err, errlen, "not an address or CIDR: "
				    "\"%.*s\"", (int)(len > 64 ? 64 : len), p);
				cidr_list_free(out);
				return -1;
			}
			out->items[out->len++] = c;
		}
		if (comma == NULL)
			break;
	}
	return 0;
}

void
cidr_list_free(struct cidr_list *list)
{
	free(list->items);
	list->items = NULL;
	list->len = 0;
}

static int
cidr_match(const struct cidr *c, const struct ipaddr *ip)
{
	unsigned int	full = c->prefix / 8, rest = c->prefix % 8;
	unsigned char	mask;

	if (c->net.family != ip->family)
		return 0;
	if (memcmp(c->net.bytes, ip->bytes, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff00 >> rest);
	return (c->net.bytes[full] & mask) == (ip->bytes[full] & mask);
}

int
cidr_list_match(const struct cidr_list *list, const struct ipaddr *ip)
{
	size_t	i;

	for (i = 0; i < list->len; i++)
		if (cidr_match(&list->items[i], ip))
			return 1;
	return 0;
}

/*
 * Walks the header from its right end, one entry per call: sets *entry and
 * *len to the entry before *end and moves *end to its comma. Returns 0 when
 * nothing is left. Empty entries ("a,,b") are skipped as RFC 9110 lists say.
 */
static int
xff_prev(const char *start, const char **end, const char **entry, size_t *len)
{
	const char	*p;

	while (*end > start) {
		for (p = *end; p > start && p[-1] != ','; p--)
			;
		*entry = p;
		*len = (size_t)(*end - p);
		*end = p > start ? p - 1 : start;
		trim(entry, len);
		if (*len > 0)
			return 1;
	}
	return 0;
}

void
clientip_resolve(const struct cidr_list *trusted, const char *remote_addr,
    const char *xff, struct client_info *out)
{
	struct ipaddr	 ip;
	const char	*end, *entry;
	size_t		 len, n = 0, i;
	int		 walking, valid;
	char		 tmp[PROXY_CHAIN_MAX][IP_TEXT_MAX];

	memset(out, 0, sizeof(*out));
	walking = 0;
	if (remote_addr != NULL &&
	    ip_parse(remote_addr, strlen(remote_addr), &ip) == 0) {
		ip_format(&ip, out->user_ip);
		walking = cidr_list_match(trusted, &ip);
	}
	if (xff == NULL)
		return;
	end = xff + strlen(xff);
	while (xff_prev(xff, &end, &entry, &len)) {
		valid = ip_parse(entry, len, &ip) == 0;
		if (n < PROXY_CHAIN_MAX) {
			if (valid)
				ip_format(&ip, tmp[n]);
			else
				snprintf(tmp[n], IP_TEXT_MAX, "%s",
				    PROXY_CHAIN_INVALID);
			n++;
		} else
			out->chain_truncated = 1;
		if (walking) {
			if (!valid)
				walking = 0;	/* keep the last trusted hop */
			else {
				ip_format(&ip, out->user_ip);
				walking = cidr_list_match(trusted, &ip);
			}
		}
		if (out->chain_truncated && !walking)
			break;
	}
	out->chain_len = n;
	for (i = 0; i < n; i++)
		memcpy(out->chain[i], tmp[n - 1 - i], IP_TEXT_MAX);
}
