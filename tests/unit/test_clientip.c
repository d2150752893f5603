/* tally - unit tests for clientip: address parsing, trusted-proxy CIDR
 * lists and the X-Forwarded-For walk that finds user_ip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "clientip.h"

struct ip_case {
	const char	*in;
	const char	*want;	/* canonical text, or NULL: not an address */
};

static const struct ip_case ip_cases[] = {
	{ "192.0.2.1", "192.0.2.1" },
	{ "  192.0.2.1\t", "192.0.2.1" },
	{ "192.0.2.1:8080", "192.0.2.1" },
	{ "0.0.0.0", "0.0.0.0" },
	{ "255.255.255.255", "255.255.255.255" },
	{ "2001:db8::1", "2001:db8::1" },
	{ "2001:DB8:0:0:0:0:0:1", "2001:db8::1" },
	{ "::1", "::1" },
	{ "::", "::" },
	{ "[2001:db8::1]", "2001:db8::1" },
	{ "[2001:db8::1]:443", "2001:db8::1" },
	{ " [::1]:1 ", "::1" },
	{ "fe80::1%eth0", "fe80::1" },
	{ "[fe80::1%eth0]:80", "fe80::1" },
	{ "::ffff:192.0.2.7", "192.0.2.7" },
	{ "::FFFF:c000:207", "192.0.2.7" },
	{ "[::ffff:192.0.2.7]:80", "192.0.2.7" },
	{ "::192.0.2.1", "::192.0.2.1" },	/* not v4-mapped: stays IPv6 */
	{ "", NULL },
	{ "   ", NULL },
	{ "unknown", NULL },
	{ "evil.example", NULL },
	{ "1.2.3", NULL },
	{ "1.2.3.4.5", NULL },
	{ "256.1.1.1", NULL },
	{ "01.2.3.4", NULL },
	{ "0x7f.0.0.1", NULL },
	{ "1.2.3.4:", NULL },
	{ "1.2.3.4:http", NULL },
	{ "1.2.3.4:123456", NULL },
	{ "1.2.3.4/24", NULL },
	{ "1.2.3.4 5.6.7.8", NULL },
	{ "1.2.3.4\r", NULL },
	{ "1.2.3.4\n", NULL },
	{ "\x01" "1.2.3.4", NULL },
	{ "\xff\xfe", NULL },
	{ "[2001:db8::1", NULL },
	{ "2001:db8::1]", NULL },
	{ "[2001:db8::1]:", NULL },
	{ "[2001:db8::1]x", NULL },
	{ "[2001:db8::1]:x80", NULL },
	{ "[2001:db8::1]]", NULL },
	{ "[]", NULL },
	{ "[]:80", NULL },
	{ "%eth0", NULL },
	{ "[%eth0]", NULL },
	{ "2001:db8::g", NULL },
	{ ":::", NULL },
	{ "1:2:3:4:5:6:7:8:9", NULL },
	{ "::ffff:1.2.3.4.5", NULL },
};

static void
test_ip_parse(void)
{
	struct ipaddr	ip;
	char		buf[IP_TEXT_MAX];
	size_t		i;
	int		rc;

	for (i = 0; i < sizeof(ip_cases) / sizeof(ip_cases[0]); i++) {
		check_case("ip_parse(\"%s\")", ip_cases[i].in);
		rc = ip_parse(ip_cases[i].in, strlen(ip_cases[i].in), &ip);
		CHECK_INT(rc == 0, ip_cases[i].want != NULL);
		if (rc != 0)
			continue;
		ip_format(&ip, buf);
		CHECK_STR(buf, ip_cases[i].want);
	}
}

static void
test_ip_parse_family(void)
{
	struct ipaddr	ip;

	CHECK_INT(ip_parse("::ffff:10.1.2.3", 15, &ip), 0);
	CHECK_INT(ip.family, AF_INET);
	CHECK(ip.bytes[0] == 10 && ip.bytes[3] == 3);
	CHECK_INT(ip_parse("fd00::1", 7, &ip), 0);
	CHECK_INT(ip.family, AF_INET6);
}

