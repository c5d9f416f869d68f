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
 * One poll of an LDAP source (directory/ldap.h).  Every operation has a
 * timeout, referrals are never chased, searches are paged (RFC 2696).
 * Incremental polls ask only for what changed since the source's mark:
 * AD/Samba by uSNChanged above the last highestCommittedUSN, plus the
 * tombstones in the Deleted Objects container; the others by entryCSN,
 * entryUSN or modifyTimestamp, plus a GUID-only listing of what is still
 * there so that deletions are seen.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <netdb.h>
#include <poll.h>
#include <unistd.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldap.h>

#include "canopy_limits.h"
#include "ldapval.h"
#include "log.h"
#include "util.h"

#include "ldap.h"
#include "ldap_gss.h"

#define OID_SHOW_DELETED	"1.2.840.113556.1.4.417"

static char *const ad_attrs[] = {
	"objectClass", "cn", "name", "ou", "sAMAccountName", "dNSHostName",
	"operatingSystem", "operatingSystemVersion", "objectGUID",
	"objectSid", "userAccountControl", "lastLogonTimestamp",
	"whenChanged", "uSNChanged", "member", "memberOf", NULL
};
static char *const ipa_attrs[] = {
	"objectClass", "cn", "ou", "uid", "fqdn", "nsOsVersion",
	"ipaUniqueID", "entryUUID", "krbPrincipalName", "nsAccountLock",
	"entryCSN", "entryUSN", "modifyTimestamp", "member", "memberOf", NULL
};
static char *const ad_guid_attrs[] = { "objectGUID", NULL };
static char *const ipa_guid_attrs[] = { "ipaUniqueID", "entryUUID", NULL };

/* Tombstones are not objects (AD hides them without show-deleted). */
static const char ad_classes[] = "(&(!(isDeleted=TRUE))"
	"(|(objectClass=computer)(objectClass=user)(objectClass=group)"
	"(objectClass=organizationalUnit)))";
static const char ipa_classes[] = "(|(objectClass=ipaHost)"
	"(objectClass=person)(objectClass=posixAccount)"
	"(objectClass=groupOfNames)(objectClass=posixGroup)"
	"(objectClass=organizationalUnit))";

/*
 * One entry's attributes, read in a single pass over its BER (asking
 * libldap for each attribute by name walks the entry every time).  The
 * values point into the message: cleared before it is freed.
 */
#define DL_CACHE_MAX	48
struct dl_cache {
	LDAPMessage		*e;
	BerElement		*ber;
	size_t			 n;
	struct {
		char		 name[64];
		struct berval	*vals;
	}			 a[DL_CACHE_MAX];
};

struct dl {
	struct dl_cache		 cache;
	const struct dir_source	*src;
	struct dir_result	*res;
	volatile int		*stopping;
	LDAP			*ld;
	int			 ad;
	char			 realm[256];
	/* The newest change marks seen. */
	uint64_t		 max_usn;
	int			 have_usn;
	char			 max_csn[128];
	char			 max_ts[64];
	char			 max_eusn[32];
	uint64_t		 max_eusn_n;
};

static void
dl_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
dl_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The server's diagnostic message, or "". */
static void
dl_diag(LDAP *ld, char *buf, size_t len)
{
	char	*m = NULL;

	buf[0] = '\0';
	if (ld != NULL && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE,
	    &m) == LDAP_OPT_SUCCESS && m != NULL) {
		strlcpy(buf, m, len);
		ldap_memfree(m);
	}
}

/*
 * Whether a TCP connection to the URL's host and port opens: when LDAPS
 * fails but TCP works, the TLS handshake is what failed.
 */
static int
dl_tcp_ok(const char *url)
{
	LDAPURLDesc	*lud = NULL;
	struct addrinfo	 hints, *ai = NULL;
	struct pollfd	 pfd;
	char		 port[16];
	int		 fd = -1, ok = 0, e;
	socklen_t	 el = sizeof(e);

	if (ldap_url_parse(url, &lud) != LDAP_URL_SUCCESS)
		return 0;
	snprintf(port, sizeof(port), "%d", lud->lud_port ? lud->lud_port :
	    strncasecmp(url, "ldaps:", 6) == 0 ? 636 : 389);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(lud->lud_host && *lud->lud_host ? lud->lud_host :
	    "localhost", port, &hints, &ai) != 0 || ai == NULL)
		goto out;
	if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK,
	    0)) == -1)
		goto out;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		ok = 1;
	else if (errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, DIR_CONNECT_TIMEOUT_S * 1000) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 &&
		    e == 0)
			ok = 1;
	}
 out:
	if (fd != -1)
		close(fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	ldap_free_urldesc(lud);
	return ok;
}

