/* SPDX-License-Identifier: MIT */
/*
 * The state store on a local spool: Azure Tables' semantics in a
 * directory tree that several batchd processes on one machine share
 * (docs/protocol.md §7 is the contract for the layout):
 *
 *   <spool>/tables/<table>/<partition key>/<row key>.json
 *
 * Keys are percent-encoded (every byte outside [A-Za-z0-9_-] becomes %XX,
 * the empty key is "%"), so no name is "." or "..", starts with a dot or
 * holds a slash.  A row file is {"v":1,"PartitionKey","RowKey","etag",
 * "version","Timestamp","props":{...}}.  The ETag is W/"<version>.<random>"
 * and changes with every write, so a row deleted and inserted again never
 * matches an old ETag.
 *
 * Every write goes to a flock()ed ".tmp-<token>" in the row's directory
 * (agent/spool.c), is fsynced, and replaces the row by rename (or, for an
 * insert, takes the name with renameat2(RENAME_NOREPLACE), which fails if
 * the row exists); then the directory is fsynced.  On ext4 with a journal
 * (bd_fs_fsync_commits_renames()) the file's data is only written out
 * (sync_file_range, no commit): the directory's fsync commits the rename
 * after a cache flush that makes that data durable too, so a write costs
 * one journal commit, shared with the others of its group.  A lazy write
 * (bd_entity.lazy) skips both fsyncs: a power failure may undo it, and
 * may leave an empty file, which reads as a missing row.  Readers never
 * lock: a rename is atomic.
 * Writers that look at the current row (replace, merge, remove) flock()
 * the row file and then check that the name still leads to the file they
 * locked; if another writer replaced it meanwhile they start again on the
 * new file.  So of two processes writing with the same ETag one succeeds
 * and the other sees the new ETag: -ESTALE.
 *
 * A crash leaves at most a temporary file, which the next query of its
 * partition removes once it is ten seconds old and unlocked; the row
 * itself is always the old or the new version.  Partition directories are
 * never removed (an insert racing an rmdir would fail).
 *
 * Group commit (st_commit_*()): a write whose rename is done leaves its
 * worker thread and waits, on the loop, for an fsync of its directory;
 * its callback runs after that.  One commit job runs at a time per store
 * and fsyncs the directories of every write that was waiting when it
 * began, once each.  A lone write's commit starts at once, unless the
 * store was given a commit delay (bd_store_local_set_commit_delay()):
 * then the first waiting write holds the next commit back that long, so
 * a steady stream of short tasks' rows costs one journal commit per
 * delay instead of one per row.  No thread sleeps or waits meanwhile.
 *
 * Rows read back: a write under the row's lock needs the row's ETag,
 * version and (merge) properties.  The store remembers the last ST_ROWS
 * rows it read or wrote, with the first bytes of their file through the
 * ETag; a write that finds the locked file starts with those bytes (one
 * short pread) uses what it remembers instead of reading and parsing the
 * file.  The ETag is new and random on every write, so equal bytes mean
 * the same version of the row, whoever wrote it since.
 *
 * The last few partition directories used stay open (ST_PARTS), so a
 * task's writes to its job's partition do not open it each time; that is
 * safe because partition directories are never removed.
 *
 * Lazy writes on the loop (st_write_on_loop()): a lazy write (a task's
 * running row, a node's heartbeat) fsyncs nothing, so its work is a few
 * page-cache operations, like the task directories and record the daemon
 * makes on the loop anyway; a trip through the thread pool cost a short
 * task's start more than the write (a worker woken on a busy machine,
 * then the loop).  It runs on the loop unless a write of the same row is
 * in the pool (the loop would overtake it), another process holds its lock
 * (the pool waits for it) or its partition is new (made with an fsync);
 * its callback runs on a later turn of the loop.
 *
 * Threads: each call's disk work runs in uv_queue_work (or, for a lazy
 * write, on the loop) and touches only its own request; the commit job
 * only its own list of requests; callbacks, counters and the waiting
 * list live on the loop thread.
 */
#include "store_local.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "spool.h"
#include "xmalloc.h"

#define ST_NTABLES 3
#define ST_MAX_ENCODED 250		/* a key's file name, before ".json" */
#define ST_MAX_ENTITY (1024 * 1024)	/* Azure's entity size limit */
#define ST_MAX_FILE (2 * 1024 * 1024)	/* a row file, with overhead */
#define ST_MAX_PROPS 252		/* Azure: 255 less the system three */
#define ST_MAX_PROP_NAME 255
#define ST_MAX_TRIES 1000
#define ST_LOCK_WAIT_MS 10000	/* longest wait for another writer's lock */
#define ST_NAME_MAX 256
#define ST_PARTS 8		/* partition directories kept open */
#define ST_ROWS 64		/* rows remembered (st_cache_put()) */
#define ST_COMMIT_MAX 256	/* writes that start a commit without delay */
#define ST_POOL_SLOTS 64	/* rows with writes in the pool, hashed */

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* A row as this store last read or wrote it (st_cache_put()). */
struct st_cached {
	uint64_t key;		/* st_row_key(): compared before the names */
	int t;
	char pk_enc[ST_NAME_MAX];
	char rk_name[ST_NAME_MAX];
	char *head;		/* the file's first bytes, through the ETag */
	size_t head_len;
	char *etag;
	int64_t version;
	cJSON *props;
	uint64_t used;
};

struct st_store {
	struct bd_store pub;
	uv_loop_t *loop;
	char *dir;		/* <spool>/tables */
	int table_fd[ST_NTABLES];
	bool sync;
	int in_flight;
	struct bd_store_local_stats stats;

	/* Partition directories kept open (st_open_partition()). */
	uv_mutex_t part_mu;
	struct st_part {
		int t;
		char name[ST_NAME_MAX];
		int fd;		/* -1: a free entry */
		int refs;	/* requests using fd now */
		uint64_t used;
	} parts[ST_PARTS];
	uint64_t part_clock;

	/* Rows this store read or wrote last (st_cache_put()). */
	uv_mutex_t rows_mu;
	struct st_cached *rows[ST_ROWS];
	uint64_t rows_clock;

	/* Group commit (st_commit_*()), on the loop thread. */
	struct st_req *waiting, **waiting_tail;	/* oldest first */
	size_t n_waiting;
	uint64_t waiting_since;	/* uv_now() when the oldest began waiting */
	struct st_commit *committing;	/* the commit job that runs */
	uint64_t commit_delay_ms;
	uv_timer_t *commit_timer; /* NULL until a delay is set */
	/* bd_fs_fsync_commits_renames() of each table's directory. */
	bool fsync_commits_renames[ST_NTABLES];

	/* Writes in the pool by st_row_key() % ST_POOL_SLOTS: a lazy write
	   of such a row goes there too rather than overtake them (the pool
	   does not order two writes of one row: callers do not overlap
	   them).  Loop thread. */
	uint16_t pool_writes[ST_POOL_SLOTS];
	/* Lazy writes done on the loop, oldest first, whose callbacks run
	   from defer_idle on the next turn. */
	struct st_req *deferred, **deferred_tail;
	uv_idle_t *defer_idle;	/* NULL until the first */
};

enum st_op { ST_GET, ST_INSERT, ST_REPLACE, ST_MERGE, ST_REMOVE, ST_QUERY,
    ST_CREATE };

struct st_req {
	uv_work_t work;
	struct st_store *s;
	enum st_op op;
	enum bd_table t;
	union {
		bd_store_entity_cb entity;
		bd_store_write_cb write;
		bd_store_query_cb query;
	} cb;
	void *arg;

