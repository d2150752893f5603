/* tally - fuzzes clientip_resolve, the X-Forwarded-For walk behind
 * /time's user_ip and proxy_chain. Input: the trusted CIDR list, a line
 * break, REMOTE_ADDR, a line break, the X-Forwarded-For value. The
 * answer is compared with a plain reference walk written from the
 * contract in clientip.h, and every text in it must be JSON-safe. */
#include "fuzz.h"

#include <stdio.h>

#include "clientip.h"

struct span {
	const char	*s;
	size_t		 len;
};

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The non-empty, trimmed comma-separated entries, left to right. */
static struct span *
split_entries(const char *xff, size_t *n)
{
	struct span	*v;
	const char	*p, *start;
	size_t		 cap = 1;

	for (p = xff; *p != '\0'; p++)
		cap += *p == ',';
	v = calloc(cap, sizeof(*v));
	assert(v != NULL);
	*n = 0;
	for (start = p = xff; ; p++) {
		if (*p != ',' && *p != '\0')
			continue;
		while (start < p && is_blank(*start))
			start++;
		if (p > start) {
			v[*n].s = start;
			v[*n].len = (size_t)(p - start);
			while (is_blank(v[*n].s[v[*n].len - 1]))
				v[*n].len--;
			(*n)++;
		}
		if (*p == '\0')
			break;
		start = p + 1;
	}
	return v;
}

static void
entry_text(const struct span *e, char *out)
{
	struct ipaddr	ip;

	if (ip_parse(e->s, e->len, &ip) == 0)
		ip_format(&ip, out);
	else
		snprintf(out, IP_TEXT_MAX, "%s", PROXY_CHAIN_INVALID);
}

static void
reference(const struct cidr_list *t, const char *remote, const char *xff,
    struct client_info *want)
{
	struct span	*e = NULL;
	struct ipaddr	 ip;
	size_t		 n = 0, first, i;
	int		 walking = 0;

	memset(want, 0, sizeof(*want));
	if (remote != NULL && ip_parse(remote, strlen(remote), &ip) == 0) {
		ip_format(&ip, want->user_ip);
		walking = cidr_list_match(t, &ip);
	}
	if (xff == NULL)
		return;
	e = split_entries(xff, &n);
	first = n > PROXY_CHAIN_MAX ? n - PROXY_CHAIN_MAX : 0;
	want->chain_truncated = n > PROXY_CHAIN_MAX;
	want->chain_len = n - first;
	for (i = first; i < n; i++)
		entry_text(&e[i], want->chain[i - first]);
	for (i = n; walking && i > 0; i--) {
		if (ip_parse(e[i - 1].s, e[i - 1].len, &ip) != 0)
			break;
		ip_format(&ip, want->user_ip);
		walking = cidr_list_match(t, &ip);
	}
	free(e);
}

static void
check_safe(const char *s)
{
	assert(memchr(s, '\0', IP_TEXT_MAX) != NULL);
	assert(strcmp(s, PROXY_CHAIN_INVALID) == 0 ||
	    strspn(s, "0123456789abcdef.:") == strlen(s));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cidr_list	 trusted;
	struct client_info	 got, want;
	char			 err[128];
	char			*in = fuzz_string(data, size), *remote, *xff;
	size_t			 i;

	remote = fuzz_next_line(in);
	xff = remote != NULL ? fuzz_next_line(remote) : NULL;
	if (cidr_list_parse(in, &trusted, err, sizeof(err)) != 0)
		assert(trusted.len == 0);
	clientip_resolve(&trusted, remote, xff, &got);
	reference(&trusted, remote, xff, &want);

	check_safe(got.user_ip);
	assert(strcmp(got.user_ip, want.user_ip) == 0);
	assert(got.chain_len == want.chain_len);
	assert(got.chain_len <= PROXY_CHAIN_MAX);
	assert(got.chain_truncated == want.chain_truncated);
	for (i = 0; i < got.chain_len; i++) {
		check_safe(got.chain[i]);
		assert(strcmp(got.chain[i], want.chain[i]) == 0);
	}
	cidr_list_free(&trusted);
	free(in);
	return 0;
}