/* A connection-level failure in words: unreachable or TLS. */
static void
dl_conn_error(struct dl *d, int rc, const char *what, char *err,
    size_t errlen)
{
	char	 diag[256];

	dl_diag(d->ld, diag, sizeof(diag));
	if (rc == LDAP_SERVER_DOWN && strncasecmp(d->src->url, "ldaps:",
	    6) == 0 && dl_tcp_ok(d->src->url)) {
		dl_seterr(err, errlen, "TLS verification failed with %s (%s): "
		    "the TLS handshake failed although the port is open; is "
		    "the server's certificate signed by the CA file %s?",
		    d->src->url, what, d->src->ca_file ? d->src->ca_file :
		    "(system CAs)");
		return;
	}
	if (strcasestr(diag, "TLS") != NULL ||
	    strcasestr(diag, "certificate") != NULL ||
	    strcasestr(diag, "cert ") != NULL ||
	    (rc == LDAP_CONNECT_ERROR && (d->src->starttls ||
	    strncasecmp(d->src->url, "ldaps:", 6) == 0)))
		dl_seterr(err, errlen, "TLS verification failed with %s "
		    "(%s): %s", d->src->url, what, diag[0] ? diag :
		    ldap_err2string(rc));
	else if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ||
	    rc == LDAP_TIMEOUT)
		dl_seterr(err, errlen, "server unreachable: %s (%s: %s)",
		    d->src->url, what, ldap_err2string(rc));
	else
		dl_seterr(err, errlen, "%s failed: %s%s%s", what,
		    ldap_err2string(rc), diag[0] ? ": " : "", diag);
}

static void
dl_cache_clear(struct dl *d)
{
	size_t	 i;

	for (i = 0; i < d->cache.n; i++)
		ber_memfree(d->cache.a[i].vals);
	if (d->cache.ber != NULL)
		ber_free(d->cache.ber, 0);
	d->cache.ber = NULL;
	d->cache.n = 0;
	d->cache.e = NULL;
}

/* The values of attr in e (a NULL-terminated BerVarray), or NULL. */
static struct berval *
dl_get(struct dl *d, LDAPMessage *e, const char *attr)
{
	struct berval	 name, *vals, dn;
	size_t		 i;

	if (d->cache.e != e) {
		dl_cache_clear(d);
		d->cache.e = e;
		if (ldap_get_dn_ber(d->ld, e, &d->cache.ber, &dn) !=
		    LDAP_SUCCESS)
			return NULL;
		for (;;) {
			vals = NULL;
			if (ldap_get_attribute_ber(d->ld, e, d->cache.ber,
			    &name, &vals) != LDAP_SUCCESS ||
			    name.bv_val == NULL)
				break;
			if (d->cache.n == DL_CACHE_MAX ||
			    name.bv_len >= sizeof(d->cache.a[0].name)) {
				ber_memfree(vals);
				continue;
			}
			memcpy(d->cache.a[d->cache.n].name, name.bv_val,
			    name.bv_len);
			d->cache.a[d->cache.n].name[name.bv_len] = '\0';
			d->cache.a[d->cache.n].vals = vals;
			d->cache.n++;
		}
	}
	for (i = 0; i < d->cache.n; i++)
		if (strcasecmp(d->cache.a[i].name, attr) == 0)
			return d->cache.a[i].vals;
	return NULL;
}