	/* In. */
	char *pk, *rk;		/* pk NULL: query the whole table */
	char pk_enc[ST_NAME_MAX];
	char rk_name[ST_NAME_MAX]; /* encoded row key + ".json" */
	char *etag;		/* condition; NULL for none */
	cJSON *props;		/* a copy of the caller's */
	bool lazy;		/* no fsync (bd_entity.lazy) */
	bool on_loop;		/* st_write_on_loop(): never waits for a lock */
	bool to_pool;		/* ... and found it would have to: nothing done */
	int pool_slot;		/* its pool_writes slot while there, or -1 */

	/* Renamed or removed; durable once this directory is fsynced.
	   Of the writes waiting on one directory only the first keeps
	   an fd (st_after_work()); the others have -1. */
	bool needs_commit;
	int commit_fd;
	dev_t commit_dev;
	ino_t commit_ino;
	struct st_req *commit_next;	/* the waiting list, a commit job */

	/* Out. */
	int status;
	char *detail;
	char *new_etag;
	struct bd_entity *entity;
	struct bd_entity **rows;
	size_t n_rows;
	struct bd_store_local_stats d;
};

/* A row file, read. */
struct st_row {
	char *etag;
	int64_t version;
	struct bd_entity *e;	/* NULL unless asked for */
	cJSON *props;		/* borrowed from doc */
	cJSON *doc;
};

static const struct bd_store_ops st_ops;

/* ---- keys and names ------------------------------------------------- */

/*
 * Percent-encodes key into out (cap bytes).  Returns its length,
 * -ENAMETOOLONG, or -EINVAL for a character Azure refuses in a key.
 */
static int
st_encode(const char *key, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	if (*key == '\0') {
		out[0] = '%';
		out[1] = '\0';
		return 1;
	}
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\' ||
		    *p == '#' || *p == '?')
			return -EINVAL;
		if (n + 4 > cap || n + 3 > ST_MAX_ENCODED)
			return -ENAMETOOLONG;
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
			out[n++] = (char)*p;
		else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = '\0';
	return (int)n;
}

/* "batchdtasks/<pk>/<rk>" for messages; caller frees. */
static char *
st_where(const struct st_req *r)
{
	return xasprintf("%s/%s/%s", bd_table_name(r->t), r->pk ? r->pk : "",
	    r->rk ? r->rk : "");
}

/* ---- files ---------------------------------------------------------- */

/*
 * Moves the temporary file to name without replacing anything: -EEXIST
 * if name exists.  The temporary name is gone afterwards either way.
 */
static int
st_rename_noreplace(int dfd, const char *tmp, const char *name)
{
	int rc = 0;

	if (renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS) {
		rc = -errno;
		unlinkat(dfd, tmp, 0);
		return rc;
	}
	/* A filesystem without the flag: link fails if name exists. */
	if (linkat(dfd, tmp, dfd, name, 0) == -1)
		rc = -errno;
	unlinkat(dfd, tmp, 0);
	return rc;
}

/*
 * Whether name in dfd is an empty file: a row whose lazy write a power
 * failure cut off after its rename but before its data (possible where
 * the filesystem does not write a file's data before a rename over it).
 * Such a row reads as missing and an insert takes its place.
 */
static bool
st_is_lost_row(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_size == 0;
}

/*
 * Reads and checks the row file open at fd.  with_entity: also build
 * row->e.  Returns 0, BD_EJSON or BD_ETOOBIG for a file that is not a
 * row, or a negative errno.  Caller frees with st_row_clear().
 */
static int
st_row_read(int fd, bool with_entity, struct st_row *row)
{
	struct stat st;
	size_t len = 0;
	cJSON *pk, *rk, *et, *ver;
	char *data;
	int rc = 0;

	memset(row, 0, sizeof(*row));
	if (fstat(fd, &st) == -1)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return BD_EJSON;
	if (st.st_size == 0)
		return -ENOENT; /* see st_is_lost_row() */
	if (st.st_size > ST_MAX_FILE)
		return BD_ETOOBIG;
	data = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = pread(fd, data + len, (size_t)st.st_size - len,
		    (off_t)len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n == 0 ? BD_EJSON : -errno;
			break;
		}
		len += (size_t)n;
	}
	if (rc == 0)
		row->doc = cJSON_ParseWithLength(data, len);
	free(data);
	if (rc < 0)
		return rc;
	ver = cJSON_GetObjectItemCaseSensitive(row->doc, "v");
	pk = cJSON_GetObjectItemCaseSensitive(row->doc, "PartitionKey");
	rk = cJSON_GetObjectItemCaseSensitive(row->doc, "RowKey");
	et = cJSON_GetObjectItemCaseSensitive(row->doc, "etag");
	row->props = cJSON_GetObjectItemCaseSensitive(row->doc, "props");
	if (!cJSON_IsNumber(ver) || ver->valuedouble != 1 ||
	    !cJSON_IsString(pk) || !cJSON_IsString(rk) || !cJSON_IsString(et) ||
	    !cJSON_IsObject(row->props)) {
		cJSON_Delete(row->doc);
		memset(row, 0, sizeof(*row));
		return BD_EJSON;
	}
	row->etag = et->valuestring;
	ver = cJSON_GetObjectItemCaseSensitive(row->doc, "version");
	row->version = cJSON_IsNumber(ver) ? (int64_t)ver->valuedouble : 0;
	if (with_entity) {
		row->e = xcalloc(1, sizeof(*row->e));
		row->e->partition_key = xstrdup(pk->valuestring);
		row->e->row_key = xstrdup(rk->valuestring);
		row->e->etag = xstrdup(et->valuestring);
		row->e->props = cJSON_DetachItemViaPointer(row->doc,
		    row->props);
		row->props = row->e->props;
	}
	return 0;
}

static void
st_row_clear(struct st_row *row)
{
	cJSON_Delete(row->doc);
	bd_entity_free(row->e);
	memset(row, 0, sizeof(*row));
}

/* The most a JSON string of len bytes can take, quoted and escaped. */
#define ST_JSON_MAX(len) (6 * (len) + 2)

/* Writes str at o as a quoted JSON string; returns the end. */
static char *
st_json_put(char *o, const char *str)
{
	static const char hex[] = "0123456789abcdef";

	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		switch (*p) {
		case '"': case '\\':
			*o++ = '\\';
			*o++ = (char)*p;
			break;
		case '\b': *o++ = '\\'; *o++ = 'b'; break;
		case '\f': *o++ = '\\'; *o++ = 'f'; break;
		case '\n': *o++ = '\\'; *o++ = 'n'; break;
		case '\r': *o++ = '\\'; *o++ = 'r'; break;
		case '\t': *o++ = '\\'; *o++ = 't'; break;
		default:
			if (*p < 0x20) {
				memcpy(o, "\\u00", 4);
				o[4] = hex[*p >> 4];
				o[5] = hex[*p & 15];
				o += 6;
			} else
				*o++ = (char)*p;
		}
	}
	*o++ = '"';
	return o;
}

/*
 * Writes the number v at o (at most 32 bytes); returns the end.  Whole
 * numbers (every count and time batchd writes) are written as integers
 * without printf; others with 17 digits, which read back to the same
 * double; what JSON cannot hold as null, as cJSON does.
 */
