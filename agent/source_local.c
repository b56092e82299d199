/* SPDX-License-Identifier: MIT */
/*
 * The task source on a local spool: a queue with the semantics of an Azure
 * Storage queue, kept in a directory that several batchd processes on one
 * machine share without a server.  docs/protocol.md §7 is the contract for
 * the layout:
 *
 *   <spool>/queues/<queue>/visible/<visibleMs>.<id>.<dequeueCount>
 *   <spool>/queues/<queue>/leased/<id>.<dequeueCount>.<expiryMs>.<owner>.<nonce>
 *   <spool>/queues/<queue>/bad/     message files that cannot be read
 *   <spool>/queues/<queue>/hint     a shared page of change counters
 *   <spool>/owners/<owner>          one per open source, flock()ed
 *
 * A message file holds {"v":1,"id","insertedMs","text"} and never changes
 * while it moves, except when an update replaces its text.  Everything
 * else about a message is in its name, so a state change is one rename:
 * a receive renames visible/X (or an expired or orphaned leased/X) to a
 * new leased/ name carrying the dequeue count + 1, the expiry and this
 * source's owner token; only one process can win that rename.  The pop
 * receipt is the leased name after "<id>.", so an update (a rename to a
 * new name) or a delete (unlink) with a stale receipt finds nothing and
 * reports -ENOENT, as Azure does.  A leased message whose expiry has
 * passed, or whose owner's lock is free (the process died or freed its
 * source), is receivable again with its dequeue count kept.
 *
 * New content is written to ".tmp-<token>" in the same directory under a
 * flock, fsynced and renamed; a temporary file older than ten seconds whose
 * lock is free is left over from a crash and removed by the next scan.
 *
 * Durability: a send fsyncs the file and visible/; receives, renewals and
 * deletes fsync leased/ unless bd_source_local_set_sync() turned that off
 * (safe for the protocol: after a power loss every owner is dead, so all
 * leases come back anyway, and a delete that is undone only brings back a
 * message whose task row already says completed).
 *
 * Speed: each source keeps the visible set as a sorted array in memory
 * (its earliest SL_VIEW_MAX names; the rest are read when those run out).
 * Senders bump a counter in the mmap()ed hint page, so receivers re-read
 * the directory only when something was added (at most every 100 ms while
 * the array still has visible messages; a name that another process took
 * first just fails its rename).  The leased set is read when a receive
 * cannot be filled from the visible set, when the hint's earliest expiry
 * has come, and once a second (to notice dead owners).
 *
 * Threads: all disk work runs in uv_queue_work; callbacks run on the loop
 * thread.  The in-memory view is guarded by a mutex; counters are kept
 * per request and added up on the loop thread.
 */
#include "source_local.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "spool.h"
#include "xmalloc.h"

#define SL_MAX_BATCH 32			/* Azure's numofmessages limit */
#define SL_MAX_TEXT (64 * 1024)		/* Azure's message size limit */
#define SL_MAX_FILE (512 * 1024)	/* a message file, JSON-escaped */
#define SL_MAX_TIMEOUT_MS (7LL * 24 * 3600 * 1000)
#define SL_MAX_NODE_ID 256
#define SL_ID_LEN 32
#define SL_TOKEN_LEN 16
#define SL_NAME_MAX 96		/* the longest name, a leased one, is 90 */
#define SL_RESCAN_MS 100	/* re-read a changed visible set this often */
#define SL_IDLE_RESCAN_MS 1000	/* and an empty-looking one this often */
#define SL_LEASE_SCAN_MS 1000	/* re-read the leased set this often */
#define SL_STALE_RUN 64		/* lost claims in a row that force a re-read */
#define SL_PENDING_MS 60000	/* hold while an update replaces the text */
#define SL_HINT_SIZE 4096
#define SL_HINT_VERSION 1
#define SL_MAX_OWNERS_SEEN 32
#define SL_VIEW_MAX 16384	/* the earliest visible names kept in memory */
#define SL_CANDIDATES_MAX 1024 /* receivable leases kept from one read */

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/*
 * The shared page of a queue.  It is a cache, not a record: losing it only
 * makes receivers fall back to their periodic re-reads.
 */
struct sl_hint {
	uint32_t version;
	uint32_t reserved;
	uint64_t add_gen;	/* bumped after every rename into visible/ */
	int64_t lease_min_exp;	/* no leased message expires before this */
};

struct sl_queue {
	char *dir;
	int visible_fd, leased_fd, bad_fd;
	struct sl_hint *hint;	/* mmap()ed, SL_HINT_SIZE bytes */
};

/* A receivable message: a visible/ name or a leased/ name to take over. */
struct sl_entry {
	int64_t key;		/* when it became visible */
	bool leased;
	bool dead;		/* leased, and its owner is gone */
	char name[SL_NAME_MAX];
};

/* A message this receive renamed into leased/. */
struct sl_claim {
	char id[SL_ID_LEN + 1];
	char name[SL_NAME_MAX];
	int dq;
	int64_t exp;
};

struct sl_source {
	struct bd_source pub;
	uv_loop_t *loop;
	char *spool;
	char *node_id;
	char owner[SL_TOKEN_LEN + 1];
	int owners_fd;
	int owner_fd;		/* holds the owner lock while open */
	bool sync;
	struct sl_queue q[2];	/* BD_QUEUE_TASKS, BD_QUEUE_POISON */
	int in_flight;
	struct bd_source_local_stats stats;

	/* The visible set of the task queue, guarded by mu. */
	uv_mutex_t mu;
	struct sl_entry *view;
	size_t n_view, cap_view, head;
	bool view_truncated;	/* visible/ held more than SL_VIEW_MAX */
	uint64_t view_gen;
	int64_t view_scan_ms;	/* 0: never read */
	int64_t lease_scan_ms;
};

enum sl_op { SL_RECEIVE, SL_UPDATE, SL_REMOVE, SL_SEND, SL_CREATE };

struct sl_req {
	uv_work_t work;
	struct sl_source *s;
	enum sl_op op;
	union {
		bd_source_receive_cb receive;
		bd_source_done_cb done;
	} cb;
	void *arg;