static char *
dl_strndup(const char *s, size_t n)
{
	char	*p;

	if (n > DIR_VALUE_MAX)
		n = DIR_VALUE_MAX;
	if ((p = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	/* Values go into COPY and JSON: no NULs, no separators. */
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\0' || p[i] == DIR_SEP)
			p[i] = '?';
	return p;
}

/* The first value of attr as a string, or NULL. */
static char *
dl_first(struct dl *d, LDAPMessage *e, const char *attr)
{
	struct berval	*v;

	if ((v = dl_get(d, e, attr)) == NULL || v[0].bv_val == NULL ||
	    v[0].bv_len == 0)
		return NULL;
	return dl_strndup(v[0].bv_val, v[0].bv_len);
}

/* Appends a DN value, normalised, after DIR_SEP; *count caps them. */
static void
dl_dn_append(const struct berval *bv, char **out, size_t *len, size_t *cap,
    size_t *count)
{
	char	*dn;
	size_t	 n;

	if (*count >= DIR_VALUES_MAX || bv->bv_len == 0 ||
	    bv->bv_len > LDAPVAL_DN_MAX)
		return;
	if ((dn = dl_strndup(bv->bv_val, bv->bv_len)) == NULL)
		return;
	ldapval_dn_norm(dn);
	n = strlen(dn);
	if (*len + n + 2 > *cap) {
		size_t	 nc = (*len + n + 2) * 2;
		char	*p = realloc(*out, nc);

		if (p == NULL) {
			free(dn);
			return;
		}
		*out = p;
		*cap = nc;
	}
	if (*len > 0)
		(*out)[(*len)++] = DIR_SEP;
	memcpy(*out + *len, dn, n);
	*len += n;
	(*out)[*len] = '\0';
	(*count)++;
	free(dn);
}

/* Every value of a DN-valued attribute, normalised, joined by DIR_SEP. */
static char *
dl_dns(struct dl *d, LDAPMessage *e, const char *attr)
{
	struct berval	*v;
	char		*out = NULL;
	size_t		 i, len = 0, cap = 0, count = 0;

	if ((v = dl_get(d, e, attr)) == NULL)
		return NULL;
	for (i = 0; v[i].bv_val != NULL; i++)
		dl_dn_append(&v[i], &out, &len, &cap, &count);
	return out;
}

/*
 * The "member;range=LOW-HIGH" values of e, if any (AD sends large groups
 * in ranges of MaxValRange); the next LOW to ask for, or -1 when done.
 */
static long
dl_member_ranges(LDAP *ld, LDAPMessage *e, char **out, size_t *len,
    size_t *cap, size_t *count)
{
	BerElement	*ber = NULL;
	struct berval	**v;
	char		 *a, *dash;
	long		  next = -1;

	for (a = ldap_first_attribute(ld, e, &ber); a != NULL;
	    a = ldap_next_attribute(ld, e, ber)) {
		if (strncasecmp(a, "member;range=", 13) == 0 &&
		    (v = ldap_get_values_len(ld, e, a)) != NULL) {
			size_t	 i;

			for (i = 0; v[i] != NULL; i++)
				dl_dn_append(v[i], out, len, cap, count);
			ldap_value_free_len(v);
			if ((dash = strchr(a + 13, '-')) != NULL &&
			    dash[1] != '*')
				next = strtol(dash + 1, NULL, 10) + 1;
		}
		ldap_memfree(a);
	}
	if (ber != NULL)
		ber_free(ber, 0);
	return next;
}

/* A group's members: plain, or range by range (no referrals, timeouts). */
static char *
dl_members(struct dl *d, LDAPMessage *e, const char *dn)
{
	struct timeval	 tv = { DIR_OP_TIMEOUT_S, 0 };
	LDAPMessage	*res, *e2;
	char		*out, attr[64], *attrs[2] = { attr, NULL };
	size_t		 len, cap = 0, count = 0;
	long		 next;

	out = dl_dns(d, e, "member");
	len = out != NULL ? strlen(out) : 0;
	cap = out != NULL ? len + 1 : 0;
	next = dl_member_ranges(d->ld, e, &out, &len, &cap, &count);
	while (next >= 0 && count < DIR_VALUES_MAX && !*d->stopping) {
		snprintf(attr, sizeof(attr), "member;range=%ld-*", next);
		res = NULL;
		if (ldap_search_ext_s(d->ld, dn, LDAP_SCOPE_BASE,
		    "(objectClass=*)", attrs, 0, NULL, NULL, &tv, 1, &res) !=
		    LDAP_SUCCESS || (e2 = ldap_first_entry(d->ld, res)) ==
		    NULL) {
			if (res != NULL)
				ldap_msgfree(res);
			break;
		}
		next = dl_member_ranges(d->ld, e2, &out, &len, &cap, &count);
		ldap_msgfree(res);
	}
	return out;
}

static int
dl_has_class(const struct berval *oc, const char *name)
{
	size_t	 i, n = strlen(name);

	for (i = 0; oc != NULL && oc[i].bv_val != NULL; i++)
		if (oc[i].bv_len == n &&
		    strncasecmp(oc[i].bv_val, name, n) == 0)
			return 1;
	return 0;
}

/* The entry's GUID as text: objectGUID / ipaUniqueID / entryUUID, or DN. */
static char *
dl_guid(struct dl *d, LDAPMessage *e, const char *dn)
{
	char *const	*a = d->ad ? ad_guid_attrs : ipa_guid_attrs;
	struct berval	 *v;
	char		  g[37], *s;
	size_t		  i;

	for (i = 0; a[i] != NULL; i++)
		if ((v = dl_get(d, e, a[i])) != NULL && v[0].bv_val != NULL &&
		    ldapval_guid(v[0].bv_val, v[0].bv_len, g) == 0)
			return strdup(g);
	/* No usable GUID: the DN stands in (a rename looks new). */
	if (asprintf(&s, "dn:%s", dn) == -1)
		return NULL;
	ldapval_dn_norm(s);
	return s;
}

static void
dl_obj_free(struct dir_obj *o)
{
	free(o->dn);
	free(o->guid);
	free(o->name);
	free(o->principal);
	free(o->fqdn);
	free(o->os);
	free(o->os_version);
	free(o->sid);
	free(o->parent_dn);
	free(o->changed);
	free(o->members);
	free(o->member_of);
}

static int
dl_push_str(char ***arr, size_t *n, size_t *cap, char *s)
{
	if (*n == *cap) {
		size_t	 nc = *cap ? *cap * 2 : 256;
		char	**p = reallocarray(*arr, nc, sizeof(**arr));

		if (p == NULL)
			return -1;
		*arr = p;
		*cap = nc;
	}
	(*arr)[(*n)++] = s;
	return 0;
}

/* Keeps the newest change marks seen. */
static void
dl_marks(struct dl *d, LDAPMessage *e, struct dir_obj *o)
{
	char		*s;
	uint64_t	 u;

	if (d->ad) {
		if ((s = dl_first(d, e, "uSNChanged")) != NULL) {
			if (ldapval_u64(s, strlen(s), &u) == 0 &&
			    (!d->have_usn || u > d->max_usn)) {
				d->max_usn = u;
				d->have_usn = 1;
			}
			if (o != NULL && o->changed == NULL)
				o->changed = s;
			else
				free(s);
		}
		return;
	}
	if ((s = dl_first(d, e, "entryCSN")) != NULL) {
		if (strlen(s) < sizeof(d->max_csn) &&
		    strcmp(s, d->max_csn) > 0)
			strlcpy(d->max_csn, s, sizeof(d->max_csn));
		free(s);
	}
	if ((s = dl_first(d, e, "entryUSN")) != NULL) {
		if (ldapval_u64(s, strlen(s), &u) == 0 && u >= d->max_eusn_n) {
			d->max_eusn_n = u;
			snprintf(d->max_eusn, sizeof(d->max_eusn), "%" PRIu64,
			    u);
		}
		free(s);
	}
	if ((s = dl_first(d, e, "modifyTimestamp")) != NULL) {
		if (strlen(s) < sizeof(d->max_ts) && strcmp(s, d->max_ts) > 0)
			strlcpy(d->max_ts, s, sizeof(d->max_ts));
		if (o != NULL && o->changed == NULL)
			o->changed = s;
		else
			free(s);
	}
}

/* One entry of a full or incremental read. */
static int
dl_entry(struct dl *d, LDAPMessage *e)
{
	struct dir_result	*r = d->res;
	struct dir_obj		 o;
	struct berval		*oc;
	char			*dn, *s, buf[LDAPVAL_DN_MAX + 1];
	uint64_t		 u;

	r->fetched++;
	memset(&o, 0, sizeof(o));
	if ((dn = ldap_get_dn(d->ld, e)) == NULL) {
		r->skipped++;
		return 0;
	}
	oc = dl_get(d, e, "objectClass");
	if (d->ad) {
		if (dl_has_class(oc, "computer"))
			o.type = DT_COMPUTER;
		else if (dl_has_class(oc, "group"))
			o.type = DT_GROUP;
		else if (dl_has_class(oc, "organizationalUnit"))
			o.type = DT_OU;
		else if (dl_has_class(oc, "user"))
			o.type = DT_USER;
		else
			goto skip;
	} else {
		if (dl_has_class(oc, "ipaHost"))
			o.type = DT_COMPUTER;
		else if (dl_has_class(oc, "groupOfNames") ||
		    dl_has_class(oc, "posixGroup"))
			o.type = DT_GROUP;
		else if (dl_has_class(oc, "organizationalUnit"))
			o.type = DT_OU;
		else if (dl_has_class(oc, "person") ||
		    dl_has_class(oc, "organizationalPerson") ||
		    dl_has_class(oc, "inetOrgPerson") ||
		    dl_has_class(oc, "posixAccount"))
			o.type = DT_USER;
		else
			goto skip;
	}
	if (strlen(dn) > LDAPVAL_DN_MAX)
		goto skip;
	o.dn = dl_strndup(dn, strlen(dn));
	o.guid = dl_guid(d, e, dn);
	if (ldapval_dn_parent(dn, buf, sizeof(buf)) == 0)
		o.parent_dn = strdup(buf);
	o.name = dl_first(d, e, o.type == DT_OU ? "ou" : "cn");
	if (o.name == NULL && ldapval_dn_first_value(dn, buf, 256) == 0)
		o.name = strdup(buf);
	if (o.name == NULL)
		o.name = strdup(dn);
	if (d->ad) {
		o.fqdn = dl_first(d, e, "dNSHostName");
		o.os = dl_first(d, e, "operatingSystem");
		o.os_version = dl_first(d, e, "operatingSystemVersion");
		if ((s = dl_first(d, e, "userAccountControl")) != NULL) {
			/* ACCOUNTDISABLE; stored signed by some servers. */
			if (ldapval_u64(s, strlen(s), &u) == 0)
				o.disabled = (u & 2) != 0;
			else if (s[0] == '-' && ldapval_u64(s + 1,
			    strlen(s + 1), &u) == 0)
				o.disabled = ((0 - u) & 2) != 0;
			free(s);
		}
		{
			struct berval	*v = dl_get(d, e, "objectSid");

			if (v != NULL && v[0].bv_val != NULL &&
			    ldapval_sid(v[0].bv_val, v[0].bv_len, buf,
			    sizeof(buf)) == 0)
				o.sid = strdup(buf);
		}
		if (o.type == DT_USER && (s = dl_first(d, e,
		    "sAMAccountName")) != NULL) {
			if (asprintf(&o.principal, "%s@%s", s, d->realm) == -1)
				o.principal = NULL;
			free(s);
		}
	} else {
		o.fqdn = dl_first(d, e, "fqdn");
		o.os = dl_first(d, e, "nsOsVersion");
		if ((s = dl_first(d, e, "nsAccountLock")) != NULL) {
			o.disabled = strcasecmp(s, "TRUE") == 0;
			free(s);
		}
		if (o.type == DT_USER) {
			o.principal = dl_first(d, e, "krbPrincipalName");
			if (o.principal == NULL && (s = dl_first(d, e,
			    "uid")) != NULL) {
				if (asprintf(&o.principal, "%s@%s", s,
				    d->realm) == -1)
					o.principal = NULL;
				free(s);
			}
		}
	}
	if (o.type == DT_GROUP)
		o.members = dl_members(d, e, dn);
	if (o.type != DT_OU)
		o.member_of = dl_dns(d, e, "memberOf");
	dl_marks(d, e, &o);
	ldap_memfree(dn);
	if (o.dn == NULL || o.guid == NULL || o.name == NULL)
		goto nomem;
	if (r->n == r->cap) {
		size_t		 nc = r->cap ? r->cap * 2 : 1024;
		struct dir_obj	*p;

		if (r->n >= DIR_OBJECTS_MAX)
			goto nomem;
		if ((p = reallocarray(r->objs, nc, sizeof(*p))) == NULL)
			goto nomem;
		r->objs = p;
		r->cap = nc;
	}
	r->objs[r->n++] = o;
	return 0;
 skip:
	ldap_memfree(dn);
	dl_obj_free(&o);
	r->skipped++;
	return 0;
 nomem:
	dl_obj_free(&o);
	return -1;
}

/* A GUID-only entry: still present (reconcile) or a tombstone. */
static int
dl_guid_entry(struct dl *d, LDAPMessage *e, char ***arr, size_t *n,
    size_t *cap)
{
	char	*dn, *g;

	if ((dn = ldap_get_dn(d->ld, e)) == NULL)
		return 0;
	g = dl_guid(d, e, dn);
	ldap_memfree(dn);
	if (g == NULL || dl_push_str(arr, n, cap, g) == -1) {
		free(g);
		return -1;
	}
	return 0;
}

enum dl_what { DL_OBJECTS, DL_PRESENT, DL_DELETED };

/*
 * A paged subtree search.  Returns the LDAP result code (LDAP_SUCCESS),
 * or -1 when out of memory or stopping, err set either way on failure.
 */
static int
dl_paged(struct dl *d, const char *base, const char *filter,
    char *const *attrs, LDAPControl *extra, enum dl_what what, char *err,
    size_t errlen)
{
	struct berval	 cookie = { 0, NULL }, *newc;
	struct timeval	 tv = { DIR_OP_TIMEOUT_S, 0 };
	LDAPControl	*pc, *ctrls[3], **rctrls, *c;
	LDAPMessage	*res, *m;
	ber_int_t	 total;
	char		*matched, *emsg;
	int		 rc, prc, msgid, ret = LDAP_SUCCESS;

	for (;;) {
		if (*d->stopping) {
			dl_seterr(err, errlen, "the server is stopping");
			ret = -1;
			break;
		}
		pc = NULL;
		if ((rc = ldap_create_page_control(d->ld, DIR_PAGE_SIZE,
		    &cookie, 0, &pc)) != LDAP_SUCCESS) {
			dl_seterr(err, errlen, "paged results: %s",
			    ldap_err2string(rc));
			ret = rc;
			break;
		}
		ctrls[0] = pc;
		ctrls[1] = extra;
		ctrls[2] = NULL;
		/*
		 * Entries are taken one by one as they arrive, so decoding
		 * overlaps the server's sending (as ldapsearch does).
		 */
		rc = ldap_search_ext(d->ld, base, LDAP_SCOPE_SUBTREE, filter,
		    (char **)(uintptr_t)attrs, 0, ctrls, NULL, &tv, 0, &msgid);
		ldap_control_free(pc);
		if (rc != LDAP_SUCCESS) {
			dl_conn_error(d, rc, "search", err, errlen);
			ret = rc;
			break;
		}
		res = NULL;
		for (;;) {
			struct timeval	 t = { DIR_OP_TIMEOUT_S, 0 };
			int		 r2 = 0, type;

			m = NULL;
			type = ldap_result(d->ld, msgid, LDAP_MSG_ONE, &t, &m);
			if (type == 0 || type == -1 || *d->stopping) {
				if (m != NULL)
					ldap_msgfree(m);
				ldap_abandon_ext(d->ld, msgid, NULL, NULL);
				if (*d->stopping)
					dl_seterr(err, errlen, "the server is "
					    "stopping");
				else
					dl_conn_error(d, type == 0 ?
					    LDAP_TIMEOUT : LDAP_SERVER_DOWN,
					    "search", err, errlen);
				ber_memfree(cookie.bv_val);
				return type == 0 ? LDAP_TIMEOUT : -1;
			}
			if (type == LDAP_RES_SEARCH_RESULT) {
				res = m;
				break;
			}
			/* References are not chased. */
			if (type == LDAP_RES_SEARCH_ENTRY) {
				if (what == DL_OBJECTS)
					r2 = dl_entry(d, m);
				else if (what == DL_PRESENT)
					r2 = dl_guid_entry(d, m,
					    &d->res->present,
					    &d->res->npresent,
					    &d->res->cappresent);
				else
					r2 = dl_guid_entry(d, m,
					    &d->res->deleted,
					    &d->res->ndeleted,
					    &d->res->capdeleted);
			}
			dl_cache_clear(d);
			ldap_msgfree(m);
			if (r2 == -1) {
				ldap_abandon_ext(d->ld, msgid, NULL, NULL);
				dl_seterr(err, errlen, "out of memory (or more "
				    "than %d objects)", DIR_OBJECTS_MAX);
				ber_memfree(cookie.bv_val);
				return -1;
			}
		}
		rctrls = NULL;
		matched = emsg = NULL;
		prc = ldap_parse_result(d->ld, res, &rc, &matched, &emsg, NULL,
		    &rctrls, 1);
		if (prc != LDAP_SUCCESS)
			rc = prc;
		if (rc != LDAP_SUCCESS) {
			if (rc == LDAP_NO_SUCH_OBJECT)
				dl_seterr(err, errlen, "base DN does not exist: "
				    "%s", base);
			else
				dl_seterr(err, errlen, "search of %s failed: "
				    "%s%s%s", base, ldap_err2string(rc),
				    emsg && *emsg ? ": " : "", emsg ? emsg : "");
			ldap_memfree(matched);
			ldap_memfree(emsg);
			ldap_controls_free(rctrls);
			ret = rc;
			break;
		}
		ldap_memfree(matched);
		ldap_memfree(emsg);
		newc = NULL;
		ber_memfree(cookie.bv_val);
		cookie.bv_val = NULL;
		cookie.bv_len = 0;
		if ((c = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls,
		    NULL)) != NULL) {
			struct berval	 nc = { 0, NULL };

			if (ldap_parse_pageresponse_control(d->ld, c, &total,
			    &nc) == LDAP_SUCCESS)
				cookie = nc;
			(void)newc;
		}
		ldap_controls_free(rctrls);
		if (cookie.bv_len == 0)
			break;
	}
	ber_memfree(cookie.bv_val);
	return ret;
}

/* A base-scope read of one attribute; NULL if absent. */
static char *
dl_read_attr(struct dl *d, const char *base, const char *attr, int *rcp)
{
	struct timeval	 tv = { DIR_OP_TIMEOUT_S, 0 };
	LDAPMessage	*res = NULL, *e;
	char		*attrs[2] = { (char *)(uintptr_t)attr, NULL };
	char		*s = NULL;
	int		 rc;

	rc = ldap_search_ext_s(d->ld, base, LDAP_SCOPE_BASE,
	    "(objectClass=*)", attrs, 0, NULL, NULL, &tv, 1, &res);
	*rcp = rc;
	if (res != NULL && (e = ldap_first_entry(d->ld, res)) != NULL &&
	    strcmp(attr, "1.1") != 0)
		s = dl_first(d, e, attr);
	dl_cache_clear(d);
	if (res != NULL)
		ldap_msgfree(res);
	return s;
}

static int
dl_bind(struct dl *d, char *err, size_t errlen)
{
	const struct dir_source	*s = d->src;
	struct berval		 cred;
	int			 rc;
	char			 diag[256];

	if (strcmp(s->bind_method, "gssapi") == 0)
		return dir_gss_bind(d->ld, s, err, errlen);
	if (s->bind_dn == NULL || s->password == NULL ||
	    s->password_len == 0) {
		dl_seterr(err, errlen, "wrong credentials: a simple bind needs "
		    "a DN and a password");
		return -1;
	}
	cred.bv_val = s->password;
	cred.bv_len = s->password_len;
	rc = ldap_sasl_bind_s(d->ld, s->bind_dn, LDAP_SASL_SIMPLE, &cred,
	    NULL, NULL, NULL);
	if (rc == LDAP_SUCCESS)
		return 0;
	if (rc == LDAP_INVALID_CREDENTIALS) {
		dl_diag(d->ld, diag, sizeof(diag));
		dl_seterr(err, errlen, "wrong credentials: the server refused "
		    "the bind as %s%s%s", s->bind_dn, diag[0] ? ": " : "",
		    diag);
	} else
		dl_conn_error(d, rc, "bind", err, errlen);
	return -1;
}

static int
dl_connect(struct dl *d, char *err, size_t errlen)
{
	const struct dir_source	*s = d->src;
	struct timeval		 nt = { DIR_CONNECT_TIMEOUT_S, 0 };
	struct timeval		 ot = { DIR_OP_TIMEOUT_S, 0 };
	int			 v3 = LDAP_VERSION3, req, zero = 0, rc;

	if ((rc = ldap_initialize(&d->ld, s->url)) != LDAP_SUCCESS) {
		dl_seterr(err, errlen, "bad URL %s: %s", s->url,
		    ldap_err2string(rc));
		return -1;
	}
	req = s->tls_verify ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
	if (ldap_set_option(d->ld, LDAP_OPT_PROTOCOL_VERSION, &v3) ||
	    ldap_set_option(d->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) ||
	    ldap_set_option(d->ld, LDAP_OPT_NETWORK_TIMEOUT, &nt) ||
	    ldap_set_option(d->ld, LDAP_OPT_TIMEOUT, &ot) ||
	    ldap_set_option(d->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &req) ||
	    (s->ca_file != NULL && ldap_set_option(d->ld,
	    LDAP_OPT_X_TLS_CACERTFILE, s->ca_file)) ||
	    ldap_set_option(d->ld, LDAP_OPT_X_TLS_NEWCTX, &zero)) {
		dl_seterr(err, errlen, "cannot set the LDAP options (TLS "
		    "CA file %s?)", s->ca_file ? s->ca_file : "-");
		return -1;
	}
	if (s->starttls && strncasecmp(s->url, "ldaps:", 6) != 0 &&
	    (rc = ldap_start_tls_s(d->ld, NULL, NULL)) != LDAP_SUCCESS) {
		if (rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT) {
			dl_conn_error(d, rc, "StartTLS", err, errlen);
			return -1;
		}
		if (rc == LDAP_CONNECT_ERROR || rc == LDAP_PROTOCOL_ERROR ||
		    rc == LDAP_UNAVAILABLE) {
			char	 diag[256];

			dl_diag(d->ld, diag, sizeof(diag));
			dl_seterr(err, errlen, "TLS verification failed with "
			    "%s (StartTLS): %s; is the server's certificate "
			    "signed by the CA file %s?", s->url,
			    diag[0] ? diag : ldap_err2string(rc),
			    s->ca_file ? s->ca_file : "(system CAs)");
			return -1;
		}
		dl_conn_error(d, rc, "StartTLS", err, errlen);
		return -1;
	}
	return dl_bind(d, err, errlen);
}

static char *
dl_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
dl_fmt(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r == -1 ? NULL : s;
}

static int
dl_ad(const struct dir_source *s)
{
	return strcmp(s->flavor, "ad") == 0 || strcmp(s->flavor, "samba") == 0;
}

int
dir_ldap_poll(const struct dir_source *s, volatile int *stopping,
    struct dir_result *r, char *err, size_t errlen)
{
	struct dl	 d;
	char		 filter[1024], *hc, *dnbase = NULL, *x;
	char *const	*attrs;
	const char	*classes;
	uint64_t	 mark = 0;
	int		 rc, incr, ret = -1;

	memset(r, 0, sizeof(*r));
	memset(&d, 0, sizeof(d));
	d.src = s;
	d.res = r;
	d.stopping = stopping;
	d.ad = dl_ad(s);
	if (s->realm != NULL && s->realm[0] != '\0')
		strlcpy(d.realm, s->realm, sizeof(d.realm));
	else if (ldapval_dn_realm(s->base_dn, d.realm, sizeof(d.realm)) == -1)
		strlcpy(d.realm, "UNKNOWN", sizeof(d.realm));
	for (x = d.realm; *x != '\0'; x++)
		*x = (char)toupper((unsigned char)*x);

	if (dl_connect(&d, err, errlen) == -1)
		goto out;
	/* The base must exist: a clear error rather than an empty import. */
	free(dl_read_attr(&d, s->base_dn, "1.1", &rc));
	if (rc == LDAP_NO_SUCH_OBJECT) {
		dl_seterr(err, errlen, "base DN does not exist: %s",
		    s->base_dn);
		goto out;
	}
	if (rc != LDAP_SUCCESS) {
		dl_conn_error(&d, rc, "reading the base DN", err, errlen);
		goto out;
	}
	attrs = d.ad ? ad_attrs : ipa_attrs;
	classes = d.ad ? ad_classes : ipa_classes;
	incr = !s->full && s->mark != NULL && s->mark[0] != '\0';

	if (d.ad) {
		/* Read before searching: changes during the poll come next. */
		hc = dl_read_attr(&d, "", "highestCommittedUSN", &rc);
		if (incr && (strncmp(s->mark, "usn:", 4) != 0 ||
		    ldapval_u64(s->mark + 4, strlen(s->mark + 4), &mark) == -1))
			incr = 0;
		if (incr)
			snprintf(filter, sizeof(filter),
			    "(&(uSNChanged>=%" PRIu64 ")%s)", mark + 1, classes);
		else
			strlcpy(filter, classes, sizeof(filter));
		rc = dl_paged(&d, s->base_dn, filter, attrs, NULL, DL_OBJECTS,
		    err, errlen);
		if (rc != LDAP_SUCCESS) {
			free(hc);
			goto out;
		}
		if (incr) {
			LDAPControl	*sd = NULL;
			struct berval	 empty = { 0, NULL };
			char		 e2[256];

			/* Tombstones; servers without them answer nothing. */
			if (asprintf(&dnbase, "CN=Deleted Objects,%s",
			    s->base_dn) != -1 && ldap_control_create(
			    OID_SHOW_DELETED, 0, &empty, 1, &sd) ==
			    LDAP_SUCCESS) {
				snprintf(filter, sizeof(filter),
				    "(&(isDeleted=TRUE)(uSNChanged>=%" PRIu64
				    "))", mark + 1);
				(void)dl_paged(&d, dnbase, filter,
				    ad_guid_attrs, sd, DL_DELETED, e2,
				    sizeof(e2));
			}
			if (sd != NULL)
				ldap_control_free(sd);
		}
		if (hc != NULL && ldapval_u64(hc, strlen(hc), &mark) == 0)
			r->mark = dl_fmt("usn:%" PRIu64, mark);
		else if (d.have_usn && (!incr || d.max_usn > mark))
			r->mark = dl_fmt("usn:%" PRIu64, d.max_usn);
		else if (incr)
			r->mark = strdup(s->mark);
		free(hc);
	} else {
		char	 esc[256];

		if (incr && strncmp(s->mark, "csn:", 4) == 0 &&
		    ldapval_filter_escape(s->mark + 4, esc, sizeof(esc)) == 0)
			snprintf(filter, sizeof(filter), "(&(entryCSN>=%s)"
			    "(!(entryCSN=%s))%s)", esc, esc, classes);
		else if (incr && strncmp(s->mark, "usn:", 4) == 0 &&
		    ldapval_filter_escape(s->mark + 4, esc, sizeof(esc)) == 0)
			snprintf(filter, sizeof(filter), "(&(entryUSN>=%s)"
			    "(!(entryUSN=%s))%s)", esc, esc, classes);
		else if (incr && strncmp(s->mark, "ts:", 3) == 0 &&
		    ldapval_filter_escape(s->mark + 3, esc, sizeof(esc)) == 0)
			/* One-second grain: the boundary is read again. */
			snprintf(filter, sizeof(filter),
			    "(&(modifyTimestamp>=%s)%s)", esc, classes);
		else {
			incr = 0;
			strlcpy(filter, classes, sizeof(filter));
		}
		rc = dl_paged(&d, s->base_dn, filter, attrs, NULL, DL_OBJECTS,
		    err, errlen);
		if (rc != LDAP_SUCCESS)
			goto out;
		if (incr) {
			/* Deletions: what is still there, GUIDs only. */
			if (dl_paged(&d, s->base_dn, classes, ipa_guid_attrs,
			    NULL, DL_PRESENT, err, errlen) != LDAP_SUCCESS)
				goto out;
			r->present_valid = 1;
		}
		if (d.max_csn[0] != '\0')
			r->mark = dl_fmt("csn:%s", d.max_csn);
		else if (d.max_eusn[0] != '\0')
			r->mark = dl_fmt("usn:%s", d.max_eusn);
		else if (d.max_ts[0] != '\0')
			r->mark = dl_fmt("ts:%s", d.max_ts);
		else if (incr)
			r->mark = strdup(s->mark);
	}
	r->full = !incr;
	strlcpy(r->kind, incr ? "incremental" : "full", sizeof(r->kind));
	ret = 0;
 out:
	dl_cache_clear(&d);
	free(dnbase);
	if (d.ld != NULL)
		ldap_unbind_ext_s(d.ld, NULL, NULL);
	return ret;
}

void
dir_result_free(struct dir_result *r)
{
	size_t	 i;

	for (i = 0; i < r->n; i++)
		dl_obj_free(&r->objs[i]);
	free(r->objs);
	for (i = 0; i < r->ndeleted; i++)
		free(r->deleted[i]);
	free(r->deleted);
	for (i = 0; i < r->npresent; i++)
		free(r->present[i]);
	free(r->present);
	free(r->mark);
	memset(r, 0, sizeof(*r));
}

void
dir_source_free(struct dir_source *s)
{
	if (s == NULL)
		return;
	free(s->url);
	free(s->base_dn);
	free(s->bind_method);
	free(s->bind_dn);
	if (s->password != NULL) {
		explicit_bzero(s->password, s->password_len);
		free(s->password);
	}
	free(s->principal);
	if (s->keytab != NULL) {
		explicit_bzero(s->keytab, s->keytab_len);
		free(s->keytab);
	}
	free(s->ca_file);
	free(s->realm);
	free(s->mark);
	free(s);
}