static char *
st_json_number(char *o, double v)
{
	char digits[24];
	size_t n = 0;
	uint64_t u;

	if (!(v == v) || v > 1e308 || v < -1e308)
		return memcpy(o, "null", 4), o + 4;
	if (v > 9007199254740992.0 || v < -9007199254740992.0 ||
	    v != (double)(int64_t)v)
		return o + snprintf(o, 32, "%.17g", v);
	if (v < 0) {
		*o++ = '-';
		u = (uint64_t)(-(int64_t)v);
	} else
		u = (uint64_t)v;
	do {
		digits[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	while (n > 0)
		*o++ = digits[--n];
	return o;
}

/* The most st_props_put() writes for props. */
static size_t
st_props_max(const cJSON *props)
{
	const cJSON *p;
	size_t cap = 2;

	cJSON_ArrayForEach(p, props)
		cap += ST_JSON_MAX(strlen(p->string)) + 2 + (cJSON_IsString(p) ?
		    ST_JSON_MAX(strlen(p->valuestring)) : 32);
	return cap;
}

/*
 * Writes props (a flat object of strings, numbers and booleans:
 * st_check_props()) at o as compact JSON; returns the end.
 * cJSON_PrintUnformatted() would print every number with "%1.15g" and
 * read it back with sscanf to check it.
 */
static char *
st_props_put(char *o, const cJSON *props)
{
	const cJSON *p;

	*o++ = '{';
	cJSON_ArrayForEach(p, props) {
		if (p != props->child)
			*o++ = ',';
		o = st_json_put(o, p->string);
		*o++ = ':';
		if (cJSON_IsString(p))
			o = st_json_put(o, p->valuestring);
		else if (cJSON_IsNumber(p))
			o = st_json_number(o, p->valuedouble);
		else if (cJSON_IsTrue(p))
			o = (char *)memcpy(o, "true", 4) + 4;
		else if (cJSON_IsFalse(p))
			o = (char *)memcpy(o, "false", 5) + 5;
		else
			o = (char *)memcpy(o, "null", 4) + 4;
	}
	*o++ = '}';
	return o;
}

/* Writes the string lit at o; returns the end. */
static char *
st_put(char *o, const char *lit)
{
	size_t n = strlen(lit);

	memcpy(o, lit, n);
	return o + n;
}

/* The most st_put_head() writes for r. */
#define ST_HEAD_MAX(r, etag) (64 + ST_JSON_MAX(strlen((r)->pk)) + \
	ST_JSON_MAX(strlen((r)->rk)) + ST_JSON_MAX(strlen(etag)))

/* Writes the start of r's row file, through the ETag; returns the end. */
static char *
st_put_head(char *o, const struct st_req *r, const char *etag)
{
	o = st_put(o, "{\"v\":1,\"PartitionKey\":");
	o = st_json_put(o, r->pk);
	o = st_put(o, ",\"RowKey\":");
	o = st_json_put(o, r->rk);
	o = st_put(o, ",\"etag\":");
	return st_json_put(o, etag);
}

/*
 * The text of a row file for r's keys with props at version, and its
 * ETag in *etag; caller frees both.  Written into one buffer, not by
 * cJSON (see st_props_put()).
 */
static char *
st_row_text(const struct st_req *r, const cJSON *props, int64_t version,
    char **etag)
{
	char tok[17], ts[40], *out, *o;
	size_t cap;

	bd_spool_random_hex(tok, 8);
	*etag = xasprintf("W/\"%" PRId64 ".%s\"", version, tok);
	bd_clock_format_iso(bd_clock_now_ms(), ts, sizeof(ts));
	cap = 96 + sizeof(ts) + ST_HEAD_MAX(r, *etag) + st_props_max(props);
	o = out = xmalloc(cap);
	o = st_put_head(o, r, *etag);
	o = st_put(o, ",\"version\":");
	o = st_json_number(o, (double)version);
	o = st_put(o, ",\"Timestamp\":\"");
	o = st_put(o, ts);
	o = st_put(o, "\",\"props\":");
	o = st_props_put(o, props);
	*o++ = '}';
	*o = '\0';
	return out;
}

/* ---- rows remembered ------------------------------------------------ */

static void
st_cached_free(struct st_cached *c)
{
	if (c == NULL)
		return;
	free(c->head);
	free(c->etag);
	cJSON_Delete(c->props);
	free(c);
}

/* FNV-1a of r's table and encoded keys. */
static uint64_t
st_row_key(const struct st_req *r)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)r->t;

	for (const char *p = r->pk_enc; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '/') * 1099511628211ULL;
	for (const char *p = r->rk_name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

/* The slot of r's row (key: st_row_key()) among the remembered, or NULL;
 * under rows_mu. */
static struct st_cached **
st_cache_find(struct st_store *s, const struct st_req *r, uint64_t key)
{
	for (int i = 0; i < ST_ROWS; i++) {
		struct st_cached *c = s->rows[i];

		if (c != NULL && c->key == key && c->t == (int)r->t &&
		    strcmp(c->rk_name, r->rk_name) == 0 &&
		    strcmp(c->pk_enc, r->pk_enc) == 0)
			return &s->rows[i];
	}
	return NULL;
}

/*
 * Remembers r's row at version with etag and props (taken: freed here or
 * later), in the place of what was remembered for it or of the row used
 * least recently.
 */
static void
st_cache_put(struct st_req *r, const char *etag, int64_t version,
    cJSON *props)
{
	struct st_store *s = r->s;
	struct st_cached *c, **slot, *old;

	if (props == NULL)	/* cJSON out of memory: nothing to remember */
		return;
	c = xcalloc(1, sizeof(*c));
	c->key = st_row_key(r);
	c->t = (int)r->t;
	memcpy(c->pk_enc, r->pk_enc, sizeof(c->pk_enc));
	memcpy(c->rk_name, r->rk_name, sizeof(c->rk_name));
	c->head = xmalloc(ST_HEAD_MAX(r, etag));
	c->head_len = (size_t)(st_put_head(c->head, r, etag) - c->head);
	c->etag = xstrdup(etag);
	c->version = version;
	c->props = props;
	uv_mutex_lock(&s->rows_mu);
	c->used = ++s->rows_clock;
	if ((slot = st_cache_find(s, r, c->key)) == NULL) {
		slot = &s->rows[0];
		for (int i = 0; i < ST_ROWS; i++) {
			if (s->rows[i] == NULL) {
				slot = &s->rows[i];
				break;
			}
			if (s->rows[i]->used < (*slot)->used)
				slot = &s->rows[i];
		}
	}
	old = *slot;
	*slot = c;
	uv_mutex_unlock(&s->rows_mu);
	st_cached_free(old);
}

/*
 * What is remembered of r's row, taken out (the caller frees it), if the
 * file open at fd is that version of the row: NULL otherwise.
 */
static struct st_cached *
st_cache_take(struct st_req *r, int fd)
{
	struct st_store *s = r->s;
	struct st_cached *c = NULL, **slot;
	uint64_t key = st_row_key(r);
	char buf[1024];
	ssize_t n;

	uv_mutex_lock(&s->rows_mu);
	if ((slot = st_cache_find(s, r, key)) != NULL) {
		c = *slot;
		*slot = NULL;
	}
	uv_mutex_unlock(&s->rows_mu);
	if (c == NULL)
		return NULL;
	if (c->head_len > sizeof(buf) || (n = pread(fd, buf, c->head_len,
	    0)) != (ssize_t)c->head_len || memcmp(buf, c->head,
	    c->head_len) != 0) {
		st_cached_free(c);
		return NULL;
	}
	return c;
}

/* ---- work ----------------------------------------------------------- */

/* Sets r's failure: status and "table/pk/rk: what". */
static void
st_fail(struct st_req *r, int rc, const char *what)
{
	char *where = st_where(r);

	r->status = rc;
	r->detail = xasprintf("%s: %s", where, what ? what : bd_strerror(rc));
	free(where);
	if (rc == -ESTALE)
		r->d.conflicts++;
	else if (rc == -EEXIST)
		r->d.exists++;
	else if (rc == -ENOENT)
		r->d.not_found++;
	else
		r->d.failures++;
}

/* Opens r's partition directory; create: make it if missing (and fsync
 * the table directory, so the new row's parent survives a crash). */
static int
st_open_partition_dir(struct st_req *r, bool create)
{
	int tfd = r->s->table_fd[r->t], fd;

	fd = openat(tfd, r->pk_enc, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd >= 0 ? fd : -errno;
	if (r->on_loop) {
		r->to_pool = true;	/* an fsync: for the pool */
		return -EWOULDBLOCK;
	}
	if (mkdirat(tfd, r->pk_enc, BD_SPOOL_DIR_MODE) == -1 && errno != EEXIST)
		return -errno;
	if (fsync(tfd) == -1)
		return -errno;
	fd = openat(tfd, r->pk_enc, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
	return fd >= 0 ? fd : -errno;
}

/*
 * r's partition directory, from the open ones or opened (and kept, in the
 * place of the one least recently used that no request holds).  The fd
 * or a negative errno; give it back with st_close_partition().
 */
static int
st_open_partition(struct st_req *r, bool create)
{
	struct st_store *s = r->s;
	struct st_part *p, *victim = NULL;
	int fd;

	uv_mutex_lock(&s->part_mu);
	for (p = s->parts; p < s->parts + ST_PARTS; p++)
		if (p->fd >= 0 && p->t == (int)r->t &&
		    strcmp(p->name, r->pk_enc) == 0) {
			p->refs++;
			p->used = ++s->part_clock;
			uv_mutex_unlock(&s->part_mu);
			return p->fd;
		}
	uv_mutex_unlock(&s->part_mu);
	if ((fd = st_open_partition_dir(r, create)) < 0)
		return fd;
	uv_mutex_lock(&s->part_mu);
	for (p = s->parts; p < s->parts + ST_PARTS; p++) {
		if (p->fd >= 0 && p->t == (int)r->t &&
		    strcmp(p->name, r->pk_enc) == 0) {
			victim = NULL;	/* another request kept it first */
			break;
		}
		if (p->refs == 0 && (victim == NULL || p->fd < 0 ||
		    (victim->fd >= 0 && p->used < victim->used)))
			victim = p;
	}
	if (victim != NULL) {
		if (victim->fd >= 0)
			close(victim->fd);
		victim->t = (int)r->t;
		memcpy(victim->name, r->pk_enc, sizeof(victim->name));
		victim->fd = fd;
		victim->refs = 1;
		victim->used = ++s->part_clock;
	}
	uv_mutex_unlock(&s->part_mu);
	return fd;
}

/* Gives back a directory from st_open_partition(). */
static void
st_close_partition(struct st_req *r, int fd)
{
	struct st_store *s = r->s;

	uv_mutex_lock(&s->part_mu);
	for (struct st_part *p = s->parts; p < s->parts + ST_PARTS; p++)
		if (p->fd == fd) {
			p->refs--;
			uv_mutex_unlock(&s->part_mu);
			return;
		}
	uv_mutex_unlock(&s->part_mu);
	close(fd);
}

/*
 * Worker: r's rename or unlink in directory dfd is done; r ends when an
 * fsync of dfd has made it durable (st_commit_start()).  0 or a negative
 * errno.
 */
static int
st_wait_commit(struct st_req *r, int dfd)
{
	struct stat st;

	if (fstat(dfd, &st) == -1 ||
	    (r->commit_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0)) == -1)
		return -errno;
	r->needs_commit = true;
	r->commit_dev = st.st_dev;
	r->commit_ino = st.st_ino;
	return 0;
}

/* Worker: how far r's temporary file's data goes before the rename. */
static enum bd_spool_sync
st_temp_sync(const struct st_req *r)
{
	if (r->lazy)
		return BD_SPOOL_NO_SYNC;
	/* The directory's commit makes it durable (fsutil.h). */
	if (r->s->sync && r->s->fsync_commits_renames[r->t])
		return BD_SPOOL_WRITE_OUT;
	return BD_SPOOL_FSYNC;
}

/* Inserts a new row file for r at version 1: 0 or -EEXIST.  On success
 * r->props is used up (remembered). */
static int
st_insert_file(struct st_req *r, int pfd)
{
	char tmp[BD_SPOOL_TMP_LEN], *etag;
	char *text = st_row_text(r, r->props, 1, &etag);
	int fd, rc;

	fd = bd_spool_write_temp(pfd, text, strlen(text), st_temp_sync(r),
	    tmp);
	free(text);
	if (fd < 0) {
		free(etag);
		return fd;
	}
	if (st_is_lost_row(pfd, r->rk_name)) {
		/* What a power failure left of a lazy write is no row. */
		if ((rc = renameat(pfd, tmp, pfd, r->rk_name) == -1 ? -errno :
		    0) < 0)
			unlinkat(pfd, tmp, 0);
	} else
		rc = st_rename_noreplace(pfd, tmp, r->rk_name);
	close(fd);
	if (rc == 0 && r->s->sync && !r->lazy)
		rc = st_wait_commit(r, pfd);
	if (rc == 0) {
		if (st_temp_sync(r) == BD_SPOOL_WRITE_OUT)
			r->d.written_out++;
		st_cache_put(r, etag, 1, r->props);
		r->props = NULL;	/* the loop ends after this */
		r->new_etag = etag;
	} else
		free(etag);
	return rc;
}

/*
 * Opens and locks r's row file, making sure the name still leads to the
 * locked file.  Returns the fd, or -ENOENT when there is no row.
 */
static int
st_lock_row(struct st_req *r, int pfd)
{
	for (int tries = 0; tries < ST_MAX_TRIES; tries++) {
		struct stat a, b;
		int fd, rc;

		fd = openat(pfd, r->rk_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd == -1)
			return -errno;
		if ((rc = bd_spool_flock_wait(fd, r->on_loop ? 0 :
		    ST_LOCK_WAIT_MS)) < 0) {
			r->to_pool = r->on_loop && rc == -ETIMEDOUT;
			close(fd);
			return rc;
		}
		if (fstat(fd, &a) == 0 && fstatat(pfd, r->rk_name, &b,
		    AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev)
			return fd;
		/* Replaced or removed while we waited: look again. */
		close(fd);
		r->d.lock_retries++;
	}
	return -EAGAIN;
}

/*
 * Moves the properties of add into base (base's others are kept): add is
 * left empty, nothing is copied.
 */
static void
st_merge_props(cJSON *base, cJSON *add)
{
	cJSON *p, *old;

	while ((p = add->child) != NULL) {
		cJSON_DetachItemViaPointer(add, p);
		if ((old = cJSON_GetObjectItemCaseSensitive(base, p->string)) !=
		    NULL)
			cJSON_ReplaceItemViaPointer(base, old, p);
		else
			cJSON_AddItemToObject(base, p->string, p);
	}
}

/* Worker: insert, replace, merge or remove, under the row's lock. */
static void
st_write_work(uv_work_t *w)
{
	struct st_req *r = container_of(w, struct st_req, work);
	bool upsert = r->etag == NULL && r->op != ST_REMOVE;
	bool any = r->etag == NULL || strcmp(r->etag, "*") == 0;
	int pfd, fd = -1, rc = 0;

	pfd = st_open_partition(r, r->op == ST_INSERT || upsert);
	if (pfd < 0) {
		st_fail(r, pfd, pfd == -ENOENT ? "no such row" : NULL);
		return;
	}
	if (r->op == ST_INSERT) {
		rc = st_insert_file(r, pfd);
		if (rc < 0)
			st_fail(r, rc, rc == -EEXIST ? "the row exists" : NULL);
		st_close_partition(r, pfd);
		return;
	}
	for (int tries = 0; tries < ST_MAX_TRIES; tries++) {
		struct st_row row;
		struct st_cached *cached;
		char tmp[BD_SPOOL_TMP_LEN], *text, *etag;
		cJSON *props;
		int64_t version;
		int tfd;

		if ((fd = st_lock_row(r, pfd)) == -ENOENT && upsert) {
			/* InsertOrReplace/InsertOrMerge of a missing row. */
			if ((rc = st_insert_file(r, pfd)) == -EEXIST) {
				r->d.lock_retries++;
				continue;
			}
			break;
		}
		if (fd < 0) {
			rc = fd;
			break;
		}
		if ((cached = st_cache_take(r, fd)) != NULL) {
			/* The version this store last read or wrote. */
			memset(&row, 0, sizeof(row));
			row.etag = cached->etag;
			row.version = cached->version;
			row.props = cached->props;
			r->d.rows_reused++;
			rc = 0;
		} else if ((rc = st_row_read(fd, false, &row)) < 0) {
			/*
			 * A file that is not a row: an unconditional write
			 * replaces it, anything else reports it.
			 */
			if (!any)
				break;
			rc = 0;
		}
		if (!any && strcmp(r->etag, row.etag) != 0) {
			st_row_clear(&row);
			st_cached_free(cached);
			rc = -ESTALE;
			break;
		}
		if (r->op == ST_REMOVE) {
			st_row_clear(&row);
			st_cached_free(cached);
			if (unlinkat(pfd, r->rk_name, 0) == -1)
				rc = -errno;
			else if (r->s->sync)
				rc = st_wait_commit(r, pfd);
			break;
		}
		/* The loop ends after this write: r->props may be used up,
		   and the new properties are kept to be remembered. */
		if (r->op == ST_MERGE && row.props != NULL) {
			st_merge_props(row.props, r->props);
			if (cached != NULL) {
				props = cached->props;
				cached->props = NULL;
			} else
				props = cJSON_DetachItemViaPointer(row.doc,
				    row.props);
		} else {
			props = r->props;
			r->props = NULL;
		}
		version = row.version + 1;
		text = st_row_text(r, props, version, &etag);
		st_row_clear(&row);
		st_cached_free(cached);
		if (strlen(text) > ST_MAX_ENTITY + 4096) {
			cJSON_Delete(props);
			free(text);
			free(etag);
			rc = BD_ETOOBIG;
			break;
		}
		/* An error leaves the row as it was. */
		tfd = bd_spool_write_temp(pfd, text, strlen(text),
		    st_temp_sync(r), tmp);
		free(text);
		if (tfd < 0) {
			cJSON_Delete(props);
			free(etag);
			rc = tfd;
			break;
		}
		if (renameat(pfd, tmp, pfd, r->rk_name) == -1) {
			rc = -errno;
			unlinkat(pfd, tmp, 0);
		} else if (r->s->sync && !r->lazy)
			rc = st_wait_commit(r, pfd);
		close(tfd);
		if (rc == 0) {
			if (st_temp_sync(r) == BD_SPOOL_WRITE_OUT)
				r->d.written_out++;
			st_cache_put(r, etag, version, props);
			r->new_etag = etag;
		} else {
			cJSON_Delete(props);
			free(etag);
		}
		break;
	}
	if (fd >= 0)
		close(fd);
	st_close_partition(r, pfd);
	if (rc == -ESTALE)
		st_fail(r, rc, "the row changed since it was read (ETag "
		    "mismatch)");
	else if (rc == -ENOENT)
		st_fail(r, rc, "no such row");
	else if (rc == BD_EJSON)
		st_fail(r, rc, "the row's file is not a row");
	else if (rc == -ETIMEDOUT)
		st_fail(r, rc, "the row stayed locked by another writer");
	else if (rc == BD_ETOOBIG)
		st_fail(r, rc, "the merged row would pass 1 MiB");
	else if (rc < 0)
		st_fail(r, rc, NULL);
}

/* Worker: reads one row. */
static void
st_get_work(uv_work_t *w)
{
	struct st_req *r = container_of(w, struct st_req, work);
	struct st_row row = { 0 };
	int pfd, fd, rc;

	if ((pfd = st_open_partition(r, false)) < 0) {
		st_fail(r, pfd, pfd == -ENOENT ? "no such row" : NULL);
		return;
	}
	fd = openat(pfd, r->rk_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	rc = fd == -1 ? -errno : st_row_read(fd, true, &row);
	if (rc == 0)	/* for the write that usually follows a read */
		st_cache_put(r, row.e->etag, row.version,
		    cJSON_Duplicate(row.e->props, 1));
	if (fd >= 0)
		close(fd);
	st_close_partition(r, pfd);
	if (rc < 0) {
		if (rc == BD_EJSON || rc == BD_ETOOBIG)
			r->d.corrupt++;
		st_fail(r, rc, rc == -ENOENT ? "no such row" :
		    rc == BD_EJSON ? "the row's file is not a row" : NULL);
		return;
	}
	r->entity = row.e;
	row.e = NULL;
	st_row_clear(&row);
}

static int
st_entity_cmp(const void *a, const void *b)
{
	const struct bd_entity *x = *(struct bd_entity *const *)a;
	const struct bd_entity *y = *(struct bd_entity *const *)b;
	int c = strcmp(x->partition_key, y->partition_key);

	return c != 0 ? c : strcmp(x->row_key, y->row_key);
}

/* Reads every row of the partition directory name in tfd into r. */
static int
st_query_partition(struct st_req *r, int tfd, const char *name, size_t *cap)
{
	int64_t now = bd_clock_now_ms();
	struct dirent *de;
	DIR *d;
	int pfd;

	pfd = openat(tfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (pfd == -1)
		return errno == ENOENT ? 0 : -errno;
	if ((d = fdopendir(pfd)) == NULL) {
		int rc = -errno;
		close(pfd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct st_row row;
		int fd, rc;

		if (de->d_name[0] == '.') {
			if (bd_spool_clean_temp(pfd, de->d_name, now))
				r->d.temps_removed++;
			continue;
		}
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		fd = openat(pfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd == -1)
			continue; /* removed since readdir */
		rc = st_row_read(fd, true, &row);
		close(fd);
		if (rc < 0) {
			r->d.corrupt++;
			continue;
		}
		if (r->n_rows == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			r->rows = xreallocarray(r->rows, *cap,
			    sizeof(*r->rows));
		}
		r->rows[r->n_rows++] = row.e;
		row.e = NULL;
		st_row_clear(&row);
	}
	closedir(d);
	return 0;
}

/* Worker: reads a partition, or every partition, sorted by the keys. */
static void
st_query_work(uv_work_t *w)
{
	struct st_req *r = container_of(w, struct st_req, work);
	int tfd = r->s->table_fd[r->t], rc = 0;
	size_t cap = 0;

	if (r->pk != NULL)
		rc = st_query_partition(r, tfd, r->pk_enc, &cap);
	else {
		int fd = openat(tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct dirent *de;
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

		if (d == NULL) {
			rc = -errno;
			if (fd >= 0)
				close(fd);
		}
		while (d != NULL && rc == 0 && (de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				rc = st_query_partition(r, tfd, de->d_name,
				    &cap);
		if (d != NULL)
			closedir(d);
	}
	if (rc < 0) {
		for (size_t i = 0; i < r->n_rows; i++)
			bd_entity_free(r->rows[i]);
		free(r->rows);
		r->rows = NULL;
		r->n_rows = 0;
		st_fail(r, rc, NULL);
		return;
	}
	if (r->n_rows > 1)
		qsort(r->rows, r->n_rows, sizeof(*r->rows),
		    st_entity_cmp);
	r->d.rows_read += r->n_rows;
}

/* Worker: makes sure the table directories exist. */
static void
st_create_work(uv_work_t *w)
{
	struct st_req *r = container_of(w, struct st_req, work);
	int rc = 0;

	for (int t = 0; t < ST_NTABLES && rc == 0; t++) {
		char *p = xasprintf("%s/%s", r->s->dir, bd_table_name(t));
		rc = bd_mkdir_p(p, BD_SPOOL_DIR_MODE);
		free(p);
	}
	if (rc < 0) {
		r->status = rc;
		r->detail = xasprintf("%s: %s", r->s->dir, bd_strerror(rc));
		r->d.failures++;
	}
}

/* ---- requests ------------------------------------------------------- */

static void
st_stats_add(struct bd_store_local_stats *a,
    const struct bd_store_local_stats *b)
{
	uint64_t *x = (uint64_t *)a;
	const uint64_t *y = (const uint64_t *)b;

	for (size_t i = 0; i < sizeof(*a) / sizeof(uint64_t); i++)
		x[i] += y[i];
}

static void
st_req_free(struct st_req *r)
{
	if (r->commit_fd >= 0)
		close(r->commit_fd);
	free(r->pk);
	free(r->rk);
	free(r->etag);
	cJSON_Delete(r->props);
	free(r->detail);
	free(r->new_etag);
	bd_entity_free(r->entity);
	free(r);
}

/* Loop: ends a request, running its callback once. */
static void
st_finish(struct st_req *r)
{
	struct st_store *s = r->s;
	struct bd_entity *e;
	struct bd_entity **rows;

	s->in_flight--;
	st_stats_add(&s->stats, &r->d);
	switch (r->op) {
	case ST_GET:
		s->stats.gets++;
		e = r->status == 0 ? r->entity : NULL;
		r->entity = NULL;
		r->cb.entity(r->arg, r->status, e, r->detail);
		break;
	case ST_QUERY:
		s->stats.queries++;
		rows = r->rows;
		r->rows = NULL;
		r->cb.query(r->arg, r->status, rows, r->n_rows, r->detail);
		break;
	case ST_INSERT:
	case ST_REPLACE:
	case ST_MERGE:
	case ST_REMOVE:
	case ST_CREATE:
		if (r->status == 0 && r->op == ST_INSERT)
			s->stats.inserts++;
		else if (r->status == 0 && r->op == ST_REPLACE)
			s->stats.replaces++;
		else if (r->status == 0 && r->op == ST_MERGE)
			s->stats.merges++;
		else if (r->status == 0 && r->op == ST_REMOVE)
			s->stats.removes++;
		r->cb.write(r->arg, r->status, r->status == 0 ? r->new_etag :
		    NULL, r->detail);
		break;
	}
	st_req_free(r);
}

/* ---- group commit --------------------------------------------------- */

/* The writes one commit job makes durable. */
struct st_commit {
	uv_work_t work;
	struct st_store *s;
	struct st_req *reqs;
};

/* A directory one commit (or flush) has fsynced, and how that went. */
struct st_synced {
	dev_t dev;
	ino_t ino;
	int rc;
};

static void st_commit_start(struct st_store *s);

/* Where r's directory is in done[0..n), or NULL. */
static struct st_synced *
st_synced_find(struct st_synced *done, size_t n, const struct st_req *r)
{
	for (size_t i = 0; i < n; i++)
		if (done[i].dev == r->commit_dev && done[i].ino ==
		    r->commit_ino)
			return &done[i];
	return NULL;
}

/*
 * Fsyncs the directory of each write in the list that holds its fd (one
 * per directory: st_after_work()).  Returns what each gave, *n of them;
 * caller frees.
 */
static struct st_synced *
st_sync_dirs(const struct st_req *list, size_t *n)
{
	struct st_synced *done;
	size_t cap = 0;

	for (const struct st_req *r = list; r != NULL; r = r->commit_next)
		cap += r->commit_fd >= 0;
	done = xcalloc(cap + 1, sizeof(*done));
	*n = 0;
	for (const struct st_req *r = list; r != NULL; r = r->commit_next)
		if (r->commit_fd >= 0)
			done[(*n)++] = (struct st_synced){ r->commit_dev,
			    r->commit_ino, fsync(r->commit_fd) == -1 ? -errno :
			    0 };
	return done;
}

/* Worker: fsyncs each directory of the job's writes once; each write gets
 * its directory's result in status. */
static void
st_commit_work(uv_work_t *w)
{
	struct st_commit *c = container_of(w, struct st_commit, work);
	size_t n;
	struct st_synced *done = st_sync_dirs(c->reqs, &n);

	for (struct st_req *r = c->reqs; r != NULL; r = r->commit_next) {
		struct st_synced *d = st_synced_find(done, n, r);

		/* Every directory's first write holds its fd. */
		r->status = d != NULL ? d->rc : -EIO;
		if (r->commit_fd >= 0)
			r->d.dir_syncs++;
		else
			r->d.dir_syncs_shared++;
	}
	free(done);
}

/* Loop: the job's writes are durable, or failed: their callbacks run. */
static void
st_commit_done(uv_work_t *w, int status)
{
	struct st_commit *c = container_of(w, struct st_commit, work);
	struct st_store *s = c->s;
	struct st_req *r = c->reqs, *next;

	free(c);
	/* The next commit first: a callback may free the store (when its
	   write was the last one), and nothing may touch s after that. */
	s->committing = NULL;
	st_commit_start(s);
	for (; r != NULL; r = next) {
		next = r->commit_next;
		if (status == UV_ECANCELED)
			r->status = -ECANCELED;
		if (r->status < 0) {
			int rc = r->status;

			/* Renamed but maybe not durable: a failure, which
			   the caller may retry. */
			st_fail(r, rc, NULL);
		}
		st_finish(r);
	}
}

static void
st_commit_on_timer(uv_timer_t *t)
{
	st_commit_start(t->data);
}

/*
 * Loop: starts a commit job for every waiting write, unless one runs (its
 * end starts the next) or the commit delay since the oldest has not
 * passed yet (the timer comes back then).
 */
static void
st_commit_start(struct st_store *s)
{
	struct st_commit *c;
	uint64_t now, due;
	int rc;

	if (s->committing != NULL || s->waiting == NULL)
		return;
	now = uv_now(s->loop);
	due = s->waiting_since + s->commit_delay_ms;
	if (now < due && s->n_waiting < ST_COMMIT_MAX) {
		uv_timer_start(s->commit_timer, st_commit_on_timer, due - now,
		    0);
		return;
	}
	if (s->commit_timer != NULL)
		uv_timer_stop(s->commit_timer);
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->reqs = s->waiting;
	s->waiting = NULL;
	s->waiting_tail = &s->waiting;
	s->n_waiting = 0;
	s->committing = c;
	if ((rc = uv_queue_work(s->loop, &c->work, st_commit_work,
	    st_commit_done)) < 0) {
		for (struct st_req *r = c->reqs; r != NULL; r = r->commit_next)
			r->status = rc;
		st_commit_done(&c->work, 0);
	}
}

/* Loop: r's worker is done with it. */
static void
st_after_work(uv_work_t *w, int status)
{
	struct st_req *r = container_of(w, struct st_req, work);
	struct st_store *s = r->s;

	if (r->pool_slot >= 0)
		s->pool_writes[r->pool_slot]--;
	r->pool_slot = -1;
	if (status == UV_ECANCELED && r->status == 0)
		r->status = -ECANCELED;
	if (r->status < 0 || !r->needs_commit) {
		st_finish(r);
		return;
	}
	/* Renamed: its callback waits for the commit.  One fd per
	   directory waits, however many writes do. */
	for (struct st_req *o = s->waiting; o != NULL; o = o->commit_next)
		if (o->commit_fd >= 0 && o->commit_dev == r->commit_dev &&
		    o->commit_ino == r->commit_ino) {
			close(r->commit_fd);
			r->commit_fd = -1;
			break;
		}
	if (s->waiting == NULL)
		s->waiting_since = uv_now(s->loop);
	r->commit_next = NULL;
	*s->waiting_tail = r;
	s->waiting_tail = &r->commit_next;
	s->n_waiting++;
	st_commit_start(s);
}

/* Loop: queues r; on failure frees it and returns the error. */
static int
st_queue_req(struct st_req *r, uv_work_cb fn)
{
	int rc = uv_queue_work(r->s->loop, &r->work, fn, st_after_work);

	if (rc < 0) {
		st_req_free(r);
		return rc;
	}
	r->s->in_flight++;
	if (fn == st_write_work) {
		r->pool_slot = (int)(st_row_key(r) % ST_POOL_SLOTS);
		r->s->pool_writes[r->pool_slot]++;
	}
	return 0;
}

/* Loop: the callbacks of the lazy writes done on the loop. */
static void
st_on_deferred(uv_idle_t *h)
{
	struct st_store *s = h->data;
	struct st_req *list = s->deferred;

	uv_idle_stop(h);
	s->deferred = NULL;
	s->deferred_tail = &s->deferred;
	/* A callback may free the store once the last one runs. */
	while (list != NULL) {
		struct st_req *r = list;

		list = r->commit_next;
		r->commit_next = NULL;
		st_after_work(&r->work, 0);
	}
}

/*
 * Loop: does lazy write r here (the header says why), its callback left
 * for a later turn.  False, with r as it was, when it has to go to the
 * pool: a write of its row is there, another process holds its lock, or
 * its partition is new (making one fsyncs the table's directory).
 */
static bool
st_write_on_loop(struct st_req *r)
{
	struct st_store *s = r->s;

	if (s->pool_writes[st_row_key(r) % ST_POOL_SLOTS] != 0)
		return false;
	r->on_loop = true;
	st_write_work(&r->work);
	r->on_loop = false;
	if (r->to_pool) {
		r->to_pool = false;
		r->status = 0;
		free(r->detail);
		r->detail = NULL;
		r->d.failures--;	/* st_fail() counted it */
		return false;
	}
	if (s->defer_idle == NULL) {
		s->defer_idle = xcalloc(1, sizeof(*s->defer_idle));
		uv_idle_init(s->loop, s->defer_idle);
		s->defer_idle->data = s;
	}
	s->in_flight++;
	s->stats.lazy_on_loop++;
	*s->deferred_tail = r;
	s->deferred_tail = &r->commit_next;
	uv_idle_start(s->defer_idle, st_on_deferred);
	return true;
}

/*
 * A request for table t and the keys (rk may be NULL, pk may be NULL for
 * a query); on a bad key returns NULL with *rc set.
 */
static struct st_req *
st_req_new(struct st_store *s, enum st_op op, enum bd_table t, const char *pk,
    const char *rk, void *arg, int *rc)
{
	struct st_req *r;
	char enc[ST_NAME_MAX];

	if ((unsigned)t >= ST_NTABLES) {
		*rc = -EINVAL;
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->s = s;
	r->commit_fd = -1;
	r->pool_slot = -1;
	r->op = op;
	r->t = t;
	r->arg = arg;
	if (pk != NULL) {
		if ((*rc = st_encode(pk, r->pk_enc, sizeof(r->pk_enc))) < 0)
			goto bad;
		r->pk = xstrdup(pk);
	}
	if (rk != NULL) {
		if ((*rc = st_encode(rk, enc, sizeof(enc))) < 0)
			goto bad;
		snprintf(r->rk_name, sizeof(r->rk_name), "%s.json", enc);
		r->rk = xstrdup(rk);
	}
	*rc = 0;
	return r;
bad:
	st_req_free(r);
	return NULL;
}

/*
 * Checks an entity's properties: a flat object of strings, numbers and
 * booleans with sensible names, at most ST_MAX_ENTITY as JSON.
 */
static int
st_check_props(const cJSON *props)
{
	const cJSON *p;
	int n = 0, rc = 0;
	size_t bound = 2;
	char *text;

	if (!cJSON_IsObject(props))
		return -EINVAL;
	cJSON_ArrayForEach(p, props) {
		if (p->string == NULL || *p->string == '\0' ||
		    strlen(p->string) > ST_MAX_PROP_NAME ||
		    strcmp(p->string, "PartitionKey") == 0 ||
		    strcmp(p->string, "RowKey") == 0 ||
		    strcmp(p->string, "Timestamp") == 0)
			return -EINVAL;
		if (!cJSON_IsString(p) && !cJSON_IsNumber(p) && !cJSON_IsBool(p))
			return -EINVAL;
		if (++n > ST_MAX_PROPS)
			return -EINVAL;
		/* "name":value, with a number at most 32 characters. */
		bound += 6 * strlen(p->string) + 4 + (cJSON_IsString(p) ?
		    6 * strlen(p->valuestring) + 2 : 32);
	}
	/* Printing runs on the loop thread: only when a bound on the
	   printed size (every byte escaped as \u00XX) passes the limit. */
	if (bound <= ST_MAX_ENTITY)
		return 0;
	if ((text = cJSON_PrintUnformatted(props)) == NULL)
		abort();
	if (strlen(text) > ST_MAX_ENTITY)
		rc = BD_ETOOBIG;
	free(text);
	return rc;
}

static int
st_get(struct bd_store *bs, enum bd_table t, const char *pk, const char *rk,
    bd_store_entity_cb cb, void *arg)
{
	struct st_req *r;
	int rc;

	if (pk == NULL || rk == NULL || cb == NULL)
		return -EINVAL;
	if ((r = st_req_new((struct st_store *)bs, ST_GET, t, pk, rk, arg,
	    &rc)) == NULL)
		return rc;
	r->cb.entity = cb;
	return st_queue_req(r, st_get_work);
}

/* The common part of insert, replace, merge. */
static int
st_write(struct bd_store *bs, enum st_op op, enum bd_table t,
    const struct bd_entity *e, const char *etag, bd_store_write_cb cb,
    void *arg)
{
	struct st_req *r;
	int rc;

	if (e == NULL || e->partition_key == NULL || e->row_key == NULL ||
	    cb == NULL)
		return -EINVAL;
	if ((rc = st_check_props(e->props)) < 0)
		return rc;
	if ((r = st_req_new((struct st_store *)bs, op, t, e->partition_key,
	    e->row_key, arg, &rc)) == NULL)
		return rc;
	r->cb.write = cb;
	r->etag = etag ? xstrdup(etag) : NULL;
	r->props = cJSON_Duplicate(e->props, 1);
	r->lazy = e->lazy;
	if (r->lazy && st_write_on_loop(r))
		return 0;
	return st_queue_req(r, st_write_work);
}

static int
st_insert(struct bd_store *bs, enum bd_table t, const struct bd_entity *e,
    bd_store_write_cb cb, void *arg)
{
	return st_write(bs, ST_INSERT, t, e, NULL, cb, arg);
}

static int
st_replace(struct bd_store *bs, enum bd_table t, const struct bd_entity *e,
    const char *etag, bd_store_write_cb cb, void *arg)
{
	return st_write(bs, ST_REPLACE, t, e, etag, cb, arg);
}

static int
st_merge(struct bd_store *bs, enum bd_table t, const struct bd_entity *e,
    const char *etag, bd_store_write_cb cb, void *arg)
{
	return st_write(bs, ST_MERGE, t, e, etag, cb, arg);
}

static int
st_remove(struct bd_store *bs, enum bd_table t, const char *pk,
    const char *rk, const char *etag, bd_store_write_cb cb, void *arg)
{
	struct st_req *r;
	int rc;

	if (pk == NULL || rk == NULL || cb == NULL)
		return -EINVAL;
	if ((r = st_req_new((struct st_store *)bs, ST_REMOVE, t, pk, rk, arg,
	    &rc)) == NULL)
		return rc;
	r->cb.write = cb;
	r->etag = xstrdup(etag ? etag : "*");
	return st_queue_req(r, st_write_work);
}

static int
st_query(struct bd_store *bs, enum bd_table t, const char *pk,
    bd_store_query_cb cb, void *arg)
{
	struct st_req *r;
	int rc;

	if (cb == NULL)
		return -EINVAL;
	if ((r = st_req_new((struct st_store *)bs, ST_QUERY, t, pk, NULL, arg,
	    &rc)) == NULL)
		return rc;
	r->cb.query = cb;
	return st_queue_req(r, st_query_work);
}

static int
st_create(struct bd_store *bs, bd_store_write_cb cb, void *arg)
{
	struct st_req *r;
	int rc;

	if (cb == NULL)
		return -EINVAL;
	if ((r = st_req_new((struct st_store *)bs, ST_CREATE, BD_TABLE_TASKS,
	    NULL, NULL, arg, &rc)) == NULL)
		return rc;
	r->cb.write = cb;
	return st_queue_req(r, st_create_work);
}

/* ---- life ----------------------------------------------------------- */

static void
st_free_handle(uv_handle_t *h)
{
	free(h);
}

static void
st_free(struct bd_store *bs)
{
	struct st_store *s = (struct st_store *)bs;

	if (s == NULL)
		return;
	if (s->in_flight != 0)
		fatalx("local store: freed with %d calls in flight",
		    s->in_flight);
	for (int t = 0; t < ST_NTABLES; t++)
		if (s->table_fd[t] >= 0)
			close(s->table_fd[t]);
	for (int i = 0; i < ST_PARTS; i++)
		if (s->parts[i].fd >= 0)
			close(s->parts[i].fd);
	uv_mutex_destroy(&s->part_mu);
	for (int i = 0; i < ST_ROWS; i++)
		st_cached_free(s->rows[i]);
	uv_mutex_destroy(&s->rows_mu);
	if (s->commit_timer != NULL)
		uv_close((uv_handle_t *)s->commit_timer, st_free_handle);
	if (s->defer_idle != NULL)
		uv_close((uv_handle_t *)s->defer_idle, st_free_handle);
	free(s->dir);
	free(s);
}

/* Whether table t lies on the same file system as table 0 (then it needs
 * no look at /sys and /proc of its own). */
static bool
st_same_device(const struct st_store *s, int t)
{
	struct stat a, b;

	return t > 0 && fstat(s->table_fd[0], &a) == 0 &&
	    fstat(s->table_fd[t], &b) == 0 && a.st_dev == b.st_dev;
}

int
bd_store_local_new(uv_loop_t *loop, const char *spool_dir,
    struct bd_store **out, char **cause)
{
	struct st_store *s;

	*out = NULL;
	*cause = NULL;
	if (spool_dir == NULL || *spool_dir == '\0') {
		*cause = xstrdup("the spool directory is not set");
		return -EINVAL;
	}
	s = xcalloc(1, sizeof(*s));
	s->pub.ops = &st_ops;
	s->loop = loop;
	s->sync = true;
	s->waiting_tail = &s->waiting;
	s->deferred_tail = &s->deferred;
	if (uv_mutex_init(&s->part_mu) < 0 || uv_mutex_init(&s->rows_mu) < 0)
		fatalx("local store: cannot make a mutex");
	for (int i = 0; i < ST_PARTS; i++)
		s->parts[i].fd = -1;
	{
		char *abs = bd_spool_absolute(spool_dir);
		s->dir = xasprintf("%s/tables", abs);
		free(abs);
	}
	for (int t = 0; t < ST_NTABLES; t++)
		s->table_fd[t] = -1;
	for (int t = 0; t < ST_NTABLES; t++) {
		int rc = bd_spool_open_dir(s->dir, bd_table_name(t));

		if (rc < 0) {
			*cause = xasprintf("%s/%s: %s", s->dir,
			    bd_table_name(t), bd_strerror(rc));
			st_free(&s->pub);
			return rc;
		}
		s->table_fd[t] = rc;
		s->fsync_commits_renames[t] = st_same_device(s, t) ?
		    s->fsync_commits_renames[0] :
		    bd_fs_fsync_commits_renames(rc);
	}
	*out = &s->pub;
	return 0;
}

int
bd_store_local_stats(const struct bd_store *bs,
    struct bd_store_local_stats *st)
{
	if (bs == NULL || bs->ops != &st_ops)
		return -EINVAL;
	*st = ((const struct st_store *)bs)->stats;
	return 0;
}

int
bd_store_local_flush(struct bd_store *bs)
{
	struct st_store *s = (struct st_store *)bs;
	const struct st_req *lists[2];
	int rc = 0;

	if (bs == NULL || bs->ops != &st_ops)
		return -EINVAL;
	/* A running job's writes are its own, but they and their fds stay
	   as they are (the worker reads them too) until it is done, which
	   is on this thread. */
	lists[0] = s->committing != NULL ? s->committing->reqs : NULL;
	lists[1] = s->waiting;
	for (int i = 0; i < 2; i++) {
		size_t n;
		struct st_synced *done = st_sync_dirs(lists[i], &n);

		for (size_t j = 0; j < n; j++)
			if (done[j].rc < 0 && rc == 0)
				rc = done[j].rc;
		free(done);
	}
	return rc;
}

int
bd_store_local_set_commit_delay(struct bd_store *bs, unsigned ms)
{
	struct st_store *s = (struct st_store *)bs;

	if (bs == NULL || bs->ops != &st_ops)
		return -EINVAL;
	if (s->commit_timer == NULL) {
		s->commit_timer = xcalloc(1, sizeof(*s->commit_timer));
		uv_timer_init(s->loop, s->commit_timer);
		s->commit_timer->data = s;
	}
	s->commit_delay_ms = ms;
	return 0;
}

int
bd_store_local_set_sync(struct bd_store *bs, int on)
{
	if (bs == NULL || bs->ops != &st_ops)
		return -EINVAL;
	((struct st_store *)bs)->sync = on != 0;
	return 0;
}

static const struct bd_store_ops st_ops = {
	.name = "local",
	.get = st_get,
	.insert = st_insert,
	.replace = st_replace,
	.merge = st_merge,
	.remove = st_remove,
	.query = st_query,
	.create = st_create,
	.free = st_free,
};