/* Only len bytes are read: the rest of the string does not count. */
static void
test_ip_parse_length(void)
{
	struct ipaddr	 ip;
	char		 in[XFF_ENTRY_MAX + 2];
	char		 buf[IP_TEXT_MAX];

	CHECK_INT(ip_parse("10.0.0.1, 10.0.0.2", 8, &ip), 0);
	ip_format(&ip, buf);
	CHECK_STR(buf, "10.0.0.1");
	CHECK_INT(ip_parse("10.0.0.1", 0, &ip), -1);

	/* An entry of XFF_ENTRY_MAX bytes is read, a longer one is not. */
	memset(in, 'a', sizeof(in));
	memcpy(in, "fe80::1%", 8);
	in[XFF_ENTRY_MAX] = '\0';
	CHECK_INT(ip_parse(in, XFF_ENTRY_MAX, &ip), 0);
	in[XFF_ENTRY_MAX] = 'a';
	in[XFF_ENTRY_MAX + 1] = '\0';
	CHECK_INT(ip_parse(in, XFF_ENTRY_MAX + 1, &ip), -1);
}

static struct cidr_list
list_of(const char *s)
{
	struct cidr_list	l;
	char			err[128];
	int			rc = cidr_list_parse(s, &l, err, sizeof(err));

	check_case("cidr_list_parse(\"%s\"): %s", s, rc == 0 ? "ok" : err);
	CHECK_INT(rc, 0);
	return l;
}

static int
matches(const struct cidr_list *l, const char *addr)
{
	struct ipaddr	ip;

	CHECK_INT(ip_parse(addr, strlen(addr), &ip), 0);
	return cidr_list_match(l, &ip);
}

static void
expect_net(const struct cidr_list *l, size_t i, const char *net,
    unsigned int prefix)
{
	char	buf[IP_TEXT_MAX];

	check_case("item %zu", i);
	CHECK(i < l->len);
	ip_format(&l->items[i].net, buf);
	CHECK_STR(buf, net);
	CHECK_INT(l->items[i].prefix, prefix);
}

static void
test_cidr_list_parse(void)
{
	struct cidr_list	l;
	char			err[128];

	CHECK_INT(cidr_list_parse(NULL, &l, err, sizeof(err)), 0);
	CHECK_INT(l.len, 0);
	cidr_list_free(&l);
	l = list_of("");
	CHECK_INT(l.len, 0);
	cidr_list_free(&l);
	l = list_of(" , ,,\t, ");
	CHECK_INT(l.len, 0);
	cidr_list_free(&l);

	l = list_of("10.0.0.0/8, 192.168.1.1,fd00::/8 ,  ::1,[2001:db8::]/32");
	CHECK_INT(l.len, 5);
	expect_net(&l, 0, "10.0.0.0", 8);
	expect_net(&l, 1, "192.168.1.1", 32);
	expect_net(&l, 2, "fd00::", 8);
	expect_net(&l, 3, "::1", 128);
	expect_net(&l, 4, "2001:db8::", 32);
	cidr_list_free(&l);
	CHECK(l.items == NULL && l.len == 0);

	/* Host bits are cleared, so the network is what is compared. */
	l = list_of("10.1.2.3/8, 192.168.1.255/23, 2001:db8:abcd::1/33, "
	    "1.2.3.4/0, ::ffff:172.16.5.4/12");
	expect_net(&l, 0, "10.0.0.0", 8);
	expect_net(&l, 1, "192.168.0.0", 23);
	expect_net(&l, 2, "2001:db8:8000::", 33);
	expect_net(&l, 3, "0.0.0.0", 0);
	expect_net(&l, 4, "172.16.0.0", 12);
	cidr_list_free(&l);
}

