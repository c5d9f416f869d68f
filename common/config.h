/*
 * Copyright (c) 2026 The Canopy Authors
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

#ifndef CANOPY_CONFIG_H
#define CANOPY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "canopy_limits.h"

/*
 * canopyd.conf: one keyword per line, arguments separated by blanks, double
 * quotes for arguments with blanks, '#' starts a comment.  Sizes take K, M, G
 * suffixes, durations s, m, h, d.  See deploy/canopyd.conf.example.
 *
 *   server-name "primary"
 *   listen agents 0.0.0.0:13000        # may repeat, up to CONF_MAX_LISTEN
 *   listen api 127.0.0.1:13299
 *   database "host=127.0.0.1 port=5432 dbname=canopy user=canopy"
 *   state-dir /var/lib/canopy
 *   user canopy                        # drop privileges after binding
 *   log stderr|syslog
 *   log-level warn|info|debug
 *   max-frame 16M
 *   max-agents 20000
 *   api-max-body 1M
 *   db-workers 4
 *   heartbeat 60s                      # told to agents
 *   metrics public|authenticated
 *   parent primary.example:13000        # the server tree: this server's parent
 *   parent accept                      #   or: the parent dials in (DMZ)
 *   parent-token "..."                 # from POST /servers/children on it
 *   parent-ca /etc/canopy/parent-ca.pem
 *   child-dial dmz1 10.0.5.7:13000     # a child this server dials (DMZ)
 *   up-min-severity warning            # events forwarded to the parent
 *   kerberos-keytab /etc/canopy/http.keytab
 *   kerberos-service HTTP/canopy.corp.example
 *   dns-server 127.0.0.1:53            # reverse look-ups of IP scans
 */

enum listen_kind { LISTEN_AGENTS, LISTEN_API };

struct conf_listen {
	enum listen_kind kind;
	char		 host[256];	/* "0.0.0.0", "::", "127.0.0.1", name */
	uint16_t	 port;
};

struct conf_child_dial {
	char		 name[MSG_MAX_NAME + 1];
	char		 host[256];
	uint16_t	 port;
};

struct conf {
	char		 path[1024];		/* where it was read from */
	char		 server_name[MSG_MAX_NAME + 1];
	struct conf_listen listen[CONF_MAX_LISTEN];
	int		 nlisten;
	char		*database;		/* libpq conninfo, malloc'd */
	char		 state_dir[1024];
	char		 user[64];		/* empty: do not drop */
	int		 log_syslog;
	int		 log_level;		/* enum log_level */
	uint32_t	 max_frame;
	uint32_t	 max_agents;
	uint32_t	 api_max_body;
	int		 db_workers;
	int		 heartbeat_s;
	int		 metrics_public;
	/* the server tree */
	char		 parent_host[256];	/* empty: this is a top server */
	uint16_t	 parent_port;
	int		 parent_accept;		/* "parent accept": it dials us */
	char		 parent_token[128];
	char		 parent_ca[1024];
	struct conf_child_dial child_dial[CONF_MAX_CHILD_DIAL];
	int		 nchild_dial;
	char		 up_min_severity[16];	/* info|warning|error|critical */
	/* Kerberos SSO */
	char		 kerberos_keytab[1024];
	char		 kerberos_service[256];
	/* reverse DNS for scans; empty: /etc/resolv.conf */
	char		 dns_host[256];
	uint16_t	 dns_port;
};

/* Fills defaults (ports 13000 and 13299 on all addresses, etc.). */
void	conf_defaults(struct conf *);

/*
 * Parses text of len bytes (need not be NUL-terminated) read from 'name'.
 * Returns 0, or -1 with err set to "name:line: message".  On failure *out is
 * left freeable but must not be used.  Pure: no I/O, no globals.
 */
int	conf_parse(const char *name, const char *text, size_t len,
	    struct conf *out, char *err, size_t errlen);

/* Reads and parses a file (at most CONF_MAX_SIZE). */
int	conf_load(const char *path, struct conf *out, char *err, size_t errlen);

/* Writes the normalised configuration (for canopyd -nv). */
void	conf_print(const struct conf *, FILE *);

void	conf_free(struct conf *);

#endif
