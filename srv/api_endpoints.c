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

/*
 * The table-driven router's modules (srv/api.h, struct api_endpoint).  Each
 * module owns its table in its own file; a new module adds one line here.
 */
#include <stddef.h>

#include "api.h"

extern const struct api_endpoint api_endpoints_groups[];
extern const struct api_endpoint api_endpoints_policies[];
extern const struct api_endpoint api_endpoints_tasks[];
extern const struct api_endpoint api_endpoints_rules[];
extern const struct api_endpoint api_endpoints_vservers[];
extern const struct api_endpoint api_endpoints_servers[];
extern const struct api_endpoint api_endpoints_directory[];
extern const struct api_endpoint api_endpoints_ipranges[];
extern const struct api_endpoint api_endpoints_auth[];

const struct api_endpoint *const api_endpoint_tables[] = {
	api_endpoints_groups,
	api_endpoints_policies,
	api_endpoints_tasks,
	api_endpoints_rules,
	api_endpoints_vservers,
	api_endpoints_servers,
	api_endpoints_directory,
	api_endpoints_ipranges,
	api_endpoints_auth,
	NULL
};
