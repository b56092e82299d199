/* SPDX-License-Identifier: MIT */
/*
 * File following with inotify (uv_fs_event_t) plus a slow timer as a
 * safety net for filesystems without change events.  Each wake-up copies
 * from the last offset to the end; bd_follow_stop() drains once more, then
 * closes both handles and frees in the last close callback.
 */
#include "follow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "xmalloc.h"

struct bd_follow {
	uv_fs_event_t event;
	uv_timer_t timer;
	int fd, out_fd;
	off_t offset;
	int open_handles;
};

/* Copies everything appended since the last call. */
static void
follow_drain(struct bd_follow *f)
{
	char buf[65536];
	ssize_t n;

	while ((n = pread(f->fd, buf, sizeof(buf), f->offset)) > 0) {
		f->offset += n;
		for (ssize_t w = 0; w < n; ) {
			ssize_t k = write(f->out_fd, buf + w, (size_t)(n - w));
			if (k == -1 && errno == EINTR)
				continue;
			if (k <= 0)
				return; /* the terminal went away: stop echoing */
			w += k;
		}
	}
}

static void
follow_on_event(uv_fs_event_t *h, const char *name, int events, int status)
{
	follow_drain(h->data);
}

static void
follow_on_timer(uv_timer_t *t)
{
	follow_drain(t->data);
}

int
bd_follow_start(uv_loop_t *loop, const char *path, int out_fd,
    struct bd_follow **out)
{
	struct bd_follow *f = xcalloc(1, sizeof(*f));
	int rc;

	if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = -errno;
		free(f);
		return rc;
	}
	f->out_fd = out_fd;
	uv_fs_event_init(loop, &f->event);
	uv_timer_init(loop, &f->timer);
	f->event.data = f->timer.data = f;
	f->open_handles = 2;
	if (uv_fs_event_start(&f->event, follow_on_event, path, 0) < 0)
		uv_timer_start(&f->timer, follow_on_timer, 50, 50);
	else
		uv_timer_start(&f->timer, follow_on_timer, 1000, 1000);
	*out = f;
	return 0;
}

static void
follow_on_close(uv_handle_t *h)
{
	struct bd_follow *f = h->data;

	if (--f->open_handles == 0) {
		close(f->fd);
		free(f);
	}
}

void
bd_follow_stop(struct bd_follow *f)
{
	follow_drain(f);
	uv_fs_event_stop(&f->event);
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->event, follow_on_close);
	uv_close((uv_handle_t *)&f->timer, follow_on_close);
}
