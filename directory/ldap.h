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

#ifndef CANOPY_DIRECTORY_LDAP_H
#define CANOPY_DIRECTORY_LDAP_H

/*
 * One poll of one LDAP source, on a poller thread (directory/directory.c):
 * connect, bind, paged searches, everything read into memory.  No
 * database, no event loop, no process-global state.
 */
#include <stddef.h>
#include <stdint.h>

/* What a poll needs to know about its source (decrypted secrets). */
struct dir_source {
	int64_t		 id;
	int		 vs_id;
	char		 flavor[16];
	char		*url;
	char		*base_dn;
	char		*bind_method;	/* "simple" | "gssapi" */
	char		*bind_dn;
	char		*password;	/* decrypted; zeroed at free */
	size_t		 password_len;
	char		*principal;
	uint8_t		*keytab;	/* decrypted; zeroed at free */
	size_t		 keytab_len;
	int		 starttls;
	int		 tls_verify;
	char		*ca_file;
	char		*realm;		/* NULL: from the base DN */
	char		*mark;		/* the last poll's mark, or NULL */
	int		 full;		/* read everything, reconcile */
};

enum dir_type { DT_COMPUTER, DT_USER, DT_GROUP, DT_OU };

struct dir_obj {
	enum dir_type	 type;
	char		*dn;
	char		*guid;
	char		*name;
	char		*principal;
	char		*fqdn;
	char		*os;
	char		*os_version;
	char		*sid;
	char		*parent_dn;
	char		*changed;
	int		 disabled;
	/* Lower-cased DNs joined by DIR_SEP, or NULL. */
	char		*members;
	char		*member_of;
};
#define DIR_SEP	'\x1f'

struct dir_result {
	struct dir_obj	*objs;
	size_t		 n, cap;
	/* GUIDs the server reports deleted (tombstones). */
	char		**deleted;
	size_t		 ndeleted, capdeleted;
	/* Every GUID present now (a reconcile), when present_valid. */
	char		**present;
	size_t		 npresent, cappresent;
	int		 present_valid;
	char		*mark;		/* the new mark */
	int		 full;		/* this was a full read */
	uint64_t	 fetched;	/* entries the server sent */
	uint64_t	 skipped;	/* unknown or unusable entries */
	char		 kind[16];	/* "full" | "incremental" */
};

/* 0, or -1 with err a sentence for last_error. */
int	 dir_ldap_poll(const struct dir_source *, volatile int *stopping,
	    struct dir_result *, char *err, size_t errlen);
void	 dir_result_free(struct dir_result *);
void	 dir_source_free(struct dir_source *);

#endif