static void
expect_list_error(const char *s, const char *shown)
{
	struct cidr_list	l;
	char			err[128] = "";

	check_case("cidr_list_parse(\"%s\")", s);
	CHECK_INT(cidr_list_parse(s, &l, err, sizeof(err)), -1);
	CHECK(l.items == NULL && l.len == 0);
	CHECK_HAS(err, shown);
}

static void
test_cidr_list_errors(void)
{
	struct cidr_list	 l;
	char			 err[8], long_entry[300];

	expect_list_error("10.0.0.0/33", "10.0.0.0/33");
	expect_list_error("::/129", "::/129");
	expect_list_error("10.0.0.0/", "10.0.0.0/");
	expect_list_error("10.0.0.0/-1", "10.0.0.0/-1");
	expect_list_error("10.0.0.0/+8", "10.0.0.0/+8");
	expect_list_error("10.0.0.0/8/8", "10.0.0.0/8/8");
	expect_list_error("10.0.0.0/0008", "10.0.0.0/0008");
	expect_list_error("10.0.0.0/ 8", "10.0.0.0/ 8");
	expect_list_error("/8", "/8");
	expect_list_error("garbage", "\"garbage\"");
	expect_list_error("10.0.0.0/8, 192.168.0.0/16, nope", "\"nope\"");
	expect_list_error("10.0.0.0/8;192.168.0.0/16", "10.0.0.0/8;");

	/* A long bad entry is shown cut short; a short buffer stays a
	 * string. */
	memset(long_entry, 'x', sizeof(long_entry) - 1);
	long_entry[sizeof(long_entry) - 1] = '\0';
	expect_list_error(long_entry, "xxxxxxxx");
	CHECK_INT(cidr_list_parse(long_entry, &l, err, sizeof(err)), -1);
	CHECK_INT(strlen(err), sizeof(err) - 1);
}

static void
test_cidr_list_match(void)
{
	struct cidr_list	l;

	l = list_of("10.0.0.0/8, 192.168.0.0/23, fd00::/8, 2001:db8::/127, "
	    "198.51.100.7");
	CHECK(matches(&l, "10.0.0.0"));
	CHECK(matches(&l, "10.255.255.255"));
	CHECK(!matches(&l, "11.0.0.0"));
	CHECK(!matches(&l, "9.255.255.255"));
	CHECK(matches(&l, "192.168.1.200"));
	CHECK(!matches(&l, "192.168.2.0"));
	CHECK(matches(&l, "fdff::1"));
	CHECK(!matches(&l, "fe00::1"));
	CHECK(!matches(&l, "fc00::1"));
	CHECK(matches(&l, "2001:db8::1"));
	CHECK(!matches(&l, "2001:db8::2"));
	CHECK(matches(&l, "198.51.100.7"));
	CHECK(!matches(&l, "198.51.100.8"));
	/* v4-mapped IPv6 is the IPv4 address it maps. */
	CHECK(matches(&l, "::ffff:10.1.2.3"));
	CHECK(!matches(&l, "::10.1.2.3"));
	cidr_list_free(&l);

	/* /0 matches its own family only. */
	l = list_of("0.0.0.0/0");
	CHECK(matches(&l, "203.0.113.1"));
	CHECK(!matches(&l, "2001:db8::1"));
	cidr_list_free(&l);
	l = list_of("::/0");
	CHECK(matches(&l, "2001:db8::1"));
	CHECK(!matches(&l, "203.0.113.1"));
	cidr_list_free(&l);

	l = list_of("");
	CHECK(!matches(&l, "127.0.0.1"));
	cidr_list_free(&l);
}

static void
resolve(const char *trusted, const char *remote, const char *xff,
    struct client_info *ci)
{
	struct cidr_list	l = list_of(trusted);

