/* SPDX-License-Identifier: MIT */
/*
 * The node's housekeeping (see housekeeping.h).
 *
 * Retention: each task directory that ended is a record {dir, expiry} in
 * memory and a line "<expiry ms> <dir>" appended to the journal
 * <stateDir>/retention (first line "batchd-retention 1").  Appends are not
 * fsynced: a line lost in a power failure leaves a directory behind, which
 * costs disk, not correctness.  A sweep runs on the loop thread up to the
 * point where it renames each expired directory, not in use by a running
 * task, into <nodeRoot>/workitems/.removing/, so a task that starts again
 * in the same place gets a fresh directory; a worker thread then removes
 * the renamed trees and rewrites the journal with what is left (atomic,
 * fsynced).  Lines appended while that rewrite was under way are appended
 * again once it is done.  One sweep at a time.
 *
 * The records are indexed by directory (an open-addressing hash of their
 * positions, rebuilt when it fills or a sweep compacts the array), so a
 * task's end costs the same with 100,000 records as with ten.
 *
 * Free space: statvfs() of the node root at each tick (a cheap system
 * call), compared with the reserve; the text of the problem is kept for
 * the node's row.
 *
 * Handles: one timer; bd_housekeeping_free() closes it and frees once the
 * timer is closed and no sweep is in its worker.
 */
#include "housekeeping.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "clock.h"
#include "duration.h"
#include "fsutil.h"
#include "log.h"
#include "xmalloc.h"

#define HK_JOURNAL_MAGIC "batchd-retention 1\n"
#define HK_JOURNAL_MAX (64 * 1024 * 1024)

struct hk_record {
	char *dir;
	int64_t expiry_ms;
	uint64_t seq;		/* order of the append */
};

struct bd_housekeeping {
	struct bd_housekeeping_env env;
	char *journal;		/* <stateDir>/retention */
	char *trash;		/* <nodeRoot>/workitems/.removing */
	int journal_fd;
	struct hk_record *recs;
	size_t n_recs, cap_recs;
	size_t *slots;		/* index into recs + 1; 0 = free */
	size_t n_slots;		/* a power of two, > 2 * n_recs */
	uint64_t seq;
	uint64_t trash_seq;

	uv_timer_t timer;
	uv_work_t work;
	bool sweeping;		/* work in flight */
	bool freeing;
	bool timer_closed;

	/* The sweep's work: in from the loop thread, out from the worker. */
	char **doomed;		/* renamed trees to remove */
	size_t n_doomed;
	char *snapshot;		/* the journal's new text */
	uint64_t snapshot_seq;
	int removed;
	int work_status;

	int64_t free_bytes;
	char *problem;
};

/* FNV-1a of a directory name. */
static size_t
hk_hash(const char *dir)
{
	uint64_t h = 1469598103934665603ULL;

	for (const unsigned char *p = (const unsigned char *)dir; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)h;
}

/* The slot that holds dir's record, or the free slot where it would go. */
static size_t *
hk_slot(const struct bd_housekeeping *hk, const char *dir)
{
	size_t mask = hk->n_slots - 1, i = hk_hash(dir) & mask;

	while (hk->slots[i] != 0 &&
	    strcmp(hk->recs[hk->slots[i] - 1].dir, dir) != 0)
		i = (i + 1) & mask;
	return &hk->slots[i];
}

/* Indexes the records again, in a table of at least 4 * n_recs slots. */
static void
hk_reindex(struct bd_housekeeping *hk)
{
	size_t n = 64;

	while (n < 4 * hk->n_recs)
		n *= 2;
	free(hk->slots);
	hk->slots = xcalloc(n, sizeof(*hk->slots));
	hk->n_slots = n;
	for (size_t i = 0; i < hk->n_recs; i++)
		*hk_slot(hk, hk->recs[i].dir) = i + 1;
}

/* Adds dir's record, or moves its expiry; returns the record. */
static struct hk_record *
hk_add_record(struct bd_housekeeping *hk, const char *dir, int64_t expiry_ms)
{
	struct hk_record *r;
	size_t *slot;

	if (2 * (hk->n_recs + 1) >= hk->n_slots)
		hk_reindex(hk);
	slot = hk_slot(hk, dir);
	if (*slot != 0) {
		r = &hk->recs[*slot - 1];
		r->expiry_ms = expiry_ms;
		r->seq = ++hk->seq;
		return r;
	}
	if (hk->n_recs == hk->cap_recs) {
		hk->cap_recs = hk->cap_recs ? hk->cap_recs * 2 : 16;
		hk->recs = xreallocarray(hk->recs, hk->cap_recs,
		    sizeof(*hk->recs));
	}
	r = &hk->recs[hk->n_recs];
	r->dir = xstrdup(dir);
	r->expiry_ms = expiry_ms;
	r->seq = ++hk->seq;
	*slot = ++hk->n_recs;
	return r;
}

