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
 * The one place canopyctl speaks HTTP: generic over method, path, JSON body
 * and authentication, so every command is a few lines of JSON.  TLS trusts
 * only the server's CA (pinned), never the system store.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "canopyctl.h"
#include "canopy_limits.h"

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	int	 too_big;
};

static CURL	*curl;

int
http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (curl = curl_easy_init()) == NULL) {
		ctl_warnx("cannot initialise libcurl");
		return (-1);
	}
	return (0);
}

void
http_cleanup(void)
{
	if (curl != NULL)
		curl_easy_cleanup(curl);
	curl = NULL;
	curl_global_cleanup();
}

static size_t
http_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf	*b = arg;
	size_t		 n = size * nmemb, ncap;
	char		*p;

	if (n > CTL_MAX_RESPONSE - b->len) {
		b->too_big = 1;
		return (0);	/* curl fails with a write error */
	}
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 16384;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((p = realloc(b->data, ncap)) == NULL)
			return (0);
		b->data = p;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return (n);
}

/* Says why a request could not be made, in terms a person can act on. */
static void
http_explain(struct ctl *ctl, CURLcode rc, const char *errbuf,
    const struct buf *b)
{
	const char	*detail = errbuf[0] != '\0' ? errbuf :
	    curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_URL_MALFORMAT:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		ctl_warnx("cannot connect to %s: %s", ctl->server, detail);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		if (strstr(detail, "subject name") != NULL ||
		    strstr(detail, "host name") != NULL)
			ctl_warnx("server certificate of %s is not valid for "
			    "that name: %s", ctl->server, detail);
		else
			ctl_warnx("server certificate does not match the CA "
			    "in %s (%s)", ctl->ca, detail);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		ctl_warnx("cannot use the CA file %s: %s", ctl->ca, detail);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		ctl_warnx("TLS handshake with %s failed: %s", ctl->server,
		    detail);
		break;
	case CURLE_WRITE_ERROR:
		if (b->too_big) {
			ctl_warnx("answer from %s is larger than %u bytes",
			    ctl->server, CTL_MAX_RESPONSE);
			break;
		}
		/* FALLTHROUGH */
	default:
		ctl_warnx("request to %s failed: %s", ctl->server, detail);
		break;
	}
}

int
http_request(struct ctl *ctl, enum ctl_auth auth, const char *method,
    const char *path, json_t *body, struct ctl_reply *reply)
{
	struct curl_slist	*hdrs = NULL, *h;
	struct buf		 b;
	char			 errbuf[CURL_ERROR_SIZE];
	char			*url = NULL, *payload = NULL, *authz = NULL;
	json_error_t		 jerr;
	CURLcode		 rc;
	int			 rv = -1;

	memset(&b, 0, sizeof(b));
	memset(reply, 0, sizeof(*reply));
	errbuf[0] = '\0';

	if (access(ctl->ca, R_OK) == -1) {
		ctl_warnx("cannot read the CA file %s: %s", ctl->ca,
		    strerror(errno));
		return (-1);
	}
	if (ctl->opt_vs != NULL) {
		/* --vs NAME: every request acts in that virtual server. */
		char	*vs;
		int	 n;

		if ((vs = http_escape(ctl->opt_vs)) == NULL)
			goto oom;
		n = asprintf(&url, "%s%s%cvs=%s", ctl->server, path,
		    strchr(path, '?') != NULL ? '&' : '?', vs);
		free(vs);
		if (n == -1) {
			url = NULL;
			goto oom;
		}
	} else if (asprintf(&url, "%s%s", ctl->server, path) == -1) {
		url = NULL;
		goto oom;
	}

	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
	    (long)CTL_CONNECT_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)CTL_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "canopyctl/1");
	/* Pinned: the server's own CA and nothing else. */
	curl_easy_setopt(curl, CURLOPT_CAINFO, ctl->ca);
	curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(curl, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_2);
	if (ctl->verbose > 1)
		curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);

	if ((h = curl_slist_append(hdrs, "Accept: application/json")) == NULL)
		goto oom;
	hdrs = h;
	switch (auth) {
	case CTL_AUTH_BEARER:
		if (asprintf(&authz, "Authorization: Bearer %s",
		    ctl->token) == -1) {
			authz = NULL;
			goto oom;
		}
		if ((h = curl_slist_append(hdrs, authz)) == NULL)
			goto oom;
		hdrs = h;
		break;
	case CTL_AUTH_BASIC:
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(curl, CURLOPT_USERNAME, ctl->basic_user);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, ctl->basic_password);
		/* The second factor of an account that has one. */
		if (ctl->totp != NULL) {
			if (asprintf(&authz, "X-Canopy-TOTP: %s",
			    ctl->totp) == -1) {
				authz = NULL;
				goto oom;
			}
			if ((h = curl_slist_append(hdrs, authz)) == NULL)
				goto oom;
			hdrs = h;
		}
		break;
	case CTL_AUTH_NEGOTIATE:
		/*
		 * SPNEGO from the credential cache (kinit): no password.
		 * The empty user name makes libcurl use the cached ticket.
		 */
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH,
		    (long)CURLAUTH_NEGOTIATE);
		curl_easy_setopt(curl, CURLOPT_USERPWD, ":");
		break;
	case CTL_AUTH_NONE:
		break;
	}
	if (body != NULL) {
		if ((payload = json_dumps(body, JSON_COMPACT)) == NULL)
			goto oom;
		if ((h = curl_slist_append(hdrs,
		    "Content-Type: application/json")) == NULL)
			goto oom;
		hdrs = h;
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(payload));
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0) {
		/* An explicit empty body: Content-Length: 0. */
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);

	if (ctl->verbose)
		fprintf(stderr, "> %s %s\n", method, url);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		http_explain(ctl, rc, errbuf, &b);
		goto done;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
	if (ctl->verbose)
		fprintf(stderr, "< %ld (%zu bytes)\n", reply->status, b.len);

	if (b.len > 0) {
		reply->body = json_loadb(b.data, b.len, 0, &jerr);
		if (reply->body == NULL && reply->status >= 200 &&
		    reply->status < 300) {
			ctl_warnx("%s %s: the server's answer is not JSON: %s",
			    method, path, jerr.text);
			goto done;
		}
	}
	rv = 0;
	goto done;
 oom:
	ctl_warnx("out of memory");
 done:
	curl_slist_free_all(hdrs);
	if (authz != NULL) {
		explicit_bzero(authz, strlen(authz));
		free(authz);
	}
	if (payload != NULL) {
		/* It may hold a password. */
		explicit_bzero(payload, strlen(payload));
		free(payload);
	}
	free(url);
	free(b.data);
	return (rv);
}