	/* In. */
	int max;
	int64_t ms;		/* visibility or delay */
	struct bd_message *m;	/* update: borrowed until the callback */
	char id[SL_ID_LEN + 1];
	char *receipt;
	char *text;
	int queue;

	/* Out. */
	int status;
	char *detail;
	struct bd_message **msgs;
	size_t n;
	char *new_receipt;
	int64_t new_visible;
	struct bd_source_local_stats d; /* counter deltas */
};

static const struct bd_source_ops sl_ops;

/* ---- names ---------------------------------------------------------- */

/* True when s starts with n lower-case hex digits. */
static bool
sl_is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		    s[i] <= 'f')))
			return false;
	return true;
}

/*
 * Reads 1 to max decimal digits at *p into *v and moves *p past them.
 * Returns false when there are none or too many.
 */
static bool
sl_digits(const char **p, size_t max, int64_t *v)
{
	const char *s = *p;
	int64_t x = 0;
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		if (n == max)
			return false;
		x = x * 10 + (s[n] - '0');
		n++;
	}
	if (n == 0)
		return false;
	*v = x;
	*p = s + n;
	return true;
}

/* Parses "<visibleMs:13>.<id:32>.<dq>", a visible/ name. */
static bool
sl_parse_visible(const char *name, int64_t *vis, char *id, int *dq)
{
	const char *p = name;
	int64_t v, d;

	if (!sl_digits(&p, 13, &v) || p - name != 13 || *p++ != '.' ||
	    !sl_is_hex(p, SL_ID_LEN) || p[SL_ID_LEN] != '.')
		return false;
	if (id != NULL) {
		memcpy(id, p, SL_ID_LEN);
		id[SL_ID_LEN] = '\0';
	}
	p += SL_ID_LEN + 1;
	if (!sl_digits(&p, 9, &d) || *p != '\0')
		return false;
	*vis = v;
	*dq = (int)d;
	return true;
}

/*
 * Parses a pop receipt, "<dq>.<expiryMs:13>.<owner:16>.<nonce:16>"; owner
 * gets the owner token when not NULL.
 */
static bool
sl_parse_receipt(const char *r, int *dq, int64_t *exp, char *owner)
{
	const char *p = r, *e;
	int64_t d, x;

	if (!sl_digits(&p, 9, &d) || *p++ != '.')
		return false;
	e = p;
	if (!sl_digits(&p, 13, &x) || p - e != 13 || *p++ != '.' ||
	    !sl_is_hex(p, SL_TOKEN_LEN) || p[SL_TOKEN_LEN] != '.')
		return false;
	if (owner != NULL) {
		memcpy(owner, p, SL_TOKEN_LEN);
		owner[SL_TOKEN_LEN] = '\0';
	}
	p += SL_TOKEN_LEN + 1;
	if (!sl_is_hex(p, SL_TOKEN_LEN) || p[SL_TOKEN_LEN] != '\0')
		return false;
	*dq = (int)d;
	*exp = x;
	return true;
}

/* Parses a leased/ name: "<id:32>." then a pop receipt. */
static bool
sl_parse_leased(const char *name, char *id, int *dq, int64_t *exp,
    char *owner)
{
	if (!sl_is_hex(name, SL_ID_LEN) || name[SL_ID_LEN] != '.')
		return false;
	if (id != NULL) {
		memcpy(id, name, SL_ID_LEN);
		id[SL_ID_LEN] = '\0';
	}
	return sl_parse_receipt(name + SL_ID_LEN + 1, dq, exp, owner);
}

/* Writes the leased/ name of id held by s until exp into buf. */
static void
sl_leased_name(const struct sl_source *s, const char *id, int dq, int64_t exp,
    char *buf)
{
	char nonce[SL_TOKEN_LEN + 1], copy[SL_ID_LEN + 1];

	/* A copy: id may sit in the same struct as buf. */
	memcpy(copy, id, SL_ID_LEN);
	copy[SL_ID_LEN] = '\0';
	bd_spool_random_hex(nonce, SL_TOKEN_LEN / 2);
	snprintf(buf, SL_NAME_MAX, "%s.%d.%013" PRId64 ".%s.%s", copy, dq, exp,
	    s->owner, nonce);
}

/* The insertion time in ms encoded in the first 13 hex digits (us) of an id. */
static int64_t
sl_id_time(const char *id)
{
	int64_t t = 0;

	for (int i = 0; i < 13; i++)
		t = t * 16 + (id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
	return t / 1000;
}

/*
 * A new message id: the wall clock in microseconds, a process-wide
 * sequence number and randomness, 32 hex digits in all, so that names
 * sort in the order of the sends.
 */
static void
sl_new_id(char *id)
{
	static uint32_t seq;
	struct timespec ts;
	char rnd[SL_TOKEN_LEN + 1];
	uint64_t us;

	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	bd_spool_random_hex(rnd, SL_TOKEN_LEN / 2);
	snprintf(id, SL_ID_LEN + 1, "%013" PRIx64 "%03" PRIx32 "%s",
	    (uint64_t)(us & 0xfffffffffffffULL),
	    __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED) & 0xfff, rnd);
}

/* ---- the hint page -------------------------------------------------- */

static uint64_t
sl_hint_gen(const struct sl_queue *q)
{
	return __atomic_load_n(&q->hint->add_gen, __ATOMIC_ACQUIRE);
}

static void
sl_hint_added(struct sl_queue *q)
{
	__atomic_fetch_add(&q->hint->add_gen, 1, __ATOMIC_ACQ_REL);
}

static int64_t
sl_hint_min_exp(const struct sl_queue *q)
{
	return __atomic_load_n(&q->hint->lease_min_exp, __ATOMIC_ACQUIRE);
}

