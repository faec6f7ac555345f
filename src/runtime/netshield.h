/*
 * netshield.h - the network shield's rules at run time: the parsed
 * configuration (netshield_conf.h) turned into TLS contexts, and the
 * decisions the socket interposers (io_net.c) ask for: is this accepted
 * connection, this destination, this socket type shielded, passed or
 * refused?
 *
 * The shield is active only after scone_netshield_init (at start, before
 * main); before that, and with SCONE_NETWORK_SHIELD unset or "disabled",
 * every decision is "pass" and the interposers cost one load.
 *
 * docs/network-shield.md.
 */
#ifndef SCONE_RUNTIME_NETSHIELD_H
#define SCONE_RUNTIME_NETSHIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "lib/err.h"

enum ns_verdict {
	NSV_PASS,    /* not the shield's: the kernel's socket as it is */
	NSV_PROTECT, /* wrap in TLS with the context given */
	NSV_REFUSE,  /* refuse the connection */
};

struct ns_decision {
	enum ns_verdict verdict;
	SSL_CTX *ctx;	      /* NSV_PROTECT */
	const char *dns_name; /* client: the name to check the server's certificate against, or NULL */
	const char *what;     /* for messages: "server 1 (TCP:6379)" */
};

/*
 * Read the shield's variables among n "NAME=VALUE" entries and make the
 * TLS contexts. An error names the variable; the start stops.
 */
enum scone_err scone_netshield_init(char *const *env, size_t n);
/* Is the shield on (any mode but disabled)? */
bool scone_netshield_on(void);
/* Is NAME=... one of the shield's variables (never given to the program)? */
bool scone_netshield_is_var(const char *entry);
/* Log the shielded ports and destinations (SCONE_VERSION=1). */
void scone_netshield_show(void);

/* A connection accepted on fd (its local address decides). */
void ns_decide_accepted(int fd, struct ns_decision *out);
/* A stream socket connecting to addr. */
void ns_decide_connect(const struct sockaddr *addr, socklen_t len, struct ns_decision *out);
/* A new socket of this domain and type (UDP and other protocols: _UNSUPPORTED_PROTOCOLS). */
enum ns_verdict ns_decide_socket(int domain, int type);

#endif
