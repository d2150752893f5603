/* tally - fuzzes ip_parse: any bytes, as an X-Forwarded-For entry or a
 * REMOTE_ADDR. An address it accepts formats to canonical text that
 * parses back to the same address. */
#include "fuzz.h"

#include <sys/socket.h>

#include "clientip.h"

static const unsigned char v4mapped[12] =
    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void
check_address(const struct ipaddr *ip)
{
	struct ipaddr	again;
	char		text[IP_TEXT_MAX];
	size_t		i;

	assert(ip->family == AF_INET || ip->family == AF_INET6);
	if (ip->family == AF_INET)
		for (i = 4; i < sizeof(ip->bytes); i++)
			assert(ip->bytes[i] == 0);
	else
		assert(memcmp(ip->bytes, v4mapped, sizeof(v4mapped)) != 0);
	ip_format(ip, text);
	assert(text[0] != '\0');
	assert(strspn(text, "0123456789abcdef.:") == strlen(text));
	assert(ip_parse(text, strlen(text), &again) == 0);
	assert(memcmp(ip, &again, sizeof(again)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipaddr	 ip;
	char		*s;

	/* Exactly size bytes: anything read past them is a bug. */
	if (ip_parse((const char *)data, size, &ip) == 0)
		check_address(&ip);
	s = fuzz_string(data, size);
	if (ip_parse(s, strlen(s), &ip) == 0)
		check_address(&ip);
	free(s);
	return 0;
}