static const char *
http_error_message(const struct ctl_reply *reply)
{
	json_t	*err, *msg;

	if ((err = json_object_get(reply->body, "error")) != NULL &&
	    (msg = json_object_get(err, "message")) != NULL &&
	    json_is_string(msg))
		return (json_string_value(msg));
	if ((err = json_object_get(reply->body, "error")) != NULL &&
	    json_is_string(err))
		return (json_string_value(err));
	return (NULL);
}

int
http_call(struct ctl *ctl, const char *method, const char *path,
    json_t *body, struct ctl_reply *reply)
{
	enum ctl_auth	 auth;
	const char	*msg;

	if (ctl->token != NULL)
		auth = CTL_AUTH_BEARER;
	else if (ctl->basic_user != NULL)
		auth = CTL_AUTH_BASIC;
	else if (ctl->negotiate)
		auth = CTL_AUTH_NEGOTIATE;
	else
		auth = CTL_AUTH_NONE;
	if (http_request(ctl, auth, method, path, body, reply) == -1)
		return (-1);
	if (reply->status >= 200 && reply->status < 300)
		return (0);

	msg = http_error_message(reply);
	if (reply->status == 401 && auth == CTL_AUTH_BEARER)
		ctl_warnx("session expired or revoked: run canopyctl login");
	else if (reply->status == 401 && auth == CTL_AUTH_NEGOTIATE)
		ctl_warnx("Kerberos login to %s failed: %s (run kinit, or "
		    "canopyctl login --password)", ctl->server, msg != NULL &&
		    strncmp(msg, "credentials required", 20) != 0 ? msg :
		    "no usable ticket in the credential cache");
	else if (msg != NULL)
		ctl_warnx("%s", msg);
	else
		ctl_warnx("%s %s: the server answered HTTP %ld", method, path,
		    reply->status);
	http_reply_free(reply);
	return (-1);
}

void
http_reply_free(struct ctl_reply *reply)
{
	json_decref(reply->body);
	reply->body = NULL;
}

char *
http_escape(const char *s)
{
	char	*e, *r;

	if ((e = curl_easy_escape(curl, s, 0)) == NULL)
		return (NULL);
	r = strdup(e);
	curl_free(e);
	return (r);
}

int
http_query_add(char **query, const char *name, const char *value)
{
	char	*v, *q;
	int	 n;

	if ((v = http_escape(value)) == NULL)
		goto oom;
	n = asprintf(&q, "%s%c%s=%s", *query != NULL ? *query : "",
	    *query != NULL && (*query)[0] != '\0' ? '&' : '?', name, v);
	free(v);
	if (n == -1)
		goto oom;
	free(*query);
	*query = q;
	return (0);
 oom:
	ctl_warnx("out of memory");
	return (-1);
}
