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

#ifndef CANOPY_Q_TASKS_H
#define CANOPY_Q_TASKS_H

/*
 * The SQL of tasks (db/migrations/007_tasks.sql): the scheduler's tick, the
 * open runs of a device whose session came up, the agents' results (a batch
 * class), and the API's statements.  Run on database worker threads only.
 * Returns are DB_OK, DB_ERR, DB_EDOWN or QA_NOTFOUND (db/q_api.h).
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"

/* One run to deliver to its device as a 'task' message. */
struct qt_run {
	int64_t		 id;
	char		 device_id[37];
	char		 type[32];
	char		*params;	/* JSON object text, malloc'd */
	uint64_t	 expires_ms;	/* 0: never */
};

void	 qt_runs_free(struct qt_run *, size_t n);

/*
 * The scheduler's tick, one transaction: marks the runs in sent[] as sent,
 * turns due tasks into runs of their target devices, advances periodic
 * tasks, expires runs past their time, and returns the new runs.
 */
struct qt_tick {
	void		*arg;
	int64_t		*sent;		/* in, malloc'd */
	size_t		 nsent;
	struct qt_run	*runs;		/* out, malloc'd */
	size_t		 nruns;
	size_t		 nexpired;
};
int	 qt_tick_run(PGconn *, void *arg, char *err, size_t errlen);
void	 qt_tick_free(struct qt_tick *);

/* The open (pending or sent, not expired) runs of one device. */
struct qt_open {
	void		*arg;
	char		 device_id[37];	/* in */
	int		 vs_id;
	struct qt_run	*runs;		/* out, malloc'd */
	size_t		 nruns;
};
int	 qt_open_run(PGconn *, void *arg, char *err, size_t errlen);
void	 qt_open_free(struct qt_open *);

/*
 * Agents' results, qa_item records {"device","vs","run","state",
 * "exit_code"?,"output"?,"finished"}: a run already final is left as it is,
 * so a repeat is harmless.  The run of tasks_result_class (srv/tasks.c).
 */
int	 qt_result_run(PGconn *, void **items, size_t n, char *err,
	    size_t errlen);

/* The API.  scopes: "{1,2}" or NULL for the whole virtual server. */
struct qt_new {
	int		 vs_id;
	const char	*name;		/* or NULL */
	const char	*type;
	int64_t		 group;		/* 0: devices */
	int		 recursive;
	const char	*devices;	/* "{uuid,...}" or NULL */
	const char	*params;	/* JSON object text */
	const char	*schedule;	/* now, at, every */
	const char	*at;		/* ISO-8601, or NULL */
	int		 every_s;
	int		 expires_s;	/* 0: never */
	const char	*created_by;
};
int	 qt_task_create(PGconn *, const struct qt_new *, char id[24],
	    char *err, size_t errlen);
/* QA_NOTFOUND with bad set to the first device not there or not in scope. */
int	 qt_devices_check(PGconn *, int vs_id, const char *scopes,
	    const char *devices, char bad[64], char *err, size_t errlen);
/* The task with its results (as seen within scopes), or QA_NOTFOUND. */
int	 qt_task_get(PGconn *, int vs_id, const char *scopes, const char *id,
	    int with_results, json_t **out, char *err, size_t errlen);
/* Newest first; after: the last id of the previous page, or NULL. */
int	 qt_tasks_list(PGconn *, int vs_id, const char *scopes,
	    const char *after, int limit, json_t **tasks, char **next,
	    char *err, size_t errlen);
/* Cancels the task and its open runs; *nruns: how many runs. */
int	 qt_task_cancel(PGconn *, int vs_id, const char *id, int *nruns,
	    char *err, size_t errlen);

#endif
