/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "unit.h"

/* Runs fn with stderr sent to a file; returns what was written. */
static char *
capture(void (*fn)(void))
{
	char path[] = "/tmp/bd-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	char *data;
	size_t len;

	ASSERT(fd >= 0);
	dup2(fd, 2);
	fn();
	dup2(saved, 2);
	close(saved);
	close(fd);
	ASSERT_INT_EQ(bd_read_file(path, 1 << 20, &data, &len), 0);
	unlink(path);
	return data;
}

static void
log_some(void)
{
	log_info("download: %s: failed", "https://x.blob/c/b?sv=1&sig=TOPSECRET&se=2");
	log_warnx("task %s: bad\x01name\nsecond line", "t1");
	log_debug("hidden at info level");
}

TEST(text)
{
	log_init(BD_LOG_INFO, BD_LOG_FORMAT_TEXT);
	char *out = capture(log_some);
	ASSERT_STR_CONTAINS(out, "batchd: download: https://x.blob/c/b?sv=1&sig=REDACTED&se=2: failed\n");
	ASSERT_STR_CONTAINS(out, "batchd: warning: task t1: bad\\x01name\\x0asecond line\n");
	ASSERT(strstr(out, "TOPSECRET") == NULL);
	ASSERT(strstr(out, "hidden") == NULL);
	free(out);
}

TEST(journal)
{
	log_init(BD_LOG_DEBUG, BD_LOG_FORMAT_JOURNAL);
	char *out = capture(log_some);
	ASSERT_STR_CONTAINS(out, "<6>download: ");
	ASSERT_STR_CONTAINS(out, "<4>task t1: bad");
	ASSERT_STR_CONTAINS(out, "<7>hidden at info level\n");
	free(out);
}

TEST(json)
{
	log_init(BD_LOG_INFO, BD_LOG_FORMAT_JSON);
	char *out = capture(log_some);
	ASSERT_STR_CONTAINS(out, "\"level\":\"warning\",\"msg\":\"task t1: bad\\u0001name\\u000asecond line\"}\n");
	ASSERT_STR_CONTAINS(out, "\"level\":\"info\"");
	ASSERT(strstr(out, "TOPSECRET") == NULL);
	free(out);
}

int
main(void)
{
	RUN(text);
	RUN(journal);
	RUN(json);
	return 0;
}