/* Lowers the shared earliest expiry to v if v is earlier. */
static void
sl_hint_lower(struct sl_queue *q, int64_t v)
{
	int64_t cur = sl_hint_min_exp(q);

	while (v < cur && !__atomic_compare_exchange_n(&q->hint->lease_min_exp,
	    &cur, v, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

/*
 * Sets the earliest expiry to v after a scan that read seen before it
 * started; if another process lowered it meanwhile, only lowers.
 */
static void
sl_hint_set(struct sl_queue *q, int64_t seen, int64_t v)
{
	if (v > seen && __atomic_compare_exchange_n(&q->hint->lease_min_exp,
	    &seen, v, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	sl_hint_lower(q, v);
}

/* ---- files ---------------------------------------------------------- */

/* fsyncs the directory fd when the source is set to. */
static int
sl_sync_dir(const struct sl_source *s, int dfd, bool always)
{
	if (!s->sync && !always)
		return 0;
	return fsync(dfd) == -1 ? -errno : 0;
}

/*
 * Writes data to dfd/name atomically: a flock()ed ".tmp-<token>" beside
 * it, write, fsync, rename.  The directory is not fsynced here.
 *
 * fresh: name is a new name (a send), so nothing good can be lost if the
 * machine dies before the data reaches the disk; the rename then comes
 * before the fsync, and on a journalling filesystem that one fsync commits
 * the rename too, which makes the caller's fsync of the directory cheap.
 * A crash in between leaves at worst an empty message file that nobody
 * was told about, which its receiver moves to bad/.
 */
static int
sl_write_file(int dfd, const char *name, const char *data, size_t len,
    bool fresh)
{
	char tmp[BD_SPOOL_TMP_LEN];
	int fd, rc = 0;

	if ((fd = bd_spool_write_temp(dfd, data, len,
	    fresh ? BD_SPOOL_NO_SYNC : BD_SPOOL_FSYNC, tmp)) < 0)
		return fd;
	if (renameat(dfd, tmp, dfd, name) == -1) {
		rc = -errno;
		unlinkat(dfd, tmp, 0);
	} else if (fresh && fsync(fd) == -1) {
		/* Not durable: take it back unless a receiver has it. */
		rc = -errno;
		unlinkat(dfd, name, 0);
	}
	close(fd);
	return rc;
}

/* The JSON record of a message; caller frees. */
static char *
sl_record(const char *id, int64_t inserted, const char *text)
{
	cJSON *o = cJSON_CreateObject();
	char *out;

	cJSON_AddNumberToObject(o, "v", 1);
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddNumberToObject(o, "insertedMs", (double)inserted);
	cJSON_AddStringToObject(o, "text", text);
	if ((out = cJSON_PrintUnformatted(o)) == NULL)
		abort();
	cJSON_Delete(o);
	return out;
}

/*
 * Reads the message file dfd/name of message id: its text (caller frees)
 * and insertion time.  Returns 0, BD_EJSON or BD_ETOOBIG for a file that
 * is not a message record, or a negative errno.
 */
static int
sl_read_record(int dfd, const char *name, const char *id, char **text,
    int64_t *inserted)
{
	char buf[8192], *data = buf;
	struct stat st;
	size_t len = 0;
	cJSON *o, *f;
	int fd, rc = 0;

	*text = NULL;
	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > SL_MAX_FILE) {
		close(fd);
		return S_ISREG(st.st_mode) ? BD_ETOOBIG : BD_EJSON;
	}
	if ((size_t)st.st_size >= sizeof(buf))
		data = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, data + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n == 0 ? BD_EJSON : -errno;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (rc == 0) {
		o = cJSON_ParseWithLength(data, len);
		f = cJSON_GetObjectItemCaseSensitive(o, "v");
		if (!cJSON_IsNumber(f) || f->valuedouble != 1)
			rc = BD_EJSON;
		f = cJSON_GetObjectItemCaseSensitive(o, "id");
		if (!cJSON_IsString(f) || strcmp(f->valuestring, id) != 0)
			rc = BD_EJSON;
		f = cJSON_GetObjectItemCaseSensitive(o, "insertedMs");
		if (!cJSON_IsNumber(f))
			rc = BD_EJSON;
		else
			*inserted = (int64_t)f->valuedouble;
		f = cJSON_GetObjectItemCaseSensitive(o, "text");
		if (!cJSON_IsString(f) || strlen(f->valuestring) > SL_MAX_TEXT)
			rc = BD_EJSON;
		if (rc == 0)
			*text = xstrdup(f->valuestring);
		cJSON_Delete(o);
	}
	if (data != buf)
		free(data);
	return rc;
}

/* Opens a directory fd for reading entries: a DIR on a copy of dfd. */
static DIR *
sl_opendir(int dfd)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL)
		close(fd);
	return d;
}

/* ---- owners --------------------------------------------------------- */

/*
 * Creates s's owner file, already locked when its name appears: written
 * as a temporary file, locked, then renamed.
 */
static int
sl_owner_create(struct sl_source *s)
{
	char tmp[8 + 2 * SL_TOKEN_LEN], tok[SL_TOKEN_LEN + 1], *rec;
	cJSON *o;
	int fd, rc = 0;

	bd_spool_random_hex(s->owner, SL_TOKEN_LEN / 2);
	bd_spool_random_hex(tok, SL_TOKEN_LEN / 2);
	snprintf(tmp, sizeof(tmp), ".tmp-%s", tok);
	fd = openat(s->owners_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, BD_SPOOL_FILE_MODE);
	if (fd == -1)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1)
		rc = -errno;
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "v", 1);
	cJSON_AddStringToObject(o, "node", s->node_id);
	cJSON_AddNumberToObject(o, "pid", (double)getpid());
	cJSON_AddNumberToObject(o, "startMs", (double)bd_clock_now_ms());
	rec = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (rc == 0 && rec != NULL &&
	    write(fd, rec, strlen(rec)) != (ssize_t)strlen(rec))
		rc = -EIO;
	free(rec);
	if (rc == 0 && renameat(s->owners_fd, tmp, s->owners_fd, s->owner) == -1)
		rc = -errno;
	if (rc != 0) {
		unlinkat(s->owners_fd, tmp, 0);
		close(fd);
		return rc;
	}
	s->owner_fd = fd;
	return 0;
}

/*
 * Whether the owner token belongs to a live source.  A dead owner's file
 * is removed while its lock is held, so a missing file means dead too.
 * Errors other than a missing file count as alive: taking a live lease
 * would be worse than waiting.
 */
