/* SPDX-License-Identifier: MIT */
/*
 * Output file patterns.  A pattern is a list of segments split at `/`;
 * each segment is a list of tokens (a literal character, `?`, `*` or a
 * bracket set) read on the fly by glob_token(), so there is no compiled
 * form to own or free.
 *
 * One segment is matched against one file name with the classic greedy
 * algorithm that remembers only the last `*` and retries from one
 * character further on a mismatch: O(pattern * name) at worst.  A whole
 * path is matched segment against segment, where `**` plays the part `*`
 * plays inside a segment; because `**` may not match dot segments the
 * greedy trick is not exact there, so bd_glob_match() fills a table of
 * (pattern segment, path segment) answers one row at a time instead, and
 * bd_glob_expand() walks the directory tree carrying the set of pattern
 * positions still alive (an NFA over segments).  Neither backtracks, so
 * `**` nested any number of times costs at most the table's size.
 *
 * The walk opens each directory relative to its parent's descriptor with
 * O_NOFOLLOW and never enters a symlink, so it cannot loop or leave the
 * tree through a link.  Everything returned belongs to the caller.
 */
#include "glob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "xmalloc.h"

/* A piece of a pattern or path between slashes; not NUL-terminated. */
struct glob_seg {
	const char	*s;
	size_t		 len;
};

enum glob_tok_kind {
	GLOB_TOK_CHAR,	/* one literal character, maybe from `[x]` */
	GLOB_TOK_ANY,	/* ? */
	GLOB_TOK_STAR,	/* * */
	GLOB_TOK_SET,	/* [...] with more than one member, or negated */
};

struct glob_tok {
	enum glob_tok_kind kind;
	size_t		 len;	/* pattern bytes the token takes */
	uint32_t	 cp;	/* GLOB_TOK_CHAR: the character */
	const char	*lit;	/* GLOB_TOK_CHAR: its bytes */
	size_t		 litlen;
	const char	*set;	/* GLOB_TOK_SET: the members, without [ ] */
	size_t		 setlen;
	bool		 neg;	/* GLOB_TOK_SET: [! or [^ */
};

/*
 * Decode the character at s (len > 0 bytes available) into *cp and return
 * its length.  A byte that does not start a valid, shortest-form UTF-8
 * sequence is one character of its own, with a value above Unicode's range
 * so that it only ever equals itself.
 */