	check_case("trusted \"%s\", peer %s, X-Forwarded-For \"%s\"",
	    trusted, remote, xff != NULL ? xff : "(none)");
	memset(ci, 0x55, sizeof(*ci));	/* no stale bytes may show */
	clientip_resolve(&l, remote, xff, ci);
	cidr_list_free(&l);
}

/* chain is a comma-separated list of the entries wanted, "" for none. */
static void
expect(const struct client_info *ci, const char *user_ip, const char *chain,
    int truncated)
{
	char	got[PROXY_CHAIN_MAX * (IP_TEXT_MAX + 1) + 1] = "";
	size_t	i, len = 0;

	for (i = 0; i < ci->chain_len && i < PROXY_CHAIN_MAX; i++)
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s",
		    i > 0 ? "," : "", ci->chain[i]);
	CHECK_STR(ci->user_ip, user_ip);
	CHECK_STR(got, chain);
	CHECK_INT(ci->chain_truncated, truncated);
}

static void
test_resolve_untrusted_peer(void)
{
	struct client_info	ci;

	resolve("", "203.0.113.7", NULL, &ci);
	expect(&ci, "203.0.113.7", "", 0);
	/* Nobody is trusted: X-Forwarded-For is shown, never believed. */
	resolve("", "192.0.2.1", "1.1.1.1", &ci);
	expect(&ci, "192.0.2.1", "1.1.1.1", 0);
	resolve("10.0.0.0/8", "192.0.2.1", "10.0.0.5", &ci);
	expect(&ci, "192.0.2.1", "10.0.0.5", 0);
	resolve("", "::ffff:192.0.2.1", "", &ci);
	expect(&ci, "192.0.2.1", "", 0);
	resolve("", "2001:DB8::7", NULL, &ci);
	expect(&ci, "2001:db8::7", "", 0);
}

static void
test_resolve_bad_peer(void)
{
	struct client_info	ci;

	resolve("0.0.0.0/0", NULL, "203.0.113.7", &ci);
	expect(&ci, "", "203.0.113.7", 0);
	resolve("0.0.0.0/0", "", "203.0.113.7", &ci);
	expect(&ci, "", "203.0.113.7", 0);
	resolve("0.0.0.0/0", "unix:/run/x.sock", "203.0.113.7", &ci);
	expect(&ci, "", "203.0.113.7", 0);
}

static void
test_resolve_trusted_walk(void)
{
	struct client_info	ci;
	const char		*t = "127.0.0.0/8, 10.0.0.0/8, fd00::/8";

	resolve(t, "10.0.0.1", "203.0.113.7, 10.0.0.2", &ci);
	expect(&ci, "203.0.113.7", "203.0.113.7,10.0.0.2", 0);
	/* Entries a client prepends are left of the first untrusted one. */
	resolve(t, "10.0.0.1", "1.1.1.1, 203.0.113.9, 10.0.0.2", &ci);
	expect(&ci, "203.0.113.9", "1.1.1.1,203.0.113.9,10.0.0.2", 0);
	/* Every hop trusted: the leftmost is the user. */
	resolve(t, "10.0.0.1", "10.9.9.9, 10.0.0.2", &ci);
	expect(&ci, "10.9.9.9", "10.9.9.9,10.0.0.2", 0);
	resolve(t, "::ffff:127.0.0.1", "198.51.100.4", &ci);
	expect(&ci, "198.51.100.4", "198.51.100.4", 0);
	resolve(t, "10.0.0.1", NULL, &ci);
	expect(&ci, "10.0.0.1", "", 0);
	resolve(t, "10.0.0.1", "", &ci);
	expect(&ci, "10.0.0.1", "", 0);
}