/* Parses the journal's text into records; bad lines are skipped. */
static void
hk_parse_journal(struct bd_housekeeping *hk, char *text)
{
	char *line, *save = NULL;
	bool first = true;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *end;
		long long expiry;

		if (first) {
			first = false;
			if (strncmp(line, HK_JOURNAL_MAGIC,
			    strlen(HK_JOURNAL_MAGIC) - 1) == 0)
				continue;
		}
		errno = 0;
		expiry = strtoll(line, &end, 10);
		if (errno != 0 || end == line || *end != ' ' || end[1] != '/')
			continue;
		hk_add_record(hk, end + 1, (int64_t)expiry);
	}
}

/* The journal's text for the records now. */
static char *
hk_journal_text(const struct bd_housekeeping *hk)
{
	size_t cap = strlen(HK_JOURNAL_MAGIC) + 1, len;
	char *text;

	for (size_t i = 0; i < hk->n_recs; i++)
		cap += strlen(hk->recs[i].dir) + 24;
	text = xmalloc(cap);
	len = (size_t)snprintf(text, cap, "%s", HK_JOURNAL_MAGIC);
	for (size_t i = 0; i < hk->n_recs; i++)
		len += (size_t)snprintf(text + len, cap - len, "%" PRId64 " %s\n",
		    hk->recs[i].expiry_ms, hk->recs[i].dir);
	return text;
}

