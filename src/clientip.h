/* tally - clientip: trusted-proxy CIDR lists and the X-Forwarded-For walk
 * that finds the client's address without trusting what clients say. */
#ifndef TALLY_CLIENTIP_H
#define TALLY_CLIENTIP_H

#include <stddef.h>

/* Longest normalised address text, with its NUL (INET6_ADDRSTRLEN). */
#define IP_TEXT_MAX		46
/* Longest X-Forwarded-For entry looked at; longer ones are invalid. */
#define XFF_ENTRY_MAX		64
/* proxy_chain keeps at most this many entries: the rightmost ones. */
#define PROXY_CHAIN_MAX		32
/* Text shown in proxy_chain for an entry that is not an IP address. */
#define PROXY_CHAIN_INVALID	"invalid"

struct ipaddr {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	bytes[16];	/* network order; 4 used for AF_INET */
};

struct cidr {
	struct ipaddr	net;
	unsigned int	prefix;
};

struct cidr_list {
	struct cidr	*items;
	size_t		 len;
};

struct client_info {
	char	user_ip[IP_TEXT_MAX];	/* "" when REMOTE_ADDR is unusable */
	size_t	chain_len;
	char	chain[PROXY_CHAIN_MAX][IP_TEXT_MAX];
	int	chain_truncated;	/* X-Forwarded-For had more entries */
};

/* Parses an address: IPv4, IPv6, "[IPv6]", "[IPv6]:port", "IPv4:port",
 * IPv6 with a "%zone" (dropped). IPv4-mapped IPv6 becomes IPv4.
 * Surrounding blanks are ignored. Returns 0, or -1 if s is not one. */
int	ip_parse(const char *s, size_t len, struct ipaddr *out);

/* Writes the canonical text of ip (inet_ntop) into buf[IP_TEXT_MAX]. */
void	ip_format(const struct ipaddr *ip, char *buf);

/* Parses comma-separated CIDRs ("10.0.0.0/8, ::1, fd00::/8"); a bare
 * address is a /32 or /128. NULL or blank gives an empty list.
 * Returns 0, or -1 with a message in err (the list is then empty). */
int	cidr_list_parse(const char *s, struct cidr_list *out, char *err,
	    size_t errlen);
void	cidr_list_free(struct cidr_list *list);

/* Returns 1 if ip lies in one of the list's networks, else 0. */
int	cidr_list_match(const struct cidr_list *list, const struct ipaddr *ip);

/* Fills out from the peer address and the X-Forwarded-For header (NULL
 * when absent). user_ip is remote_addr unless remote_addr is trusted;
 * then X-Forwarded-For is walked from the right, skipping trusted hops:
 * the first untrusted entry is the client; an entry that is not an
 * address stops the walk at the last trusted hop. Never fails. */
void	clientip_resolve(const struct cidr_list *trusted,
	    const char *remote_addr, const char *xff, struct client_info *out);

#endif