static void
test_resolve_invalid_stops_walk(void)
{
	struct client_info	ci;
	const char		*t = "10.0.0.0/8";

	resolve(t, "10.0.0.1", "evil, 10.0.0.2", &ci);
	expect(&ci, "10.0.0.2", "invalid,10.0.0.2", 0);
	resolve(t, "10.0.0.1", "203.0.113.7, evil", &ci);
	expect(&ci, "10.0.0.1", "203.0.113.7,invalid", 0);
	resolve(t, "10.0.0.1", "foo", &ci);
	expect(&ci, "10.0.0.1", "invalid", 0);
	resolve(t, "10.0.0.1", "203.0.113.7, 10.0.0.3:, 10.0.0.2", &ci);
	expect(&ci, "10.0.0.2", "203.0.113.7,invalid,10.0.0.2", 0);
}

static void
test_resolve_ipv6(void)
{
	struct client_info	ci;
	const char		*t = "fd00::/8, ::1";

	resolve(t, "::1", "[2001:db8::1]:443, [fd00::5]", &ci);
	expect(&ci, "2001:db8::1", "2001:db8::1,fd00::5", 0);
	resolve(t, "::1", "fe80::1%eth0, fd00:0:0:0:0:0:0:5%2", &ci);
	expect(&ci, "fe80::1", "fe80::1,fd00::5", 0);
	resolve(t, "[::1]:40000", "::ffff:203.0.113.7", &ci);
	expect(&ci, "203.0.113.7", "203.0.113.7", 0);
	resolve(t, "::1", "2001:db8::1]:443", &ci);
	expect(&ci, "::1", "invalid", 0);
}

static void
test_resolve_empty_entries(void)
{
	struct client_info	ci;

	resolve("10.0.0.0/8", "10.0.0.1",
	    ",, 203.0.113.7 ,,\t, 10.0.0.2 ,,", &ci);
	expect(&ci, "203.0.113.7", "203.0.113.7,10.0.0.2", 0);
	resolve("10.0.0.0/8", "10.0.0.1", " , ,\t,", &ci);
	expect(&ci, "10.0.0.1", "", 0);
	resolve("", "192.0.2.1", ",", &ci);
	expect(&ci, "192.0.2.1", "", 0);
}

/* "10.0.<i/256>.<i%256>, " for first..last-1, after prefix. */
static char *
numbered_chain(const char *prefix, int first, int last)
{
	size_t	 size = strlen(prefix) + (size_t)(last - first) * 20 + 1;
	char	*s = malloc(size), *p;
	int	 i;

	CHECK(s != NULL);
	p = s + snprintf(s, size, "%s", prefix);
	for (i = first; i < last; i++)
		p += snprintf(p, size - (size_t)(p - s), "%s10.0.%d.%d",
		    i > first || *prefix != '\0' ? ", " : "", i / 256, i % 256);
	return s;
}

static void
test_resolve_truncation(void)
{
	struct client_info	 ci;
	char			*xff;

	/* Exactly PROXY_CHAIN_MAX entries: all kept. */
	xff = numbered_chain("", 0, PROXY_CHAIN_MAX);
	resolve("", "192.0.2.1", xff, &ci);
	CHECK_INT(ci.chain_len, PROXY_CHAIN_MAX);
	CHECK(!ci.chain_truncated);
	CHECK_STR(ci.chain[0], "10.0.0.0");
	CHECK_STR(ci.chain[PROXY_CHAIN_MAX - 1], "10.0.0.31");
	free(xff);

	/* One more: the leftmost goes, the rightmost 32 stay in order. */
	xff = numbered_chain("", 0, PROXY_CHAIN_MAX + 1);
	resolve("", "192.0.2.1", xff, &ci);
	CHECK_INT(ci.chain_len, PROXY_CHAIN_MAX);
	CHECK(ci.chain_truncated);
	CHECK_STR(ci.chain[0], "10.0.0.1");
	CHECK_STR(ci.chain[PROXY_CHAIN_MAX - 1], "10.0.0.32");
	CHECK_STR(ci.user_ip, "192.0.2.1");
	free(xff);

	/* 1000 entries. */
	xff = numbered_chain("", 0, 1000);
	resolve("", "192.0.2.1", xff, &ci);
	CHECK(ci.chain_len == PROXY_CHAIN_MAX && ci.chain_truncated);
	CHECK_STR(ci.chain[0], "10.0.3.200");	/* entry 968 */
	CHECK_STR(ci.chain[PROXY_CHAIN_MAX - 1], "10.0.3.231");
	free(xff);
}