/* Opens the journal for appending, creating it with its first line. */
static int
hk_open_journal(struct bd_housekeeping *hk)
{
	int fd = open(hk->journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600);
	struct stat st;

	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == 0 && st.st_size == 0 &&
	    write(fd, HK_JOURNAL_MAGIC, strlen(HK_JOURNAL_MAGIC)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	hk->journal_fd = fd;
	return 0;
}

static void
hk_append(struct bd_housekeeping *hk, const struct hk_record *r)
{
	char *line;
	size_t n;

	if (hk->journal_fd < 0)
		return;
	line = xasprintf("%" PRId64 " %s\n", r->expiry_ms, r->dir);
	n = strlen(line);
	if (write(hk->journal_fd, line, n) != (ssize_t)n)
		log_warn("housekeeping: %s", hk->journal);
	free(line);
}

int
bd_housekeeping_new(const struct bd_housekeeping_env *env,
    struct bd_housekeeping **out, char **cause)
{
	struct bd_housekeeping *hk = xcalloc(1, sizeof(*hk));
	char *text;
	size_t len;
	int rc;

	hk->env = *env;
	hk->journal_fd = -1;
	hk->free_bytes = -1;
	hk->journal = bd_path_join(env->state_dir, "retention");
	hk->trash = xasprintf("%s/workitems/.removing", env->node_root);
	if ((rc = bd_mkdir_p(env->state_dir, 0700)) < 0 ||
	    (rc = bd_mkdir_p(hk->trash, 0700)) < 0) {
		*cause = xasprintf("%s: %s", rc == 0 ? hk->trash :
		    env->state_dir, strerror(-rc));
		goto fail;
	}
	rc = bd_read_file(hk->journal, HK_JOURNAL_MAX, &text, &len);
	if (rc == 0) {
		hk_parse_journal(hk, text);
		free(text);
	} else if (rc != -ENOENT) {
		/* An unreadable journal only leaves directories behind. */
		log_warnx("housekeeping: %s: %s", hk->journal, strerror(-rc));
	}
	if ((rc = hk_open_journal(hk)) < 0) {
		*cause = xasprintf("%s: %s", hk->journal, strerror(-rc));
		goto fail;
	}
	uv_timer_init(env->loop, &hk->timer);
	hk->timer.data = hk;
	hk->work.data = hk;
	*out = hk;
	return 0;
fail:
	for (size_t i = 0; i < hk->n_recs; i++)
		free(hk->recs[i].dir);
	free(hk->recs);
	free(hk->slots);
	free(hk->journal);
	free(hk->trash);
	free(hk);
	return rc;
}

void
bd_housekeeping_retain(struct bd_housekeeping *hk, const char *dir,
    int64_t retention_ms)
{
	int64_t now = bd_clock_now_ms();

	/* No "changed" call here: that would cost a node write per task. */
	if (retention_ms >= BD_DURATION_INFINITE ||
	    retention_ms > INT64_MAX - now)
		return;
	hk_append(hk, hk_add_record(hk, dir, now + retention_ms));
}

static void
hk_format_size(int64_t bytes, char *buf, size_t len)
{
	if (bytes >= 1024 * 1024)
		snprintf(buf, len, "%.1f MiB", (double)bytes / 1048576.0);
	else
		snprintf(buf, len, "%" PRId64 " bytes", bytes);
}

bool
bd_housekeeping_check_space(struct bd_housekeeping *hk)
{
	struct statvfs sv;
	char have[32], want[32];
	bool was = hk->problem != NULL, low;

	if (statvfs(hk->env.node_root, &sv) == -1) {
		log_warn("housekeeping: %s", hk->env.node_root);
		return was;
	}
	hk->free_bytes = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
	low = hk->env.reserve_bytes > 0 &&
	    (uint64_t)hk->free_bytes < hk->env.reserve_bytes;
	free(hk->problem);
	hk->problem = NULL;
	if (low) {
		hk_format_size(hk->free_bytes, have, sizeof(have));
		hk_format_size((int64_t)hk->env.reserve_bytes, want,
		    sizeof(want));
		hk->problem = xasprintf("free space under %s is %s, below the "
		    "reserve of %s (tasks.freeSpaceReserveBytes)",
		    hk->env.node_root, have, want);
	}
	if (low != was) {
		if (low)
			log_warnx("housekeeping: %s: taking no new tasks",
			    hk->problem);
		else
			log_info("housekeeping: free space under %s is back "
			    "above the reserve", hk->env.node_root);
		if (hk->env.changed != NULL)
			hk->env.changed(hk->env.arg);
	}
	return low;
}

/* ---- sweeping ---------------------------------------------------------- */

static void
hk_maybe_free(struct bd_housekeeping *hk)
{
	if (!hk->freeing || hk->sweeping || !hk->timer_closed)
		return;
	if (hk->journal_fd >= 0)
		close(hk->journal_fd);
	for (size_t i = 0; i < hk->n_recs; i++)
		free(hk->recs[i].dir);
	free(hk->recs);
	free(hk->slots);
	free(hk->journal);
	free(hk->trash);
	free(hk->problem);
	free(hk);
}

/* In a worker: remove the renamed trees, rewrite the journal. */
static void
hk_sweep_work(uv_work_t *w)
{
	struct bd_housekeeping *hk = w->data;
	int rc;

	hk->removed = 0;
	hk->work_status = 0;
	for (size_t i = 0; i < hk->n_doomed; i++) {
		if ((rc = bd_rm_rf(hk->doomed[i])) < 0)
			hk->work_status = rc;
		else
			hk->removed++;
	}
	if (hk->snapshot != NULL && (rc = bd_write_file_atomic(hk->journal,
	    hk->snapshot, strlen(hk->snapshot), 0600)) < 0)
		hk->work_status = rc;
}

static void
hk_sweep_done(uv_work_t *w, int status)
{
	struct bd_housekeeping *hk = w->data;

	hk->sweeping = false;
	if (hk->work_status < 0)
		log_warnx("housekeeping: removing task directories: %s",
		    strerror(-hk->work_status));
	else if (hk->removed > 0)
		log_info("housekeeping: removed %d task director%s past their "
		    "retention time", hk->removed, hk->removed == 1 ? "y" :
		    "ies");
	for (size_t i = 0; i < hk->n_doomed; i++)
		free(hk->doomed[i]);
	free(hk->doomed);
	hk->doomed = NULL;
	hk->n_doomed = 0;
	if (hk->snapshot != NULL && hk->work_status == 0 && !hk->freeing) {
		/* The journal was replaced: append to the new one, and again
		 * what came after the snapshot. */
		if (hk->journal_fd >= 0)
			close(hk->journal_fd);
		hk->journal_fd = -1;
		if (hk_open_journal(hk) < 0)
			log_warn("housekeeping: %s", hk->journal);
		for (size_t i = 0; i < hk->n_recs; i++)
			if (hk->recs[i].seq > hk->snapshot_seq)
				hk_append(hk, &hk->recs[i]);
	}
	free(hk->snapshot);
	hk->snapshot = NULL;
	if (hk->env.changed != NULL && !hk->freeing)
		hk->env.changed(hk->env.arg);
	hk_maybe_free(hk);
}

/* Adds what an earlier run left in the trash to the removal. */
static void
hk_add_old_trash(struct bd_housekeeping *hk, size_t *cap)
{
	DIR *d = opendir(hk->trash);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (hk->n_doomed == *cap) {
			*cap = *cap ? *cap * 2 : 8;
			hk->doomed = xreallocarray(hk->doomed, *cap,
			    sizeof(*hk->doomed));
		}
		hk->doomed[hk->n_doomed++] = bd_path_join(hk->trash,
		    de->d_name);
	}
	closedir(d);
}