static size_t
glob_utf8(const char *s, size_t len, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t c, min;
	size_t n, i;

	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	if ((u[0] & 0xe0) == 0xc0) {
		n = 2;
		c = u[0] & 0x1f;
		min = 0x80;
	} else if ((u[0] & 0xf0) == 0xe0) {
		n = 3;
		c = u[0] & 0x0f;
		min = 0x800;
	} else if ((u[0] & 0xf8) == 0xf0) {
		n = 4;
		c = u[0] & 0x07;
		min = 0x10000;
	} else
		goto bad;
	if (n > len)
		goto bad;
	for (i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			goto bad;
		c = (c << 6) | (u[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		goto bad;
	*cp = c;
	return n;
bad:
	*cp = 0x110000 + u[0];
	return 1;
}

/*
 * Read the bracket set that starts at p[0] == '['.  Returns false when
 * the segment ends before its `]`, and then the `[` is a literal.
 */
static bool
glob_token_set(const char *p, size_t plen, struct glob_tok *t)
{
	size_t i = 1, start, members = 0, n;
	bool range = false;
	uint32_t lo, hi;

	t->neg = false;
	if (i < plen && (p[i] == '!' || p[i] == '^')) {
		t->neg = true;
		i++;
	}
	start = i;
	for (;;) {
		if (i >= plen)
			return false;
		if (p[i] == ']' && i > start)
			break;
		n = glob_utf8(p + i, plen - i, &lo);
		if (members == 0) {
			t->lit = p + i;
			t->litlen = n;
			t->cp = lo;
		}
		i += n;
		if (i + 1 < plen && p[i] == '-' && p[i + 1] != ']') {
			i += 1 + glob_utf8(p + i + 1, plen - i - 1, &hi);
			range = true;
		}
		members++;
	}
	t->set = p + start;
	t->setlen = i - start;
	t->len = i + 1;
	t->kind = (members == 1 && !range && !t->neg) ?
	    GLOB_TOK_CHAR : GLOB_TOK_SET;
	return true;
}

/* Read the token at the start of the plen (> 0) bytes at p into *t. */
static void
glob_token(const char *p, size_t plen, struct glob_tok *t)
{
	switch (p[0]) {
	case '*':
		t->kind = GLOB_TOK_STAR;
		t->len = 1;
		return;
	case '?':
		t->kind = GLOB_TOK_ANY;
		t->len = 1;
		return;
	case '[':
		if (glob_token_set(p, plen, t))
			return;
		break;
	}
	t->kind = GLOB_TOK_CHAR;
	t->lit = p;
	t->litlen = t->len = glob_utf8(p, plen, &t->cp);
}

/* Whether the character c is in the members of a bracket set. */
static bool
glob_set_has(const char *set, size_t len, uint32_t c)
{
	size_t i = 0;
	uint32_t lo, hi;

	while (i < len) {
		i += glob_utf8(set + i, len - i, &lo);
		hi = lo;
		if (i + 1 < len && set[i] == '-')
			i += 1 + glob_utf8(set + i + 1, len - i - 1, &hi);
		if (c >= lo && c <= hi)
			return true;
	}
	return false;
}

/* Whether the one-character token t matches the character c. */
static bool
glob_tok_matches(const struct glob_tok *t, uint32_t c)
{
	switch (t->kind) {
	case GLOB_TOK_CHAR:
		return t->cp == c;
	case GLOB_TOK_ANY:
		return true;
	case GLOB_TOK_SET:
		return glob_set_has(t->set, t->setlen, c) != t->neg;
	case GLOB_TOK_STAR:
		break;
	}
	return false;
}

/* Whether segment pattern p matches the whole file name s. */
static bool
glob_seg_match(struct glob_seg p, struct glob_seg s)
{
	struct glob_tok t;
	size_t pi = 0, si = 0, n, star_p = 0, star_s = 0;
	bool star = false;
	uint32_t c;

	/* A leading dot must be written as a literal dot. */
	if (s.len > 0 && s.s[0] == '.') {
		if (p.len == 0)
			return false;
		glob_token(p.s, p.len, &t);
		if (t.kind != GLOB_TOK_CHAR || t.cp != '.')
			return false;
	}

	while (si < s.len) {
		if (pi < p.len) {
			glob_token(p.s + pi, p.len - pi, &t);
			if (t.kind == GLOB_TOK_STAR) {
				pi += t.len;
				star = true;
				star_p = pi;
				star_s = si;
				continue;
			}
			n = glob_utf8(s.s + si, s.len - si, &c);
			if (glob_tok_matches(&t, c)) {
				pi += t.len;
				si += n;
				continue;
			}
		}
		if (!star)
			return false;
		/* Let the last star take one more character and retry. */
		star_s += glob_utf8(s.s + star_s, s.len - star_s, &c);
		pi = star_p;
		si = star_s;
	}
	while (pi < p.len && p.s[pi] == '*')
		pi++;
	return pi == p.len;
}

/* Whether segment p is the `**` that spans directories. */
static bool
glob_seg_is_globstar(struct glob_seg p)
{
	return p.len == 2 && p.s[0] == '*' && p.s[1] == '*';
}

/* Whether segment p has a token other than a literal character. */
static bool
glob_seg_has_wildcard(struct glob_seg p)
{
	struct glob_tok t;
	size_t i;

	for (i = 0; i < p.len; i += t.len) {
		glob_token(p.s + i, p.len - i, &t);
		if (t.kind != GLOB_TOK_CHAR)
			return true;
	}
	return false;
}

/* The literal name a segment without wildcards stands for; caller frees. */
static char *
glob_seg_unescape(struct glob_seg p)
{
	struct glob_tok t;
	char *name = xmalloc(p.len + 1);
	size_t i, n = 0;

	for (i = 0; i < p.len; i += t.len) {
		glob_token(p.s + i, p.len - i, &t);
		memcpy(name + n, t.lit, t.litlen);
		n += t.litlen;
	}
	name[n] = '\0';
	return name;
}

/*
 * Split s at '/' into a new array of its non-empty segments (caller frees)
 * and set *count.
 */
static struct glob_seg *
glob_split(const char *s, size_t *count)
{
	struct glob_seg *segs;
	size_t n = 0, i, len = strlen(s), start;

	segs = xreallocarray(NULL, len / 2 + 1, sizeof *segs);
	for (i = 0; i <= len; i++) {
		start = i;
		while (i < len && s[i] != '/')
			i++;
		if (i > start) {
			segs[n].s = s + start;
			segs[n].len = i - start;
			n++;
		}
	}
	*count = n;
	return segs;
}

bool
bd_glob_has_wildcard(const char *pattern)
{
	struct glob_seg *segs;
	size_t n, i;
	bool found = false;

	segs = glob_split(pattern, &n);
	for (i = 0; i < n && !found; i++)
		found = glob_seg_has_wildcard(segs[i]);
	free(segs);
	return found;
}

bool
bd_glob_match(const char *pattern, const char *path)
{
	struct glob_seg *pat, *seg;
	size_t np, ns, i, j;
	bool *next, *cur, *swap, result;

	if ((pattern[0] == '/') != (path[0] == '/'))
		return false;
	pat = glob_split(pattern, &np);
	seg = glob_split(path, &ns);

	/*
	 * next[j] says whether pattern segments i+1.. match path segments
	 * j..; cur is row i, filled from the end of the path backwards.
	 */
	next = xcalloc(ns + 1, sizeof *next);
	cur = xcalloc(ns + 1, sizeof *cur);
	next[ns] = true;
	for (i = np; i-- > 0;) {
		if (glob_seg_is_globstar(pat[i])) {
			cur[ns] = next[ns];
			for (j = ns; j-- > 0;)
				cur[j] = next[j] ||
				    (seg[j].s[0] != '.' && cur[j + 1]);
		} else {
			cur[ns] = false;
			for (j = ns; j-- > 0;)
				cur[j] = next[j + 1] &&
				    glob_seg_match(pat[i], seg[j]);
		}
		swap = next;
		next = cur;
		cur = swap;
	}
	result = next[0];
	free(next);
	free(cur);
	free(pat);
	free(seg);
	return result;
}

/* What one bd_glob_expand() call carries through its walk. */
struct glob_walk {
	const struct glob_seg *pat;	/* the segments below the base */
	size_t		 npat;
	size_t		 max_matches;
	unsigned	 max_depth;
	const char	*base;
	struct bd_glob_result *out;
	size_t		 items_size;
	char		**cause;
};

/* Add the positions that a `**` at state i can skip to. */
static void
glob_closure(const struct glob_walk *w, bool *states)
{
	size_t i;

	for (i = 0; i < w->npat; i++)
		if (states[i] && glob_seg_is_globstar(w->pat[i]))
			states[i + 1] = true;
}

/*
 * Feed the entry name to the states alive in a directory and fill next
 * with the states alive after it.  Returns whether any is.
 */
static bool
glob_step(const struct glob_walk *w, const bool *states, const char *name,
    bool *next)
{
	struct glob_seg s = { name, strlen(name) };
	bool alive = false;
	size_t i;

	memset(next, 0, (w->npat + 1) * sizeof *next);
	for (i = 0; i < w->npat; i++) {
		if (!states[i])
			continue;
		if (glob_seg_is_globstar(w->pat[i])) {
			if (name[0] != '.')
				alive = next[i] = true;
		} else if (glob_seg_match(w->pat[i], s))
			alive = next[i + 1] = true;
	}
	glob_closure(w, next);
	return alive;
}

/* Join a directory path and a name without doubling a '/'. */
static char *
glob_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	if (name[0] == '\0')
		return xstrdup(dir);
	if (n == 0)
		return xstrdup(name);
	if (dir[n - 1] == '/')
		return xasprintf("%s%s", dir, name);
	return xasprintf("%s/%s", dir, name);
}

/* Record one matching file at relative path rel (taken over). */
static int
glob_add(struct glob_walk *w, char *rel)
{
	struct bd_glob_result *out = w->out;

	if (out->count >= w->max_matches) {
		free(rel);
		if (w->cause != NULL)
			*w->cause = xasprintf("more than %zu files match",
			    w->max_matches);
		return BD_ETOOBIG;
	}
	if (out->count == w->items_size) {
		w->items_size = w->items_size == 0 ? 16 : w->items_size * 2;
		out->items = xreallocarray(out->items, w->items_size,
		    sizeof *out->items);
	}
	out->items[out->count].path = glob_join(w->base, rel);
	out->items[out->count].relative = rel;
	out->count++;
	return 0;
}

/* Set *cause to "what path: errno text" and return err. */
static int
glob_sys_fail(struct glob_walk *w, int err, const char *what,
    const char *rel)
{
	if (w->cause != NULL) {
		char *path = glob_join(w->base, rel);

		*w->cause = xasprintf("%s %s: %s", what, path, strerror(-err));
		free(path);
	}
	return err;
}

/*
 * Walk the open directory dir (relative path rel below the base, depth
 * levels down) with the pattern states alive in it.  Takes over dir.
 */
static int
glob_walk_dir(struct glob_walk *w, DIR *dir, const char *rel, unsigned depth,
    const bool *states)
{
	struct dirent *de;
	struct stat st;
	bool *next, descend, file;
	char *child;
	size_t i;
	int fd, err = 0, dfd = dirfd(dir);
	unsigned char type;
	DIR *sub;

	next = xcalloc(w->npat + 1, sizeof *next);
	for (;;) {
		errno = 0;
		if ((de = readdir(dir)) == NULL) {
			if (errno != 0)
				err = glob_sys_fail(w, -errno,
				    "cannot read directory", rel);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (!glob_step(w, states, de->d_name, next))
			continue;
		descend = false;
		for (i = 0; i < w->npat && !descend; i++)
			descend = next[i];

		type = de->d_type;
		if (type == DT_UNKNOWN) {
			if (fstatat(dfd, de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == -1)
				continue;	/* gone since readdir */
			if (S_ISREG(st.st_mode))
				type = DT_REG;
			else if (S_ISDIR(st.st_mode))
				type = DT_DIR;
			else if (S_ISLNK(st.st_mode))
				type = DT_LNK;
		}

		file = false;
		if (next[w->npat]) {
			if (type == DT_REG)
				file = true;
			else if (type == DT_LNK)
				file = fstatat(dfd, de->d_name, &st, 0) == 0 &&
				    S_ISREG(st.st_mode);
		}
		if (file) {
			if ((err = glob_add(w, glob_join(rel,
			    de->d_name))) != 0)
				break;
		}
		if (!descend || type != DT_DIR)
			continue;

		child = glob_join(rel, de->d_name);
		if (depth >= w->max_depth) {
			if (w->cause != NULL)
				*w->cause = xasprintf("directory %s is more "
				    "than %u levels below %s", child,
				    w->max_depth, w->base);
			free(child);
			err = BD_ETOOBIG;
			break;
		}
		fd = openat(dfd, de->d_name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1) {
			/* Replaced by a file or a link since readdir. */
			if (errno == ENOENT || errno == ENOTDIR ||
			    errno == ELOOP) {
				free(child);
				continue;
			}
			err = glob_sys_fail(w, -errno,
			    "cannot open directory", child);
			free(child);
			break;
		}
		if ((sub = fdopendir(fd)) == NULL) {
			err = glob_sys_fail(w, -errno,
			    "cannot open directory", child);
			close(fd);
			free(child);
			break;
		}
		err = glob_walk_dir(w, sub, child, depth + 1, next);
		free(child);
		if (err != 0)
			break;
	}
	free(next);
	closedir(dir);
	return err;
}

/* Order matches by path for qsort(). */
static int
glob_item_cmp(const void *a, const void *b)
{
	const struct bd_glob_item *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/*
 * Resolve `.` and `..` segments of an absolute pattern lexically, in
 * place; `..` at the root stays at the root.
 */
static void
glob_resolve_dots(struct glob_seg *segs, size_t *count)
{
	size_t i, n = 0;
	char *name;

	for (i = 0; i < *count; i++) {
		name = glob_seg_has_wildcard(segs[i]) ? NULL :
		    glob_seg_unescape(segs[i]);
		if (name != NULL && strcmp(name, ".") == 0) {
			/* nothing */
		} else if (name != NULL && strcmp(name, "..") == 0) {
			if (n > 0)
				n--;
		} else
			segs[n++] = segs[i];
		free(name);
	}
	*count = n;
}

/* "/" followed by the unescaped names of segs[0..n); caller frees. */
static char *
glob_literal_path(const struct glob_seg *segs, size_t n)
{
	char *path = xstrdup("/"), *name, *joined;
	size_t i;

	for (i = 0; i < n; i++) {
		name = glob_seg_unescape(segs[i]);
		joined = glob_join(path, name);
		free(name);
		free(path);
		path = joined;
	}
	return path;
}

/* Expand a pattern without wildcards: at most one file. */
static int
glob_expand_literal(struct glob_walk *w, const struct glob_seg *segs,
    size_t n)
{
	struct stat st;
	char *path, *name;
	int err;

	if (n == 0) {
		w->out->base = xstrdup("/");
		return 0;
	}
	w->out->base = glob_literal_path(segs, n - 1);
	w->base = w->out->base;
	name = glob_seg_unescape(segs[n - 1]);
	path = glob_join(w->base, name);
	err = stat(path, &st);
	free(path);
	if (err == -1) {
		err = -errno;
		if (err == -ENOENT || err == -ENOTDIR || err == -ELOOP) {
			free(name);
			return 0;
		}
		err = glob_sys_fail(w, err, "cannot stat", name);
		free(name);
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		free(name);
		return 0;
	}
	return glob_add(w, name);
}

int
bd_glob_expand(const char *pattern, const char *base_dir,
    const struct bd_glob_limits *limits, struct bd_glob_result *out,
    char **cause)
{
	struct glob_walk w;
	struct glob_seg *segs = NULL;
	size_t n, nbase;
	char *full = NULL;
	bool *states;
	DIR *dir;
	int fd, err;

	memset(out, 0, sizeof *out);
	if (cause != NULL)
		*cause = NULL;
	memset(&w, 0, sizeof w);
	w.out = out;
	w.cause = cause;
	w.max_matches = BD_GLOB_MAX_MATCHES;
	w.max_depth = BD_GLOB_MAX_DEPTH;
	if (limits != NULL && limits->max_matches != 0)
		w.max_matches = limits->max_matches;
	if (limits != NULL && limits->max_depth != 0)
		w.max_depth = limits->max_depth;

	if (pattern[0] == '\0') {
		if (cause != NULL)
			*cause = xstrdup("empty file pattern");
		return -EINVAL;
	}
	if (strnlen(pattern, BD_GLOB_PATTERN_MAX + 1) > BD_GLOB_PATTERN_MAX) {
		if (cause != NULL)
			*cause = xasprintf("file pattern longer than %d bytes",
			    BD_GLOB_PATTERN_MAX);
		return BD_ETOOBIG;
	}
	if (pattern[0] == '/')
		full = xstrdup(pattern);
	else if (base_dir != NULL && base_dir[0] == '/')
		full = xasprintf("%s/%s", base_dir, pattern);
	else {
		if (cause != NULL)
			*cause = xasprintf("relative file pattern %s needs an "
			    "absolute base directory", pattern);
		return -EINVAL;
	}

	segs = glob_split(full, &n);
	glob_resolve_dots(segs, &n);
	for (nbase = 0; nbase < n; nbase++)
		if (glob_seg_has_wildcard(segs[nbase]))
			break;
	if (nbase == n) {
		err = glob_expand_literal(&w, segs, n);
		goto done;
	}

	out->base = glob_literal_path(segs, nbase);
	w.base = out->base;
	w.pat = segs + nbase;
	w.npat = n - nbase;
	fd = open(out->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1) {
		err = -errno;
		if (err == -ENOENT || err == -ENOTDIR || err == -ELOOP)
			err = 0;
		else
			err = glob_sys_fail(&w, err, "cannot open directory",
			    "");
		goto done;
	}
	if ((dir = fdopendir(fd)) == NULL) {
		err = glob_sys_fail(&w, -errno, "cannot open directory", "");
		close(fd);
		goto done;
	}
	states = xcalloc(w.npat + 1, sizeof *states);
	states[0] = true;
	glob_closure(&w, states);
	err = glob_walk_dir(&w, dir, "", 0, states);
	free(states);

done:
	free(segs);
	free(full);
	if (err != 0) {
		bd_glob_result_free(out);
		return err;
	}
	if (out->count > 1)
		qsort(out->items, out->count, sizeof *out->items,
		    glob_item_cmp);
	return 0;
}

void
bd_glob_result_free(struct bd_glob_result *result)
{
	size_t i;

	for (i = 0; i < result->count; i++) {
		free(result->items[i].path);
		free(result->items[i].relative);
	}
	free(result->items);
	free(result->base);
	memset(result, 0, sizeof *result);
}
