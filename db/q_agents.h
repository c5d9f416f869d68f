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

#ifndef CANOPY_Q_AGENTS_H
#define CANOPY_Q_AGENTS_H

/*
 * The SQL of agent sessions (srv/agent_session.c): enrolment, the device
 * look-up at connection, and three batch classes of writes.  Each batch item
 * carries one JSON record (or, for events, an array of records); a batch is
 * one statement over jsonb_array_elements($1), so a thousand agents'
 * heartbeats are one round trip.
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db.h"
#include "pki.h"

struct qa_item {
	void		*arg;		/* the caller's (the session) */
	uint64_t	 seq;
	uint8_t		 kind;		/* the caller's */
	uint8_t		 need_inventory;
	uint8_t		 noack;		/* answer neither ack nor retry */
	uint32_t	 nevents;
	/*
	 * One JSON record, serialised at once so that a queued item holds a
	 * compact string rather than a tree (an inventory is tens of KiB):
	 * touch:     {"id", "n"}  (n = syncs to count, 0 for a heartbeat)
	 * inventory: {"id", "hash", "data", "name"?, "fqdn"?, "os"?, "ip", "mac"}
	 * events:    [{"device", "id", "time" (ms), "severity", "type", "text"}]
	 */
	char		*json;
	size_t		 len;
	char		 hash[129];	/* inventory: the hash stored */
};

extern const struct db_batch_class qa_touch_class;
extern const struct db_batch_class qa_inventory_class;
extern const struct db_batch_class qa_events_class;

void	 qa_item_free(struct qa_item *);

enum qa_enroll_result { QA_ENROLLED, QA_BAD_TOKEN, QA_BAD_CSR };

struct qa_enroll {
	void		*arg;
	/* in */
	const struct pki *pki;
	char		 token_hash[65];	/* sha256 hex of the token */
	char		*csr;			/* PEM, malloc'd */
	size_t		 csr_len;
	char		 name[256];
	char		 addr[64];
	int		 cert_days;
	/* out */
	int		 result;		/* enum qa_enroll_result */
	char		 device_id[37];
	char		*cert;			/* PEM, malloc'd */
	char		 reason[256];		/* for bad_csr */
};

/* db_run_fn: one transaction, the token's use counted only on success. */
int	 qa_enroll_run(PGconn *, void *arg, char *err, size_t errlen);
void	 qa_enroll_free(struct qa_enroll *);

struct qa_lookup {
	void		*arg;
	char		 device_id[37];		/* in */
	int		 found;			/* out */
	int		 vs_id;
	int		 has_hash;
	char		 inv_hash[129];
	char		 fingerprint[PKI_FPR_LEN];	/* "" if none stored */
};

/* db_run_fn: finds the device and marks it seen. */
int	 qa_lookup_run(PGconn *, void *arg, char *err, size_t errlen);

/* Writes a random (version 4) UUID, lower case, into out[37]. */
int	 qa_uuid_v4(char out[37]);
/* 1 if s is a UUID in canonical lower- or upper-case form. */
int	 qa_uuid_valid(const char *s);

#endif