static void
hk_sweep(struct bd_housekeeping *hk, bool old_trash)
{
	int64_t now = bd_clock_now_ms();
	size_t cap = 0, kept = 0;
	bool changed = false;

	if (hk->sweeping || hk->freeing)
		return;
	if (old_trash)
		hk_add_old_trash(hk, &cap);
	for (size_t i = 0; i < hk->n_recs; i++) {
		struct hk_record *r = &hk->recs[i];
		char *to;

		if (r->expiry_ms > now || (hk->env.in_use != NULL &&
		    hk->env.in_use(hk->env.arg, r->dir))) {
			hk->recs[kept++] = *r;
			continue;
		}
		changed = true;
		to = xasprintf("%s/%" PRIu64 "-%" PRId64, hk->trash,
		    ++hk->trash_seq, now);
		if (rename(r->dir, to) == -1) {
			if (errno == EXDEV) {
				/* Not on the node root's filesystem: remove
				 * it where it is. */
				free(to);
				to = xstrdup(r->dir);
			} else {
				if (errno != ENOENT)
					log_warn("housekeeping: %s", r->dir);
				free(to);
				to = NULL;
			}
		}
		if (to != NULL) {
			if (hk->n_doomed == cap) {
				cap = cap ? cap * 2 : 8;
				hk->doomed = xreallocarray(hk->doomed, cap,
				    sizeof(*hk->doomed));
			}
			hk->doomed[hk->n_doomed++] = to;
		}
		free(r->dir);
	}
	hk->n_recs = kept;
	if (changed)
		hk_reindex(hk);
	if (!changed && hk->n_doomed == 0)
		return;
	if (changed) {
		hk->snapshot = hk_journal_text(hk);
		hk->snapshot_seq = hk->seq;
	}
	if (uv_queue_work(hk->env.loop, &hk->work, hk_sweep_work,
	    hk_sweep_done) < 0) {
		/* Cannot happen with a live loop; run it here. */
		hk_sweep_work(&hk->work);
		hk_sweep_done(&hk->work, 0);
		return;
	}
	hk->sweeping = true;
}

void
bd_housekeeping_sweep(struct bd_housekeeping *hk)
{
	hk_sweep(hk, false);
}

static void
hk_on_timer(uv_timer_t *t)
{
	struct bd_housekeeping *hk = t->data;

	bd_housekeeping_check_space(hk);
	hk_sweep(hk, false);
}

void
bd_housekeeping_start(struct bd_housekeeping *hk)
{
	bd_housekeeping_check_space(hk);
	hk_sweep(hk, true);
	uv_timer_start(&hk->timer, hk_on_timer, (uint64_t)hk->env.interval_ms,
	    (uint64_t)hk->env.interval_ms);
}

const char *
bd_housekeeping_problem(const struct bd_housekeeping *hk)
{
	return hk->problem;
}

int64_t
bd_housekeeping_free_bytes(const struct bd_housekeeping *hk)
{
	return hk->free_bytes;
}

size_t
bd_housekeeping_retained(const struct bd_housekeeping *hk)
{
	return hk->n_recs;
}

void
bd_housekeeping_set_reserve(struct bd_housekeeping *hk, uint64_t reserve_bytes)
{
	hk->env.reserve_bytes = reserve_bytes;
	bd_housekeeping_check_space(hk);
}

void
bd_housekeeping_set_interval(struct bd_housekeeping *hk, int64_t interval_ms)
{
	hk->env.interval_ms = interval_ms;
	if (uv_is_active((uv_handle_t *)&hk->timer))
		uv_timer_start(&hk->timer, hk_on_timer, (uint64_t)interval_ms,
		    (uint64_t)interval_ms);
}

bool
bd_housekeeping_busy(const struct bd_housekeeping *hk)
{
	return hk->sweeping;
}

static void
hk_on_close(uv_handle_t *h)
{
	struct bd_housekeeping *hk = h->data;

	hk->timer_closed = true;
	hk_maybe_free(hk);
}

void
bd_housekeeping_free(struct bd_housekeeping *hk)
{
	if (hk == NULL)
		return;
	hk->freeing = true;
	uv_close((uv_handle_t *)&hk->timer, hk_on_close);
}