/* The walk goes on past the entries proxy_chain keeps. */
static void
test_resolve_walk_beyond_chain(void)
{
	struct client_info	 ci;
	char			*xff;

	xff = numbered_chain("198.51.100.1", 0, 100);
	resolve("10.0.0.0/8", "10.255.0.1", xff, &ci);
	CHECK_STR(ci.user_ip, "198.51.100.1");
	CHECK(ci.chain_len == PROXY_CHAIN_MAX && ci.chain_truncated);
	CHECK_STR(ci.chain[PROXY_CHAIN_MAX - 1], "10.0.0.99");
	free(xff);

	xff = numbered_chain("198.51.100.1, evil", 0, 100);
	resolve("10.0.0.0/8", "10.255.0.1", xff, &ci);
	CHECK_STR(ci.user_ip, "10.0.0.0");
	CHECK(ci.chain_truncated);
	free(xff);
}

/* What any chain entry may be: "invalid" or an address's canonical text,
 * which is plain ASCII and safe in JSON. */
static void
expect_safe_entry(const char *s)
{
	struct ipaddr	ip;
	char		again[IP_TEXT_MAX];

	CHECK(memchr(s, '\0', IP_TEXT_MAX) != NULL);
	if (strcmp(s, PROXY_CHAIN_INVALID) == 0)
		return;
	CHECK_INT(strspn(s, "0123456789abcdef.:"), strlen(s));
	CHECK_INT(ip_parse(s, strlen(s), &ip), 0);
	ip_format(&ip, again);
	CHECK_STR(s, again);
}

static void
test_resolve_hostile(void)
{
	struct client_info	 ci;
	char			*big;
	size_t			 i, size = 64 * 1024;
	unsigned int		 seed = 12345;

	resolve("10.0.0.0/8", "10.0.0.1",
	    "1.2.3.4\x01, \xff\xfe, \"}, 203.0.113.7\r\n, <script>", &ci);
	expect(&ci, "10.0.0.1", "invalid,invalid,invalid,invalid,invalid", 0);

	/* 64 KB of random bytes with commas: bounded, safe entries. */
	big = malloc(size + 1);
	CHECK(big != NULL);
	for (i = 0; i < size; i++) {
		seed = seed * 1103515245u + 12345u;
		big[i] = (char)((seed >> 16) % 7 == 0 ? ',' :
		    1 + (seed >> 8) % 255);
	}
	big[size] = '\0';
	resolve("0.0.0.0/0, ::/0", "10.0.0.1", big, &ci);
	CHECK(ci.chain_len <= PROXY_CHAIN_MAX);
	for (i = 0; i < ci.chain_len; i++)
		expect_safe_entry(ci.chain[i]);
	expect_safe_entry(ci.user_ip);

	/* One 64 KB entry. */
	memset(big, '1', size);
	resolve("0.0.0.0/0", "10.0.0.1", big, &ci);
	expect(&ci, "10.0.0.1", "invalid", 0);
	free(big);
}

int
main(void)
{
	test_ip_parse();
	test_ip_parse_family();
	test_ip_parse_length();
	test_cidr_list_parse();
	test_cidr_list_errors();
	test_cidr_list_match();
	test_resolve_untrusted_peer();
	test_resolve_bad_peer();
	test_resolve_trusted_walk();
	test_resolve_invalid_stops_walk();
	test_resolve_ipv6();
	test_resolve_empty_entries();
	test_resolve_truncation();
	test_resolve_walk_beyond_chain();
	test_resolve_hostile();
	return 0;
}
