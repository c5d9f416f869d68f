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

#ifndef CANOPY_API_GROUPS_H
#define CANOPY_API_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "api.h"

/* Private to srv/api_groups.c and srv/api_admins.c. */

/* Helpers, in api_groups.c. */
/* Scope array text, or NULL for "" (unrestricted). */
const char *ga_scopes(const char *);
/* 1 if the caller holds role r1 (or r2) over the whole virtual server. */
int	 ga_unscoped(const struct api_auth *, const char *r1, const char *r2);
/* Rolls the transaction back and answers status; returns DB_OK. */
int	 ga_fail(PGconn *, struct api_req *, int status, const char *code,
	    const char *msg);
/* Rolls back what is open; returns rc. */
int	 ga_dberr(PGconn *, int rc);
/* Validates the body; 0, or -1 after a 400. */
int	 ga_body(struct api_req *, const struct api_field *, size_t n,
	    json_t **root, struct api_value *vals);
/* A positive id of digits only; 0 or -1. */
int	 ga_id(const char *, int64_t *);
/* ?limit= and ?since=; 0, or -1 after a 400. */
int	 ga_page(struct api_req *, int *limit, const char **since);

/* Handlers, in api_admins.c. */
int	 ga_events(PGconn *, struct api_req *, const struct api_auth *,
	    char *err, size_t errlen);
int	 ga_audit(PGconn *, struct api_req *, const struct api_auth *,
	    char *err, size_t errlen);
int	 ga_admin_add(PGconn *, struct api_req *, const struct api_auth *,
	    char *err, size_t errlen);
int	 ga_admins_list(PGconn *, struct api_req *, const struct api_auth *,
	    char *err, size_t errlen);
int	 ga_admin_delete(PGconn *, struct api_req *, const struct api_auth *,
	    char *err, size_t errlen);
int	 ga_admin_unlock(PGconn *, struct api_req *, const struct api_auth *,
	    char *err, size_t errlen);

#endif