static bool
sl_owner_alive(struct sl_source *s, const char *owner)
{
	int fd;

	if (strcmp(owner, s->owner) == 0)
		return true;
	fd = openat(s->owners_fd, owner, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return errno != ENOENT;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		close(fd);
		return true;
	}
	unlinkat(s->owners_fd, owner, 0);
	close(fd);
	return false;
}

/* Removes the files of dead owners and stale temporary files in owners/. */
static void
sl_owners_reconcile(struct sl_source *s)
{
	int64_t now = bd_clock_now_ms();
	struct dirent *de;
	DIR *d;

	if ((d = sl_opendir(s->owners_fd)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			bd_spool_clean_temp(s->owners_fd, de->d_name, now);
		else if (strlen(de->d_name) == SL_TOKEN_LEN &&
		    sl_is_hex(de->d_name, SL_TOKEN_LEN))
			(void)sl_owner_alive(s, de->d_name);
	}
	closedir(d);
}

/* ---- the visible set ------------------------------------------------ */

static int
sl_entry_cmp(const void *a, const void *b)
{
	const struct sl_entry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * Sorts the n entries of a and keeps the first keep of them.  Returns
 * true when some were dropped.  Called whenever n reaches 2 * keep, it
 * bounds memory while a huge directory is read.
 */
static bool
sl_entries_trim(struct sl_entry *a, size_t *n, size_t keep)
{
	if (*n > 1)
		qsort(a, *n, sizeof(*a), sl_entry_cmp);
	if (*n <= keep)
		return false;
	*n = keep;
	return true;
}

/* Whether the view's first message is visible now. */
static bool
sl_view_eligible(const struct sl_source *s, int64_t now)
{
	return s->head < s->n_view && s->view[s->head].key <= now;
}

/* How many of the view's first max messages are visible now. */
static int
sl_view_count(const struct sl_source *s, int64_t now, int max)
{
	int n = 0;

	for (size_t i = s->head; i < s->n_view && n < max; i++, n++)
		if (s->view[i].key > now)
			break;
	return n;
}

/* Whether the view should be re-read from the directory. */
static bool
sl_view_stale(const struct sl_source *s, const struct sl_queue *q,
    int64_t now)
{
	bool eligible = sl_view_eligible(s, now);

	if (s->view_scan_ms == 0 || (!eligible && s->view_truncated))
		return true;
	if (sl_hint_gen(q) != s->view_gen)
		return !eligible || now - s->view_scan_ms >= SL_RESCAN_MS;
	return !eligible && now - s->view_scan_ms >= SL_IDLE_RESCAN_MS;
}

/* Re-reads visible/ into the sorted view; cleans stale temporary files. */
static int
sl_view_scan(struct sl_source *s, struct sl_queue *q, int64_t now,
    struct sl_req *r)
{
	uint64_t gen = sl_hint_gen(q);
	bool truncated = false;
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	if ((d = sl_opendir(q->visible_fd)) == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		struct sl_entry *e;
		int64_t vis;
		int dq;

		if (de->d_name[0] == '.') {
			if (bd_spool_clean_temp(q->visible_fd, de->d_name, now))
				r->d.temps_removed++;
			continue;
		}
		if (strlen(de->d_name) >= SL_NAME_MAX ||
		    !sl_parse_visible(de->d_name, &vis, NULL, &dq))
			continue;
		if (n == 2 * SL_VIEW_MAX)
			truncated |= sl_entries_trim(s->view, &n, SL_VIEW_MAX);
		if (n == s->cap_view) {
			s->cap_view = s->cap_view ? s->cap_view * 2 : 256;
			s->view = xreallocarray(s->view, s->cap_view,
			    sizeof(*s->view));
		}
		e = &s->view[n++];
		e->key = vis;
		e->leased = e->dead = false;
		memcpy(e->name, de->d_name, strlen(de->d_name) + 1);
	}
	closedir(d);
	truncated |= sl_entries_trim(s->view, &n, SL_VIEW_MAX);
	s->view_truncated = truncated;
	s->n_view = n;
	s->head = 0;
	s->view_gen = gen;
	s->view_scan_ms = now;
	r->d.visible_scans++;
	return 0;
}

/* ---- the leased set ------------------------------------------------- */

struct sl_lease_scan {
	struct sl_entry *c;	/* receivable leases, sorted */
	size_t n, cap, next;
	bool truncated;		/* more were receivable than c holds */
	int64_t seen;		/* the hint's expiry before the scan */
	int64_t min_exp;	/* earliest expiry of the live leases */
};

/*
 * Reads leased/: leases whose expiry has passed or whose owner is dead
 * become candidates for this receive; the rest give the earliest expiry.
 */
static int
sl_lease_scan(struct sl_source *s, struct sl_queue *q, int64_t now,
    struct sl_lease_scan *ls, struct sl_req *r)
{
	struct {
		char owner[SL_TOKEN_LEN + 1];
		bool alive;
	} seen[SL_MAX_OWNERS_SEEN];
	size_t n_seen = 0;
	struct dirent *de;
	DIR *d;

	ls->seen = sl_hint_min_exp(q);
	ls->min_exp = INT64_MAX;
	ls->n = ls->next = 0;
	ls->truncated = false;
	if ((d = sl_opendir(q->leased_fd)) == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char owner[SL_TOKEN_LEN + 1];
		struct sl_entry *e;
		int64_t exp;
		bool dead = false;
		int dq;

		if (de->d_name[0] == '.') {
			if (bd_spool_clean_temp(q->leased_fd, de->d_name, now))
				r->d.temps_removed++;
			continue;
		}
		if (strlen(de->d_name) >= SL_NAME_MAX ||
		    !sl_parse_leased(de->d_name, NULL, &dq, &exp, owner))
			continue;
		if (exp > now) {
			size_t i;
			for (i = 0; i < n_seen; i++)
				if (strcmp(seen[i].owner, owner) == 0)
					break;
			if (i == n_seen) {
				bool alive = sl_owner_alive(s, owner);
				if (n_seen < SL_MAX_OWNERS_SEEN) {
					memcpy(seen[n_seen].owner, owner,
					    sizeof(owner));
					seen[n_seen++].alive = alive;
				}
				dead = !alive;
			} else
				dead = !seen[i].alive;
			if (!dead) {
				if (exp < ls->min_exp)
					ls->min_exp = exp;
				continue;
			}
		}
		if (ls->n == 2 * SL_CANDIDATES_MAX)
			ls->truncated |= sl_entries_trim(ls->c, &ls->n,
			    SL_CANDIDATES_MAX);
		if (ls->n == ls->cap) {
			ls->cap = ls->cap ? ls->cap * 2 : 16;
			ls->c = xreallocarray(ls->c, ls->cap, sizeof(*ls->c));
		}
		e = &ls->c[ls->n++];
		e->key = dead ? now : exp;
		e->leased = true;
		e->dead = dead;
		memcpy(e->name, de->d_name, strlen(de->d_name) + 1);
	}
	closedir(d);
	ls->truncated |= sl_entries_trim(ls->c, &ls->n, SL_CANDIDATES_MAX);
	s->lease_scan_ms = now;
	r->d.lease_scans++;
	return 0;
}

/* ---- receive -------------------------------------------------------- */

/*
 * Claims e by renaming it to a leased/ name of s's that expires at exp.
 * Returns 0 and fills c, -ENOENT when another receiver (or the holder)
 * moved it first, or another negative errno.
 */
static int
sl_claim(struct sl_source *s, struct sl_queue *q, const struct sl_entry *e,
    int64_t exp, struct sl_claim *c)
{
	int64_t ignored;
	int dq;

	if (e->leased)
		(void)sl_parse_leased(e->name, c->id, &dq, &ignored, NULL);
	else
		(void)sl_parse_visible(e->name, &ignored, c->id, &dq);
	/* The count's field has 9 digits at most; it stops there. */
	c->dq = dq < 999999999 ? dq + 1 : dq;
	c->exp = exp;
	sl_leased_name(s, c->id, c->dq, exp, c->name);
	if (renameat(e->leased ? q->leased_fd : q->visible_fd, e->name,
	    q->leased_fd, c->name) == -1)
		return -errno;
	return 0;
}

/*
 * Worker: claims up to r->max receivable messages, oldest first, from the
 * view and the receivable leases, then reads their files.
 */
static void
sl_receive_work(uv_work_t *w)
{
	struct sl_req *r = container_of(w, struct sl_req, work);
	struct sl_source *s = r->s;
	struct sl_queue *q = &s->q[BD_QUEUE_TASKS];
	struct sl_claim claims[SL_MAX_BATCH];
	struct sl_lease_scan ls = { .min_exp = INT64_MAX };
	int64_t now = bd_clock_now_ms(), exp = now + r->ms;
	bool rescanned = false, lease_scanned = false;
	int nc = 0, stale = 0, rc = 0;

	uv_mutex_lock(&s->mu);
	if (sl_view_stale(s, q, now)) {
		rc = sl_view_scan(s, q, now, r);
		rescanned = true;
	}
	if (rc == 0 && (sl_view_count(s, now, r->max) < r->max ||
	    now >= sl_hint_min_exp(q) ||
	    now - s->lease_scan_ms >= SL_LEASE_SCAN_MS)) {
		rc = sl_lease_scan(s, q, now, &ls, r);
		lease_scanned = true;
	}
	while (rc == 0 && nc < r->max) {
		const struct sl_entry *v = NULL, *l = NULL, *e;

		if (sl_view_eligible(s, now))
			v = &s->view[s->head];
		if (ls.next < ls.n)
			l = &ls.c[ls.next];
		/* Out of names, or they keep going to others: read again. */
		if (!rescanned && ((v == NULL && l == NULL &&
		    (s->view_truncated || sl_hint_gen(q) != s->view_gen)) ||
		    stale >= SL_STALE_RUN)) {
			rc = sl_view_scan(s, q, now, r);
			rescanned = true;
			continue;
		}
		if (v == NULL && l == NULL)
			break;
		if (v != NULL && (l == NULL || sl_entry_cmp(v, l) <= 0)) {
			e = v;
			s->head++;
		} else {
			e = l;
			ls.next++;
		}
		rc = sl_claim(s, q, e, exp, &claims[nc]);
		if (rc == -ENOENT) {
			r->d.claims_lost++;
			stale++;
			rc = 0;
			continue;
		}
		if (rc == 0) {
			stale = 0;
			if (e->leased && e->dead)
				r->d.taken_dead++;
			else if (e->leased)
				r->d.taken_expired++;
			nc++;
		}
	}
	if (lease_scanned)
		sl_hint_set(q, ls.seen, ls.next < ls.n || ls.truncated ? now :
		    ls.min_exp);
	if (nc > 0)
		sl_hint_lower(q, exp);
	uv_mutex_unlock(&s->mu);
	free(ls.c);

	if (rc < 0 && nc == 0) {
		r->status = rc;
		r->detail = xasprintf("%s: %s", q->dir, bd_strerror(rc));
		return;
	}
	if (nc > 0 && (rc = sl_sync_dir(s, q->leased_fd, false)) < 0) {
		/* Claimed but not durable: still ours, and still valid. */
		r->d.failures++;
	}
	r->msgs = xcalloc((size_t)nc, sizeof(*r->msgs));
	for (int i = 0; i < nc; i++) {
		struct sl_claim *c = &claims[i];
		struct bd_message *m;
		int64_t inserted = 0;
		char *text;

		rc = sl_read_record(q->leased_fd, c->name, c->id, &text,
		    &inserted);
		if (rc < 0) {
			/* Not a message: keep it for a person to look at. */
			if (renameat(q->leased_fd, c->name, q->bad_fd,
			    c->name) == 0)
				r->d.quarantined++;
			continue;
		}
		m = xcalloc(1, sizeof(*m));
		m->id = xstrdup(c->id);
		m->pop_receipt = xstrdup(c->name + SL_ID_LEN + 1);
		m->text = text;
		m->dequeue_count = c->dq;
		m->inserted_ms = inserted;
		m->visible_ms = c->exp;
		r->msgs[r->n++] = m;
	}
	r->d.received += r->n;
}

/* ---- update, remove, send ------------------------------------------- */

/* Worker: renames the lease to a new receipt, replacing the text if asked. */
static void
sl_update_work(uv_work_t *w)
{
	struct sl_req *r = container_of(w, struct sl_req, work);
	struct sl_source *s = r->s;
	struct sl_queue *q = &s->q[BD_QUEUE_TASKS];
	char old[SL_NAME_MAX], pend[SL_NAME_MAX], name[SL_NAME_MAX];
	int64_t now = bd_clock_now_ms(), exp = now + r->ms, old_exp;
	int dq, rc = 0;

	(void)sl_parse_receipt(r->receipt, &dq, &old_exp, NULL);
	snprintf(old, sizeof(old), "%s.%s", r->id, r->receipt);
	sl_leased_name(s, r->id, dq, exp, name);
	if (r->text == NULL) {
		if (renameat(q->leased_fd, old, q->leased_fd, name) == -1)
			rc = -errno;
	} else {
		/*
		 * First take the message under a name that stays ours long
		 * enough to replace its content, then give it its real expiry.
		 */
		int64_t hold = now + (r->ms > SL_PENDING_MS ? r->ms :
		    SL_PENDING_MS), inserted = sl_id_time(r->id);
		char *rec = NULL, *was = NULL;

		sl_leased_name(s, r->id, dq, hold, pend);
		if (renameat(q->leased_fd, old, q->leased_fd, pend) == -1)
			rc = -errno;
		else {
			/* Keep the insertion time the record has. */
			(void)sl_read_record(q->leased_fd, pend, r->id, &was,
			    &inserted);
			rec = sl_record(r->id, inserted, r->text);
			rc = sl_write_file(q->leased_fd, pend, rec, strlen(rec),
			    false);
		}
		if (rc < 0 && rc != -ENOENT) {
			/* The old receipt stays valid, as on Azure. */
			(void)renameat(q->leased_fd, pend, q->leased_fd, old);
		} else if (rc == 0 && renameat(q->leased_fd, pend,
		    q->leased_fd, name) == -1)
			rc = -errno;
		free(was);
		free(rec);
	}
	if (rc == -ENOENT) {
		r->status = -ENOENT;
		r->detail = xasprintf("message %s: the lease is gone (deleted, "
		    "or received again after its visibility timeout)", r->id);
		r->d.leases_lost++;
		return;
	}
	if (rc == 0) {
		sl_hint_lower(q, exp);
		rc = sl_sync_dir(s, q->leased_fd, r->text != NULL);
	}
	if (rc < 0) {
		r->status = rc;
		r->detail = xasprintf("message %s: update: %s", r->id,
		    bd_strerror(rc));
		r->d.failures++;
		return;
	}
	r->new_receipt = xstrdup(name + SL_ID_LEN + 1);
	r->new_visible = exp;
	r->d.updates++;
}

/* Worker: removes the leased message named by the receipt. */
static void
sl_remove_work(uv_work_t *w)
{
	struct sl_req *r = container_of(w, struct sl_req, work);
	struct sl_source *s = r->s;
	struct sl_queue *q = &s->q[BD_QUEUE_TASKS];
	char old[SL_NAME_MAX];
	int rc = 0;

	snprintf(old, sizeof(old), "%s.%s", r->id, r->receipt);
	if (unlinkat(q->leased_fd, old, 0) == -1)
		rc = -errno;
	if (rc == -ENOENT) {
		r->status = -ENOENT;
		r->detail = xasprintf("message %s: the lease is gone (deleted, "
		    "or received again after its visibility timeout)", r->id);
		r->d.leases_lost++;
		return;
	}
	if (rc == 0)
		rc = sl_sync_dir(s, q->leased_fd, false);
	if (rc < 0) {
		r->status = rc;
		r->detail = xasprintf("message %s: delete: %s", r->id,
		    bd_strerror(rc));
		r->d.failures++;
		return;
	}
	r->d.removes++;
}

/* Worker: writes a new message file into visible/ of r->queue. */
static void
sl_send_work(uv_work_t *w)
{
	struct sl_req *r = container_of(w, struct sl_req, work);
	struct sl_source *s = r->s;
	struct sl_queue *q = &s->q[r->queue];
	int64_t inserted = sl_id_time(r->id);
	char name[SL_NAME_MAX], *rec = sl_record(r->id, inserted, r->text);
	int rc;

	snprintf(name, sizeof(name), "%013" PRId64 ".%s.0", inserted + r->ms,
	    r->id);
	rc = sl_write_file(q->visible_fd, name, rec, strlen(rec), true);
	free(rec);
	if (rc == 0)
		rc = sl_sync_dir(s, q->visible_fd, true);
	if (rc == 0)
		sl_hint_added(q);
	if (rc < 0) {
		r->status = rc;
		r->detail = xasprintf("%s: send: %s", q->dir, bd_strerror(rc));
		r->d.failures++;
		return;
	}
	r->d.sends++;
}

/* Worker: makes sure the directories of both queues exist. */
static void
sl_create_work(uv_work_t *w)
{
	struct sl_req *r = container_of(w, struct sl_req, work);
	static const char *const subs[] = { "visible", "leased", "bad" };
	int rc = 0;

	for (int i = 0; i < 2 && rc == 0; i++)
		for (size_t j = 0; j < 3 && rc == 0; j++) {
			char *p = xasprintf("%s/%s", r->s->q[i].dir, subs[j]);
			rc = bd_mkdir_p(p, BD_SPOOL_DIR_MODE);
			free(p);
		}
	if (rc < 0) {
		r->status = rc;
		r->detail = xasprintf("%s: %s", r->s->spool, bd_strerror(rc));
		r->d.failures++;
	}
}

/* ---- requests ------------------------------------------------------- */

static void
sl_stats_add(struct bd_source_local_stats *a,
    const struct bd_source_local_stats *b)
{
	uint64_t *x = (uint64_t *)a;
	const uint64_t *y = (const uint64_t *)b;

	for (size_t i = 0; i < sizeof(*a) / sizeof(uint64_t); i++)
		x[i] += y[i];
}

/* Loop: ends a request, running its callback once. */
static void
sl_after_work(uv_work_t *w, int status)
{
	struct sl_req *r = container_of(w, struct sl_req, work);
	struct sl_source *s = r->s;

	s->in_flight--;
	if (status == UV_ECANCELED && r->status == 0)
		r->status = -ECANCELED;
	sl_stats_add(&s->stats, &r->d);
	switch (r->op) {
	case SL_RECEIVE:
		s->stats.receives++;
		if (r->status < 0) {
			for (size_t i = 0; i < r->n; i++)
				bd_message_free(r->msgs[i]);
			free(r->msgs);
			r->msgs = NULL;
			r->n = 0;
		}
		r->cb.receive(r->arg, r->status, r->msgs, r->n, r->detail);
		break;
	case SL_UPDATE:
		if (r->status == 0) {
			free(r->m->pop_receipt);
			r->m->pop_receipt = r->new_receipt;
			r->new_receipt = NULL;
			r->m->visible_ms = r->new_visible;
		}
		/* FALLTHROUGH */
	default:
		r->cb.done(r->arg, r->status, r->detail);
		break;
	}
	free(r->receipt);
	free(r->text);
	free(r->detail);
	free(r->new_receipt);
	free(r);
}

/* Loop: queues r's work; on failure frees r and returns the error. */
static int
sl_queue_req(struct sl_req *r, uv_work_cb fn)
{
	int rc = uv_queue_work(r->s->loop, &r->work, fn, sl_after_work);

	if (rc < 0) {
		free(r->receipt);
		free(r->text);
		free(r);
		return rc;
	}
	r->s->in_flight++;
	return 0;
}

static struct sl_req *
sl_req_new(struct sl_source *s, enum sl_op op, void *arg)
{
	struct sl_req *r = xcalloc(1, sizeof(*r));

	r->s = s;
	r->op = op;
	r->arg = arg;
	return r;
}

/* Checks a message's id and pop receipt came from a local source. */
static bool
sl_valid_lease(const struct bd_message *m)
{
	int dq;
	int64_t exp;

	return m != NULL && m->id != NULL && m->pop_receipt != NULL &&
	    strlen(m->id) == SL_ID_LEN && sl_is_hex(m->id, SL_ID_LEN) &&
	    strlen(m->pop_receipt) < SL_NAME_MAX - SL_ID_LEN - 1 &&
	    sl_parse_receipt(m->pop_receipt, &dq, &exp, NULL);
}

static int
sl_receive(struct bd_source *bs, int max, int64_t visibility_ms,
    bd_source_receive_cb cb, void *arg)
{
	struct sl_source *s = (struct sl_source *)bs;
	struct sl_req *r;

	if (max < 1 || max > SL_MAX_BATCH || visibility_ms < 1 ||
	    visibility_ms > SL_MAX_TIMEOUT_MS || cb == NULL)
		return -EINVAL;
	r = sl_req_new(s, SL_RECEIVE, arg);
	r->cb.receive = cb;
	r->max = max;
	r->ms = visibility_ms;
	return sl_queue_req(r, sl_receive_work);
}

static int
sl_update(struct bd_source *bs, struct bd_message *m, int64_t visibility_ms,
    const char *new_text, bd_source_done_cb cb, void *arg)
{
	struct sl_source *s = (struct sl_source *)bs;
	struct sl_req *r;

	if (!sl_valid_lease(m) || visibility_ms < 0 ||
	    visibility_ms > SL_MAX_TIMEOUT_MS || cb == NULL)
		return -EINVAL;
	if (new_text != NULL && strlen(new_text) > SL_MAX_TEXT)
		return BD_ETOOBIG;
	r = sl_req_new(s, SL_UPDATE, arg);
	r->cb.done = cb;
	r->m = m;
	r->ms = visibility_ms;
	memcpy(r->id, m->id, SL_ID_LEN + 1);
	r->receipt = xstrdup(m->pop_receipt);
	r->text = new_text ? xstrdup(new_text) : NULL;
	return sl_queue_req(r, sl_update_work);
}

static int
sl_remove(struct bd_source *bs, const struct bd_message *m,
    bd_source_done_cb cb, void *arg)
{
	struct sl_source *s = (struct sl_source *)bs;
	struct sl_req *r;

	if (!sl_valid_lease(m) || cb == NULL)
		return -EINVAL;
	r = sl_req_new(s, SL_REMOVE, arg);
	r->cb.done = cb;
	memcpy(r->id, m->id, SL_ID_LEN + 1);
	r->receipt = xstrdup(m->pop_receipt);
	return sl_queue_req(r, sl_remove_work);
}

static int
sl_send(struct bd_source *bs, enum bd_queue_kind q, const char *text,
    int64_t delay_ms, bd_source_done_cb cb, void *arg)
{
	struct sl_source *s = (struct sl_source *)bs;
	struct sl_req *r;

	if ((q != BD_QUEUE_TASKS && q != BD_QUEUE_POISON) || text == NULL ||
	    delay_ms < 0 || delay_ms > SL_MAX_TIMEOUT_MS || cb == NULL)
		return -EINVAL;
	if (strlen(text) > SL_MAX_TEXT)
		return BD_ETOOBIG;
	r = sl_req_new(s, SL_SEND, arg);
	r->cb.done = cb;
	r->queue = q;
	r->ms = delay_ms;
	r->text = xstrdup(text);
	sl_new_id(r->id);
	return sl_queue_req(r, sl_send_work);
}

static int
sl_create(struct bd_source *bs, bd_source_done_cb cb, void *arg)
{
	struct sl_source *s = (struct sl_source *)bs;
	struct sl_req *r;

	if (cb == NULL)
		return -EINVAL;
	r = sl_req_new(s, SL_CREATE, arg);
	r->cb.done = cb;
	return sl_queue_req(r, sl_create_work);
}

/* ---- life ----------------------------------------------------------- */

static void
sl_queue_close(struct sl_queue *q)
{
	if (q->hint != NULL)
		munmap(q->hint, SL_HINT_SIZE);
	if (q->visible_fd >= 0)
		close(q->visible_fd);
	if (q->leased_fd >= 0)
		close(q->leased_fd);
	if (q->bad_fd >= 0)
		close(q->bad_fd);
	free(q->dir);
}

/*
 * Frees s.  Its owner file goes first, so other processes may take its
 * remaining leases at once; the hint tells them to look.
 */
static void
sl_free(struct bd_source *bs)
{
	struct sl_source *s = (struct sl_source *)bs;

	if (s == NULL)
		return;
	if (s->in_flight != 0)
		fatalx("local source: freed with %d calls in flight",
		    s->in_flight);
	if (s->owner_fd >= 0) {
		unlinkat(s->owners_fd, s->owner, 0);
		close(s->owner_fd);
	}
	for (int i = 0; i < 2; i++) {
		if (s->q[i].hint != NULL)
			sl_hint_lower(&s->q[i], 0);
		sl_queue_close(&s->q[i]);
	}
	if (s->owners_fd >= 0)
		close(s->owners_fd);
	uv_mutex_destroy(&s->mu);
	free(s->view);
	free(s->spool);
	free(s->node_id);
	free(s);
}

/* Opens queue name's directories and hint page under spool. */
static int
sl_queue_open(struct sl_queue *q, const char *spool, const char *name,
    char **cause)
{
	struct stat st;
	int fd, rc;

	q->dir = xasprintf("%s/queues/%s", spool, name);
	if ((rc = q->visible_fd = bd_spool_open_dir(q->dir, "visible")) < 0 ||
	    (rc = q->leased_fd = bd_spool_open_dir(q->dir, "leased")) < 0 ||
	    (rc = q->bad_fd = bd_spool_open_dir(q->dir, "bad")) < 0) {
		*cause = xasprintf("%s: %s", q->dir, bd_strerror(rc));
		return rc;
	}
	{
		char *p = xasprintf("%s/hint", q->dir);
		fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		    BD_SPOOL_FILE_MODE);
		free(p);
	}
	rc = 0;
	if (fd == -1 || fstat(fd, &st) == -1)
		rc = -errno;
	/* Never shrink: another process may have it mapped. */
	else if (st.st_size < SL_HINT_SIZE && ftruncate(fd, SL_HINT_SIZE) == -1)
		rc = -errno;
	if (rc == 0) {
		void *p = mmap(NULL, SL_HINT_SIZE, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			rc = -errno;
		else
			q->hint = p;
	}
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		*cause = xasprintf("%s/hint: %s", q->dir, bd_strerror(rc));
		return rc;
	}
	if (__atomic_load_n(&q->hint->version, __ATOMIC_ACQUIRE) == 0) {
		uint32_t zero = 0;
		__atomic_compare_exchange_n(&q->hint->version, &zero,
		    SL_HINT_VERSION, false, __ATOMIC_ACQ_REL,
		    __ATOMIC_ACQUIRE);
	}
	if (q->hint->version != SL_HINT_VERSION) {
		*cause = xasprintf("%s/hint: version %" PRIu32 ", not %d",
		    q->dir, q->hint->version, SL_HINT_VERSION);
		return BD_EUNSUPPORTED;
	}
	return 0;
}

/* True for an Azure queue name: 3-63 of [a-z0-9-]. */
static bool
sl_valid_queue_name(const char *n)
{
	size_t len = strlen(n);

	if (len < 3 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' &&
		    n[i] <= '9') || n[i] == '-'))
			return false;
	return true;
}

