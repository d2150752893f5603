/* tally - fuzzes cidr_list_parse, the TALLY_TRUSTED_PROXIES parser. A list
 * it accepts holds networks with their host bits clear, each matching its
 * own address; a list it refuses is empty, with a bounded message. */
#include "fuzz.h"

#include <sys/socket.h>

#include "clientip.h"

static void
check_item(const struct cidr_list *l, const struct cidr *c)
{
	unsigned int	max, i, bits;

	assert(c->net.family == AF_INET || c->net.family == AF_INET6);
	max = c->net.family == AF_INET ? 32 : 128;
	assert(c->prefix <= max);
	for (i = 0; i < max / 8; i++) {
		bits = c->prefix > i * 8 ? c->prefix - i * 8 : 0;
		if (bits < 8)
			assert((c->net.bytes[i] & (0xff >> bits)) == 0);
	}
	assert(cidr_list_match(l, &c->net));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cidr_list	 l;
	char			 err[40];
	char			*s = fuzz_string(data, size), *p;
	size_t			 i, commas = 0;

	for (p = s; *p != '\0'; p++)
		commas += *p == ',';
	memset(err, 'x', sizeof(err));
	if (cidr_list_parse(s, &l, err, sizeof(err)) == 0) {
		assert(l.len <= commas + 1);
		for (i = 0; i < l.len; i++)
			check_item(&l, &l.items[i]);
	} else {
		assert(l.items == NULL && l.len == 0);
		assert(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
	}
	cidr_list_free(&l);
	free(s);
	return 0;
}
