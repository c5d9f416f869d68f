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

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

/* Set once at start-up, before any thread runs; read-only afterwards. */
static const char	*log_progname = "canopy";
static enum log_level	 log_level = LOG_LVL_INFO;
static int		 log_syslog;

#define LOG_MSG_MAX	4096

static void	vlog(int, const char *, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));
static void	logit(int, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

void
log_init(const char *progname, enum log_level level, int use_syslog)
{
	const char	*p;

	if (progname != NULL) {
		if ((p = strrchr(progname, '/')) != NULL)
			progname = p + 1;
		log_progname = progname;
	}
	log_level = level;
	log_syslog = use_syslog;
	if (log_syslog)
		openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_setlevel(enum log_level level)
{
	log_level = level;
}

enum log_level
log_getlevel(void)
{
	return log_level;
}

static const char *
prio_name(int prio)
{
	switch (prio) {
	case LOG_CRIT:
		return "fatal";
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/*
 * Formats the whole line first so that it goes out in one write(2) or one
 * syslog(3) call: lines from different threads never interleave.
 */
static void
vlog(int prio, const char *suffix, const char *fmt, va_list ap)
{
	char	 msg[LOG_MSG_MAX], line[LOG_MSG_MAX + 256];
	int	 n, saved_errno = errno;
	ssize_t	 w;
	size_t	 off, len;

	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		(void)snprintf(msg, sizeof(msg), "(unformattable log message)");
	if (log_syslog) {
		if (suffix != NULL)
			syslog(prio, "%s: %s", msg, suffix);
		else
			syslog(prio, "%s", msg);
		errno = saved_errno;
		return;
	}
	if (suffix != NULL)
		n = snprintf(line, sizeof(line), "%s: %s: %s: %s\n",
		    log_progname, prio_name(prio), msg, suffix);
	else
		n = snprintf(line, sizeof(line), "%s: %s: %s\n",
		    log_progname, prio_name(prio), msg);
	if (n < 0) {
		errno = saved_errno;
		return;
	}
	len = (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n;
	if ((size_t)n >= sizeof(line))
		line[len - 1] = '\n';
	for (off = 0; off < len; off += (size_t)w) {
		w = write(STDERR_FILENO, line + off, len - off);
		if (w == -1 && errno == EINTR) {
			w = 0;
			continue;
		}
		if (w <= 0)
			break;
	}
	errno = saved_errno;
}

static void
logit(int prio, const char *suffix, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(prio, suffix, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	char	 ebuf[256];
	int	 saved_errno = errno;

	/* strerror_r (GNU) may or may not use ebuf; thread-safe either way. */
	const char *e = strerror_r(saved_errno, ebuf, sizeof(ebuf));

	if (fmt == NULL) {
		logit(LOG_WARNING, NULL, "%s", e);
		errno = saved_errno;
		return;
	}
	va_start(ap, fmt);
	vlog(LOG_WARNING, e, fmt, ap);
	va_end(ap);
	errno = saved_errno;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < LOG_LVL_INFO)
		return;
	va_start(ap, fmt);
	vlog(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < LOG_LVL_DEBUG)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	char	 ebuf[256];
	const char *e = strerror_r(errno, ebuf, sizeof(ebuf));

	if (fmt == NULL) {
		logit(LOG_CRIT, NULL, "%s", e);
		exit(1);
	}
	va_start(ap, fmt);
	vlog(LOG_CRIT, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