int
bd_source_local_new(uv_loop_t *loop, const char *spool_dir,
    const char *queue_name, const char *node_id, struct bd_source **out,
    char **cause)
{
	struct sl_source *s;
	char *poison;
	int rc;

	*out = NULL;
	*cause = NULL;
	if (spool_dir == NULL || *spool_dir == '\0') {
		*cause = xstrdup("the spool directory is not set");
		return -EINVAL;
	}
	if (queue_name == NULL || !sl_valid_queue_name(queue_name)) {
		*cause = xasprintf("queue name \"%.80s\": 3 to 63 lower-case "
		    "letters, digits and '-'", queue_name ? queue_name : "");
		return -EINVAL;
	}
	if (node_id == NULL || strlen(node_id) > SL_MAX_NODE_ID) {
		*cause = xstrdup("node id missing or too long");
		return -EINVAL;
	}
	s = xcalloc(1, sizeof(*s));
	s->pub.ops = &sl_ops;
	s->loop = loop;
	s->spool = bd_spool_absolute(spool_dir);
	s->node_id = xstrdup(node_id);
	s->sync = true;
	s->owners_fd = s->owner_fd = -1;
	for (int i = 0; i < 2; i++)
		s->q[i].visible_fd = s->q[i].leased_fd = s->q[i].bad_fd = -1;
	if (uv_mutex_init(&s->mu) != 0)
		abort();

	poison = xasprintf("%s-poison", queue_name);
	if ((rc = sl_queue_open(&s->q[BD_QUEUE_TASKS], s->spool, queue_name,
	    cause)) < 0 || (rc = sl_queue_open(&s->q[BD_QUEUE_POISON],
	    s->spool, poison, cause)) < 0) {
		free(poison);
		sl_free(&s->pub);
		return rc;
	}
	free(poison);
	if ((rc = s->owners_fd = bd_spool_open_dir(s->spool, "owners")) < 0 ||
	    (rc = sl_owner_create(s)) < 0) {
		*cause = xasprintf("%s/owners: %s", s->spool, bd_strerror(rc));
		sl_free(&s->pub);
		return rc;
	}
	/* Start-up: forget the owners that died since anyone last looked. */
	sl_owners_reconcile(s);
	*out = &s->pub;
	return 0;
}

int
bd_source_local_stats(const struct bd_source *bs,
    struct bd_source_local_stats *st)
{
	if (bs == NULL || bs->ops != &sl_ops)
		return -EINVAL;
	*st = ((const struct sl_source *)bs)->stats;
	return 0;
}

int
bd_source_local_set_sync(struct bd_source *bs, int on)
{
	if (bs == NULL || bs->ops != &sl_ops)
		return -EINVAL;
	((struct sl_source *)bs)->sync = on != 0;
	return 0;
}

static const struct bd_source_ops sl_ops = {
	.name = "local",
	.receive = sl_receive,
	.update = sl_update,
	.remove = sl_remove,
	.send = sl_send,
	.create = sl_create,
	.free = sl_free,
};
