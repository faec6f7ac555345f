/*
 * netshield_conf.h - the network shield's configuration: SCONE's
 * SCONE_NETWORK_SHIELD* variables (from the service's environment in the
 * session, or the host's environment without CAS) parsed into rules.
 *
 * Parsing is pure (no I/O, no sockets): the runtime (netshield.c) turns
 * the rules into TLS contexts, tests and the fuzz target call it directly.
 * Every error names the variable and what is wrong with it; values that
 * may hold secrets (identities) are never echoed.
 *
 * docs/network-shield.md lists the variables.
 */
#ifndef SCONE_RUNTIME_NETSHIELD_CONF_H
#define SCONE_RUNTIME_NETSHIELD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* Limits (the parser refuses beyond them). */
#define NS_MAX_SERVERS 64
#define NS_MAX_CLIENTS 64
#define NS_MAX_INDEX 9999	      /* <n> of SERVER_<n> / CLIENT_<n> */
#define NS_MAX_VALUE_SIZE (64 * 1024) /* bytes of one variable's value */

enum ns_mode {
	NS_DISABLED,	/* SCONE_NETWORK_SHIELD unset, empty or "disabled": nothing is touched */
	NS_UNPROTECTED, /* only the configured endpoints are shielded; the rest pass */
	NS_PROTECTED,	/* anything not configured is refused */
};

enum ns_action {
	NS_PROTECT, /* "protected": wrapped in TLS */
	NS_PASS,    /* "unprotected": plain, as without the shield */
	NS_REFUSE,  /* "refuse" */
};

/* TCP:port / TCP:host:port, or unix:/path */
struct ns_endpoint {
	bool is_unix;
	char *path;    /* is_unix: the socket's path (absolute) */
	char *host;    /* TCP client destinations: the host as written (name or address; an IPv6
			  address without its brackets); NULL for servers and unix paths */
	uint16_t port; /* TCP */
};

struct ns_server {
	unsigned index; /* the <n> of SCONE_NETWORK_SHIELD_SERVER_<n> */
	enum ns_action action;
	struct ns_endpoint at;
	char *identity_pem;  /* _IDENTITY: private key and certificate chain (PEM); NULL: ephemeral */
	char *client_ca_pem; /* _CLIENT_AUTH: CA certificates (PEM); NULL: "disabled" or unset */
};

struct ns_client {
	unsigned index; /* SCONE_NETWORK_SHIELD_CLIENT_<n> */
	enum ns_action action;
	struct ns_endpoint to; /* _DESTINATION */
	char *dest_ip;	       /* _DESTINATION_IP: the address(es) the host name stands for (as written, comma
				  separated), or NULL */
	char *server_ca_pem;   /* _SERVER_AUTH: CA certificates (PEM); NULL when "disabled" */
	bool server_auth_disabled; /* _SERVER_AUTH=disabled (explicit: never the default) */
	char *identity_pem;	   /* _IDENTITY: client certificate (PEM), or NULL */
	char *dns_name;		   /* _SERVER_DNS_NAME, or NULL: the destination's host */
};

struct ns_config {
	enum ns_mode mode;
	enum ns_action unsupported; /* _UNSUPPORTED_PROTOCOLS: NS_PASS (default) or NS_REFUSE */
	struct ns_server *servers;
	size_t server_count;
	struct ns_client *clients;
	size_t client_count;
};

/* Is NAME (without "=...") one of the shield's variables (kept out of the program's environment)? */
bool ns_is_setting(const char *name);

/*
 * Parse the shield's variables among n "NAME=VALUE" entries (other names
 * are ignored). On success *out is a config (mode NS_DISABLED when the
 * shield is off); on error NULL and SCONE_ERR_INVALID with a message
 * naming the variable. Limits: 64 servers, 64 clients, <n> up to 9999,
 * values up to 64 KiB.
 */
enum scone_err ns_config_parse(char *const *env, size_t n, struct ns_config **out);
/* Free it, wiping identities. NULL is fine. */
void ns_config_free(struct ns_config *c);

#endif
