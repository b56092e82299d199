/* SPDX-License-Identifier: MIT */
#ifndef BD_METRICS_H
#define BD_METRICS_H

/*
 * Prometheus metrics of the node (docs/operations.md lists them).
 *
 * Two halves.  Counters that modules far from the daemon bump (files and
 * bytes moved, transfer errors, task runs by result and their durations)
 * are process-wide atomics behind bd_metrics_add() and friends: one call
 * at the place the event happens, from the loop or a worker thread.
 * Everything else (node state, slots, polls, leases) the daemon already
 * counts; it is read through a sample callback when the text is made.
 *
 * The exporter (bd_metrics_start) renders the text exposition format
 * (version 0.0.4) and publishes it in two optional ways: a file
 * DIR/batchd.prom replaced atomically every interval and once more at
 * stop, for node_exporter's textfile collector; and GET /metrics over
 * HTTP on a loopback address, served on the daemon's loop.
 */

#include <stdint.h>
#include <uv.h>

#include "daemon.h"
#include "task_info.h"

/* The process-wide counters. */
enum bd_metric {
	BD_METRIC_DOWNLOAD_FILES,	/* resource files fetched */
	BD_METRIC_DOWNLOAD_BYTES,
	BD_METRIC_DOWNLOAD_ERRORS,	/* resource file sets that failed */
	BD_METRIC_UPLOAD_FILES,		/* output files stored */
	BD_METRIC_UPLOAD_BYTES,
	BD_METRIC_UPLOAD_ERRORS,	/* output file sets that failed */
	BD_METRIC_QUEUE_ERRORS,		/* receives from the queue that failed */
	BD_METRIC_TASK_RUNS_SUCCEEDED,	/* runs of a task's command line */
	BD_METRIC_TASK_RUNS_FAILED,
	BD_METRIC_COUNT
};

/* Adds n to counter m.  Any thread. */
void bd_metrics_add(enum bd_metric m, uint64_t n);

/*
 * Counts one file of size bytes moved: 1 on files, size on the bytes
 * counter that follows files in the enum.  Any thread.
 */
void bd_metrics_add_file(enum bd_metric files, uint64_t size);

/* The same for the regular file at path (stat); NULL counts nothing. */
void bd_metrics_add_path(enum bd_metric files, const char *path);

/*
 * Counts a run of a task's command line that ended (info of the runner's
 * outcome, borrowed): by result, and its duration in the histogram when
 * it started and ended.
 */
void bd_metrics_task_ran(const struct bd_execution_info *info);

/* The value of counter m. */
uint64_t bd_metrics_get(enum bd_metric m);

/* What the daemon tells the exporter; strings borrowed until the call returns. */
struct bd_metrics_sample {
	const char *pool_id;
	const char *node_id;
	int total_slots;
	struct bd_daemon_stats stats;	/* stats.state: ComputeNodeState */
};

typedef void (*bd_metrics_sample_cb)(void *arg, struct bd_metrics_sample *out);

/*
 * The text exposition of s and the process-wide counters; *len gets its
 * length.  Caller frees.
 */
char *bd_metrics_render(const struct bd_metrics_sample *s, size_t *len);

/* How the exporter publishes; strings borrowed during bd_metrics_start(). */
struct bd_metrics_options {
	const char *textfile_dir;	/* or NULL */
	const char *listen;		/* loopback "HOST:PORT", or NULL */
	int64_t interval_ms;		/* of the textfile */
};

struct bd_metrics;

/*
 * Starts the exporter on loop: writes the textfile once at once (so a
 * directory that cannot be written fails here), then every interval;
 * listens for HTTP.  sample_cb is called on the loop whenever text is
 * made.  Returns 0 and *out (NULL when o asks for nothing), or a negative
 * errno with *cause (caller frees).
 */
int bd_metrics_start(uv_loop_t *loop, const struct bd_metrics_options *o,
    bd_metrics_sample_cb sample_cb, void *arg, struct bd_metrics **out,
    char **cause);

/* The TCP port the endpoint listens on, or 0. */
int bd_metrics_port(const struct bd_metrics *m);

/*
 * Writes the textfile a last time, stops serving and frees m once its
 * handles are closed; sample_cb is not called after this returns.  NULL
 * is allowed.
 */
void bd_metrics_stop(struct bd_metrics *m);

#endif
