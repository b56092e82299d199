/* SPDX-License-Identifier: MIT */
/*
 * Tests of common/queue: first its parsers and escaping on their own
 * (hostile documents included), then every operation against a real
 * Azurite started by tests/lib/azurite-harness.sh, with the official
 * Azure SDK for JavaScript (tests/lib/node/storagetool.js) as the other
 * party.  Leases are exercised the way the daemon uses them: a receive
 * hides, a second receive gets nothing, the message comes back after its
 * timeout with a new pop receipt, and the old receipt is refused.
 * Skipped with 77 only when node or npm is missing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "azurite_support.h"
#include "error.h"
#include "http.h"
#include "queue.h"
#include "storage_auth.h"
#include "unit.h"
#include "xmalloc.h"

static uv_loop_t loop;
static struct bd_http *http;
static struct az_ports ports;
static struct bd_storage_account *account;
static struct bd_queue_client *qc;

/* --- Offline ----------------------------------------------------------- */

TEST(names)
{
	ASSERT(bd_queue_name_valid("abc"));
	ASSERT(bd_queue_name_valid("pool-1-tasks"));
	ASSERT(!bd_queue_name_valid("ab"));
	ASSERT(!bd_queue_name_valid("Abc"));
	ASSERT(!bd_queue_name_valid("-abc"));
	ASSERT(!bd_queue_name_valid("abc-"));
	ASSERT(!bd_queue_name_valid("a--bc"));
	ASSERT(!bd_queue_name_valid("a_bc"));
	ASSERT(!bd_queue_name_valid(NULL));
	ASSERT(bd_queue_name_valid("a23456789012345678901234567890123456789012345678901234567890123"));
	ASSERT(!bd_queue_name_valid("a234567890123456789012345678901234567890123456789012345678901234"));
}

TEST(escape)
{
	char *s;

	s = bd_queue_escape("a&b<c>\"d'e\r\n\tf");
	ASSERT_STR_EQ(s, "a&amp;b&lt;c&gt;&quot;d&apos;e&#13;\n\tf");
	free(s);
	s = bd_queue_escape("\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80");
	ASSERT_STR_EQ(s, "\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80");
	free(s);
	s = bd_queue_escape("");
	ASSERT_STR_EQ(s, "");
	free(s);
	ASSERT_NULL(bd_queue_escape("a\x01" "b"));		/* control */
	ASSERT_NULL(bd_queue_escape("a\x1f"));
	ASSERT_NULL(bd_queue_escape("\xc3"));			/* cut short */
	ASSERT_NULL(bd_queue_escape("\xc0\xaf"));		/* overlong */
	ASSERT_NULL(bd_queue_escape("\xed\xa0\x80"));		/* surrogate */
	ASSERT_NULL(bd_queue_escape("\xf4\x90\x80\x80"));	/* > U+10FFFF */
	ASSERT_NULL(bd_queue_escape("\xef\xbf\xbe"));		/* U+FFFE */
	ASSERT_NULL(bd_queue_escape("\xff"));
}

TEST(http_date)
{
	int64_t t = 0;

	ASSERT_INT_EQ(bd_queue_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT",
	    &t), 0);
	ASSERT_INT_EQ(t, 784111777000LL);
	ASSERT_INT_EQ(bd_queue_parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT",
	    &t), 0);
	ASSERT_INT_EQ(t, 0);
	ASSERT_INT_EQ(bd_queue_parse_http_date("Sun, 06 Nov 1994 08:49:37",
	    &t), BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT",
	    &t), BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT",
	    &t), BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMTx",
	    &t), BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_parse_http_date("", &t), BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_parse_http_date(NULL, &t), BD_EINVALID);
}

/* Parses doc; returns the status and frees everything. */
static int
parse_status(const char *doc, char **cause)
{
	struct bd_queue_message **msgs;
	size_t n, i;
	int rc;

	rc = bd_queue_parse_messages(doc, strlen(doc), &msgs, &n, cause);
	for (i = 0; i < n; i++)
		bd_queue_message_free(msgs[i]);
	free(msgs);
	return rc;
}

TEST(parse)
{
	static const char doc[] =
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	    "<QueueMessagesList>\n"
	    " <QueueMessage>\n"
	    "  <MessageId>5974b586-0df3-4e2d-ad0c-18e3892bfca2</MessageId>\n"
	    "  <InsertionTime>Fri, 09 Oct 2009 21:04:30 GMT</InsertionTime>\n"
	    "  <ExpirationTime>Fri, 16 Oct 2009 21:04:30 GMT</ExpirationTime>\n"
	    "  <PopReceipt>YzQ4Yzg1MDItYTc0Ny00OWNjLTkxYTUtZGM0MDFiZDAwYzEw</PopReceipt>\n"
	    "  <TimeNextVisible>Fri, 09 Oct 2009 23:29:20 GMT</TimeNextVisible>\n"
	    "  <DequeueCount>3</DequeueCount>\n"
	    "  <Unknown><Deeper>ignored</Deeper></Unknown>\n"
	    "  <MessageText>{&quot;a&quot;:&lt;1&gt; &amp;&#13;\xc3\xbc}</MessageText>\n"
	    " </QueueMessage>\n"
	    " <QueueMessage><MessageId>m2</MessageId><MessageText/>"
	    "<DequeueCount>0</DequeueCount></QueueMessage>\n"
	    "</QueueMessagesList>\n";
	struct bd_queue_message **msgs;
	char *cause = NULL, *big, *p;
	size_t n, i;

	ASSERT_INT_EQ(bd_queue_parse_messages(doc, strlen(doc), &msgs, &n,
	    &cause), 0);
	ASSERT_INT_EQ(n, 2);
	ASSERT_STR_EQ(msgs[0]->id, "5974b586-0df3-4e2d-ad0c-18e3892bfca2");
	ASSERT_STR_EQ(msgs[0]->pop_receipt,
	    "YzQ4Yzg1MDItYTc0Ny00OWNjLTkxYTUtZGM0MDFiZDAwYzEw");
	ASSERT_STR_EQ(msgs[0]->text, "{\"a\":<1> &\r\xc3\xbc}");
	ASSERT_INT_EQ(msgs[0]->dequeue_count, 3);
	ASSERT_INT_EQ(msgs[0]->inserted_ms, 1255122270000LL);
	ASSERT_INT_EQ(msgs[0]->expires_ms, 1255727070000LL);
	ASSERT_INT_EQ(msgs[0]->visible_ms, 1255130960000LL);
	ASSERT_STR_EQ(msgs[1]->id, "m2");
	ASSERT_STR_EQ(msgs[1]->text, "");
	ASSERT_NULL(msgs[1]->pop_receipt);
	ASSERT_INT_EQ(msgs[1]->inserted_ms, -1);
	for (i = 0; i < n; i++)
		bd_queue_message_free(msgs[i]);
	free(msgs);

	/* An empty list. */
	ASSERT_INT_EQ(parse_status("<QueueMessagesList/>", &cause), 0);
	ASSERT_INT_EQ(parse_status("<QueueMessagesList></QueueMessagesList>",
	    &cause), 0);

	/* Hostile and broken documents. */
	ASSERT_INT_EQ(parse_status("", &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(parse_status("<Other/>", &cause), BD_EINVALID);
	ASSERT_STR_CONTAINS(cause, "QueueMessagesList");
	free(cause);
	ASSERT_INT_EQ(parse_status("<QueueMessagesList><QueueMessage>",
	    &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(parse_status("<QueueMessagesList><QueueMessage>"
	    "<MessageText>x</MessageText></QueueMessage></QueueMessagesList>",
	    &cause), BD_EINVALID);
	ASSERT_STR_CONTAINS(cause, "MessageId");
	free(cause);
	ASSERT_INT_EQ(parse_status("<QueueMessagesList><QueueMessage>"
	    "<MessageId>a</MessageId><DequeueCount>-1</DequeueCount>"
	    "</QueueMessage></QueueMessagesList>", &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(parse_status("<QueueMessagesList><QueueMessage>"
	    "<MessageId>a</MessageId><InsertionTime>yesterday</InsertionTime>"
	    "</QueueMessage></QueueMessagesList>", &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(parse_status("<QueueMessagesList><Junk/>"
	    "</QueueMessagesList>", &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(parse_status("<!DOCTYPE x [<!ENTITY a \"aaaa\">]>"
	    "<QueueMessagesList/>", &cause), BD_EINVALID);
	ASSERT_STR_CONTAINS(cause, "DOCTYPE");
	free(cause);

	/* 33 messages are one too many. */
	big = xmalloc(33 * 80 + 64);
	p = big + sprintf(big, "<QueueMessagesList>");
	for (i = 0; i < 33; i++)
		p += sprintf(p, "<QueueMessage><MessageId>%zu</MessageId>"
		    "</QueueMessage>", i);
	sprintf(p, "</QueueMessagesList>");
	ASSERT_INT_EQ(parse_status(big, &cause), BD_ETOOBIG);
	free(cause);
	free(big);

	/* A field past its bound. */
	big = xmalloc(2048 + 128);
	p = big + sprintf(big, "<QueueMessagesList><QueueMessage><MessageId>");
	memset(p, 'a', 2048);
	sprintf(p + 2048, "</MessageId></QueueMessage></QueueMessagesList>");
	ASSERT_INT_EQ(parse_status(big, &cause), BD_ETOOBIG);
	free(cause);
	free(big);

	/* Deep nesting is refused, not recursed into. */
	big = xmalloc(64 * 7 + 128);
	p = big + sprintf(big, "<QueueMessagesList>");
	for (i = 0; i < 64; i++)
		p += sprintf(p, "<a>");
	sprintf(p, "</QueueMessagesList>");
	ASSERT(parse_status(big, &cause) != 0);
	free(cause);
	free(big);
}

/* --- Callbacks ------------------------------------------------------- */

/* What a queue callback saw. */
struct done {
	int calls;
	int status;
	char *detail;
	struct bd_queue_message **msgs;
	size_t n;
	char *receipt;
	int64_t visible_ms;
};

/* Error texts never carry the account key, a pop receipt or a SAS
   signature. */
static const char *secret_receipt;
static const char *secret_sig;

static void
check_detail(const char *detail)
{
	if (detail == NULL)
		return;
	if (strstr(detail, BD_STORAGE_DEV_KEY) != NULL)
		UNIT_FAIL("the account key in \"%s\"", detail);
	if (secret_receipt != NULL && strstr(detail, secret_receipt) != NULL)
		UNIT_FAIL("a pop receipt in \"%s\"", detail);
	if (secret_sig != NULL && strstr(detail, secret_sig) != NULL)
		UNIT_FAIL("a SAS signature in \"%s\"", detail);
}

static void
on_done(void *arg, int status, const char *detail)
{
	struct done *d = arg;

	d->calls++;
	d->status = status;
	d->detail = detail != NULL ? xstrdup(detail) : NULL;
	ASSERT(status == 0 ? detail == NULL : detail != NULL);
	check_detail(detail);
}

static void
on_get(void *arg, int status, struct bd_queue_message **msgs, size_t n,
    const char *detail)
{
	struct done *d = arg;

	on_done(d, status, detail);
	d->msgs = msgs;
	d->n = n;
}

static void
on_update(void *arg, int status, const char *receipt, int64_t visible_ms,
    const char *detail)
{
	struct done *d = arg;

	on_done(d, status, detail);
	d->receipt = receipt != NULL ? xstrdup(receipt) : NULL;
	d->visible_ms = visible_ms;
}

/* Runs the loop until d's callback ran once. */
static void
wait_done(struct done *d)
{
	while (d->calls == 0)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_INT_EQ(d->calls, 1);
	if (d->status != 0)
		fprintf(stderr, "   status %d: %s\n", d->status,
		    d->detail ? d->detail : "");
}

static void
done_clear(struct done *d)
{
	size_t i;

	free(d->detail);
	for (i = 0; i < d->n; i++)
		bd_queue_message_free(d->msgs[i]);
	free(d->msgs);
	free(d->receipt);
	memset(d, 0, sizeof(*d));
}

/* Synchronous wrappers: each asserts the status it expects. */
static void
create(const char *q, int want)
{
	struct done d = { 0 };

	ASSERT_INT_EQ(bd_queue_create(qc, q, on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, want);
	done_clear(&d);
}

static void
put(const char *q, const char *text, int64_t delay_s, int want)
{
	struct done d = { 0 };

	ASSERT_INT_EQ(bd_queue_put(qc, q, text, delay_s, -1, on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, want);
	done_clear(&d);
}

/* Get Messages into d (cleared by the caller). */
static void
get(const char *q, int max, int64_t vis, struct done *d, int want)
{
	ASSERT_INT_EQ(bd_queue_get(qc, q, max, vis, on_get, d), 0);
	wait_done(d);
	ASSERT_INT_EQ(d->status, want);
}

static void
delete_msg(const char *q, const char *id, const char *receipt, int want)
{
	struct done d = { 0 };

	ASSERT_INT_EQ(bd_queue_delete_message(qc, q, id, receipt, on_done,
	    &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, want);
	done_clear(&d);
}

/* --- Against Azurite --------------------------------------------------- */

TEST(create)
{
	struct done d = { 0 };

	create("tasks", 0);
	create("tasks", 0);	/* exists: still fine */
	ASSERT_INT_EQ(bd_queue_create(qc, "Bad_Name", on_done, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(d.calls, 0);
}

TEST(lease)
{
	struct done d = { 0 }, u = { 0 };
	char *id, *r1, *r2, *r3;
	int64_t t0 = az_now_ms();

	put("tasks", "{\"version\":1}", 0, 0);
	get("tasks", 1, 1, &d, 0);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT_STR_EQ(d.msgs[0]->text, "{\"version\":1}");
	ASSERT_INT_EQ(d.msgs[0]->dequeue_count, 1);
	ASSERT(d.msgs[0]->inserted_ms >= t0 - 5000);
	ASSERT(d.msgs[0]->visible_ms > d.msgs[0]->inserted_ms);
	ASSERT_NOT_NULL(d.msgs[0]->pop_receipt);
	id = xstrdup(d.msgs[0]->id);
	r1 = xstrdup(d.msgs[0]->pop_receipt);
	done_clear(&d);

	/* Hidden: a second receive gets nothing. */
	get("tasks", 32, 30, &d, 0);
	ASSERT_INT_EQ(d.n, 0);
	done_clear(&d);

	/* After the timeout it comes back, a second time, a new receipt. */
	az_sleep_ms(&loop, 2200);
	get("tasks", 1, 30, &d, 0);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT_STR_EQ(d.msgs[0]->id, id);
	ASSERT_INT_EQ(d.msgs[0]->dequeue_count, 2);
	ASSERT(strcmp(d.msgs[0]->pop_receipt, r1) != 0);
	r2 = xstrdup(d.msgs[0]->pop_receipt);
	done_clear(&d);

	/* The old receipt no longer holds the lease. */
	secret_receipt = r1;
	ASSERT_INT_EQ(bd_queue_update(qc, "tasks", id, r1, 30, NULL,
	    on_update, &u), 0);
	wait_done(&u);
	ASSERT_INT_EQ(u.status, -ENOENT);
	ASSERT_STR_CONTAINS(u.detail, "lease");
	ASSERT_NULL(u.receipt);
	done_clear(&u);
	delete_msg("tasks", id, r1, -ENOENT);

	/* The current one renews it, with new text. */
	secret_receipt = r2;
	t0 = az_now_ms();
	ASSERT_INT_EQ(bd_queue_update(qc, "tasks", id, r2, 60,
	    "{\"version\":1,\"retryCount\":1}", on_update, &u), 0);
	wait_done(&u);
	ASSERT_INT_EQ(u.status, 0);
	ASSERT_NOT_NULL(u.receipt);
	ASSERT(strcmp(u.receipt, r2) != 0);
	ASSERT(u.visible_ms >= t0 + 55000 && u.visible_ms <= t0 + 65000);
	r3 = xstrdup(u.receipt);
	done_clear(&u);
	delete_msg("tasks", id, r2, -ENOENT);

	/* Make it visible at once: it comes back with the new text. */
	ASSERT_INT_EQ(bd_queue_update(qc, "tasks", id, r3, 0, NULL,
	    on_update, &u), 0);
	wait_done(&u);
	ASSERT_INT_EQ(u.status, 0);
	get("tasks", 1, 30, &d, 0);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT_STR_EQ(d.msgs[0]->text, "{\"version\":1,\"retryCount\":1}");
	ASSERT_INT_EQ(d.msgs[0]->dequeue_count, 3);

	/* Delete with the current receipt works; then it is gone. */
	delete_msg("tasks", id, d.msgs[0]->pop_receipt, 0);
	delete_msg("tasks", id, d.msgs[0]->pop_receipt, -ENOENT);
	done_clear(&d);
	done_clear(&u);
	get("tasks", 32, 1, &d, 0);
	ASSERT_INT_EQ(d.n, 0);
	done_clear(&d);
	secret_receipt = NULL;
	free(id);
	free(r1);
	free(r2);
	free(r3);
}

TEST(batch)
{
	struct done d = { 0 };
	char text[32];
	bool seen[40] = { false };
	size_t i;
	int k, total = 0;

	create("batch", 0);
	for (k = 0; k < 40; k++) {
		snprintf(text, sizeof(text), "message %d", k);
		put("batch", text, 0, 0);
	}
	get("batch", 32, 60, &d, 0);
	ASSERT_INT_EQ(d.n, 32);
	for (i = 0; i < d.n; i++) {
		ASSERT_INT_EQ(sscanf(d.msgs[i]->text, "message %d", &k), 1);
		ASSERT(k >= 0 && k < 40 && !seen[k]);
		seen[k] = true;
		delete_msg("batch", d.msgs[i]->id, d.msgs[i]->pop_receipt, 0);
	}
	total += (int)d.n;
	done_clear(&d);
	get("batch", 32, 60, &d, 0);
	ASSERT_INT_EQ(d.n, 8);
	for (i = 0; i < d.n; i++) {
		ASSERT_INT_EQ(sscanf(d.msgs[i]->text, "message %d", &k), 1);
		ASSERT(k >= 0 && k < 40 && !seen[k]);
		seen[k] = true;
	}
	total += (int)d.n;
	ASSERT_INT_EQ(total, 40);
	done_clear(&d);

	/* Out of range counts never reach the wire. */
	ASSERT_INT_EQ(bd_queue_get(qc, "batch", 33, 30, on_get, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_get(qc, "batch", 0, 30, on_get, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_get(qc, "batch", 1, 0, on_get, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(d.calls, 0);

	/* Clear empties it; delete removes it. */
	ASSERT_INT_EQ(bd_queue_clear(qc, "batch", on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	az_sleep_ms(&loop, 100);
	ASSERT_INT_EQ(bd_queue_delete(qc, "batch", on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	get("batch", 1, 1, &d, -ENOENT);
	ASSERT_STR_CONTAINS(d.detail, "QueueNotFound");
	ASSERT_STR_CONTAINS(d.detail, "queue batch");
	done_clear(&d);
}

/* Puts text, receives it back, checks it and deletes it. */
static void
round_trip(const char *text)
{
	struct done d = { 0 };

	put("tasks", text, 0, 0);
	get("tasks", 32, 30, &d, 0);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT_INT_EQ(strlen(d.msgs[0]->text), strlen(text));
	ASSERT_STR_EQ(d.msgs[0]->text, text);
	delete_msg("tasks", d.msgs[0]->id, d.msgs[0]->pop_receipt, 0);
	done_clear(&d);
}

TEST(text)
{
	struct done d = { 0 };
	char *big;

	round_trip("<QueueMessage><MessageText>inner</MessageText>"
	    "</QueueMessage> & &amp; &lt; ]]> <![CDATA[x]]> \"q\" 'a'");
	round_trip("line 1\r\nline 2\n\ttabbed\r");
	round_trip("\xc3\xbc\xc3\xb1\xc3\xad \xe2\x82\xac \xe4\xb8\xad\xe6"
	    "\x96\x87 \xf0\x9f\x98\x80 \xe2\x80\xa8 \xc2\x85");
	round_trip("");
	round_trip("   leading and trailing blanks   ");
	round_trip("{\"version\":1,\"jobId\":\"j\",\"task\":{\"id\":\"t1\","
	    "\"commandLine\":\"/bin/sh -c 'echo <hi> && exit 0'\"}}");
	/* Base64 text stays base64: decoding is the daemon's. */
	round_trip("eyJ2ZXJzaW9uIjoxfQ==");

	/* 64 KiB exactly goes; a byte more is refused before sending. */
	big = xmalloc(BD_QUEUE_MAX_TEXT + 2);
	memset(big, 'x', BD_QUEUE_MAX_TEXT);
	big[0] = '<';
	big[BD_QUEUE_MAX_TEXT - 1] = '>';
	big[BD_QUEUE_MAX_TEXT] = '\0';
	round_trip(big);
	big[BD_QUEUE_MAX_TEXT] = 'x';
	big[BD_QUEUE_MAX_TEXT + 1] = '\0';
	ASSERT_INT_EQ(bd_queue_put(qc, "tasks", big, 0, -1, on_done, &d),
	    BD_ETOOBIG);
	free(big);

	/* What XML cannot carry is refused before sending. */
	ASSERT_INT_EQ(bd_queue_put(qc, "tasks", "a\x02", 0, -1, on_done, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_put(qc, "tasks", "\xc3(", 0, -1, on_done, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_put(qc, "tasks", "x", -1, -1, on_done, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_put(qc, "tasks", "x", 0, 0, on_done, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_put(qc, "tasks", "x", 10, 5, on_done, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(d.calls, 0);
}

TEST(delay)
{
	struct done d = { 0 };

	put("tasks", "later", 2, 0);
	get("tasks", 32, 30, &d, 0);
	ASSERT_INT_EQ(d.n, 0);
	done_clear(&d);
	az_sleep_ms(&loop, 3000);
	get("tasks", 32, 30, &d, 0);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT_STR_EQ(d.msgs[0]->text, "later");
	ASSERT_INT_EQ(d.msgs[0]->dequeue_count, 1);
	delete_msg("tasks", d.msgs[0]->id, d.msgs[0]->pop_receipt, 0);
	done_clear(&d);

	/* A message with a time to live. */
	ASSERT_INT_EQ(bd_queue_put(qc, "tasks", "short", 0, 3600, on_done,
	    &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	get("tasks", 32, 30, &d, 0);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT(d.msgs[0]->expires_ms > d.msgs[0]->inserted_ms + 3590000 &&
	    d.msgs[0]->expires_ms < d.msgs[0]->inserted_ms + 3610000);
	delete_msg("tasks", d.msgs[0]->id, d.msgs[0]->pop_receipt, 0);
	done_clear(&d);
}

TEST(not_found)
{
	struct done d = { 0 };

	put("nosuchqueue", "x", 0, -ENOENT);
	get("nosuchqueue", 1, 1, &d, -ENOENT);
	done_clear(&d);
	delete_msg("tasks", "00000000-0000-0000-0000-000000000000",
	    "AAAAAAAAAAAAAAAAAAAAAA==", -ENOENT);
	ASSERT_INT_EQ(bd_queue_update(qc, "tasks",
	    "00000000-0000-0000-0000-000000000000", "AAAAAAAAAAAAAAAAAAAAAA==",
	    1, NULL, on_update, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, -ENOENT);
	done_clear(&d);
	ASSERT_INT_EQ(bd_queue_delete(qc, "nosuchqueue", on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, -ENOENT);
	done_clear(&d);

	/* Ids and receipts with characters a URL must escape. */
	delete_msg("tasks", "a/b?c#d", "x+y/z=&w", -ENOENT);
	ASSERT_INT_EQ(bd_queue_delete_message(qc, "tasks", "", "r", on_done,
	    &d), BD_EINVALID);
	ASSERT_INT_EQ(bd_queue_delete_message(qc, "tasks", "a b", "r",
	    on_done, &d), BD_EINVALID);
	ASSERT_INT_EQ(d.calls, 0);
}

TEST(denied)
{
	struct bd_storage_account *bad;
	struct bd_queue_client *bc;
	struct done d = { 0 };
	char *conn, *cause = NULL;

	conn = xasprintf("DefaultEndpointsProtocol=http;AccountName="
	    "devstoreaccount1;AccountKey=%s;QueueEndpoint="
	    "http://127.0.0.1:%d/devstoreaccount1;",
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
	    ports.queue);
	ASSERT_INT_EQ(bd_storage_account_parse(conn, &bad, &cause), 0);
	ASSERT_INT_EQ(bd_queue_client_new(http, bad, NULL, &bc, &cause), 0);
	ASSERT_INT_EQ(bd_queue_get(bc, "tasks", 1, 1, on_get, &d), 0);
	/* The client may go while its request runs. */
	bd_queue_client_free(bc);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, BD_EDENIED);
	ASSERT_STR_CONTAINS(d.detail, "403");
	done_clear(&d);
	bd_storage_account_free(bad);
	free(conn);

	/* An account without a queue endpoint. */
	ASSERT_INT_EQ(bd_storage_account_new("x", NULL, NULL, NULL, NULL, &bad,
	    &cause), 0);
	ASSERT_INT_EQ(bd_queue_client_new(http, bad, NULL, &bc, &cause),
	    BD_EINVALID);
	ASSERT_STR_CONTAINS(cause, "queue endpoint");
	free(cause);
	bd_storage_account_free(bad);
}

TEST(sdk)
{
	static const char *const texts[] = {
		"{\"version\":1,\"jobId\":\"sdk\",\"task\":{\"id\":\"t\","
		    "\"commandLine\":\"echo '<&>'\"}}",
		"\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80 <a>&amp;</a>",
	};
	struct done d = { 0 };
	cJSON *arr, *item;
	char *path, *out;
	size_t i;

	/* The SDK puts; we receive exactly its text. */
	for (i = 0; i < 2; i++) {
		path = az_write_file("sdk.txt", texts[i], strlen(texts[i]));
		free(az_storagetool("queue-put tasks '%s'", path));
		free(path);
		get("tasks", 32, 30, &d, 0);
		ASSERT_INT_EQ(d.n, 1);
		ASSERT_STR_EQ(d.msgs[0]->text, texts[i]);
		delete_msg("tasks", d.msgs[0]->id, d.msgs[0]->pop_receipt, 0);
		done_clear(&d);
	}

	/* We put; the SDK receives exactly our text. */
	for (i = 0; i < 2; i++)
		put("tasks", texts[i], 0, 0);
	out = az_storagetool("queue-take tasks 32");
	ASSERT_NOT_NULL(arr = cJSON_Parse(out));
	ASSERT_INT_EQ(cJSON_GetArraySize(arr), 2);
	i = 0;
	cJSON_ArrayForEach(item, arr) {
		const cJSON *t = cJSON_GetObjectItem(item, "text");

		ASSERT(cJSON_IsString(t));
		ASSERT(strcmp(t->valuestring, texts[0]) == 0 ||
		    strcmp(t->valuestring, texts[1]) == 0);
		ASSERT_INT_EQ(cJSON_GetObjectItem(item,
		    "dequeueCount")->valueint, 1);
		i++;
	}
	ASSERT_INT_EQ(i, 2);
	cJSON_Delete(arr);
	free(out);

	/* A queue the SDK made is ours to use. */
	free(az_storagetool("queue-create sdkmade"));
	create("sdkmade", 0);
	put("sdkmade", "hello", 0, 0);
	out = az_storagetool("queue-peek sdkmade");
	ASSERT_STR_EQ(out, "[\"hello\"]");
	free(out);
}

/* A client of an account authorized by an account SAS valid for secs. */
static struct bd_queue_client *
sas_client(int secs, struct bd_storage_account **a, char **sas)
{
	struct bd_queue_client *c;
	char *conn, *cause = NULL;

	*sas = az_storagetool("account-sas %d", secs);
	conn = xasprintf("QueueEndpoint=http://127.0.0.1:%d/devstoreaccount1;"
	    "SharedAccessSignature=%s", ports.queue, *sas);
	ASSERT_INT_EQ(bd_storage_account_parse(conn, a, &cause), 0);
	ASSERT_NULL((*a)->key);
	ASSERT_INT_EQ(bd_queue_client_new(http, *a, NULL, &c, &cause), 0);
	free(conn);
	return c;
}

TEST(sas)
{
	struct bd_storage_account *a;
	struct bd_queue_client *c;
	struct done d = { 0 };
	char *sas;

	/* Every operation works with a SAS in the URL instead of a key. */
	c = sas_client(3600, &a, &sas);
	ASSERT_INT_EQ(bd_queue_create(c, "sasqueue", on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	ASSERT_INT_EQ(bd_queue_put(c, "sasqueue", "via <sas>", 0, -1, on_done,
	    &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	ASSERT_INT_EQ(bd_queue_get(c, "sasqueue", 32, 1, on_get, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT_STR_EQ(d.msgs[0]->text, "via <sas>");
	ASSERT_INT_EQ(bd_queue_update(c, "sasqueue", d.msgs[0]->id,
	    d.msgs[0]->pop_receipt, 30, "renewed", on_update, &d), 0);
	d.calls = 0;
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(bd_queue_delete_message(c, "sasqueue", d.msgs[0]->id,
	    d.receipt, on_done, &d), 0);
	d.calls = 0;
	free(d.detail);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	bd_queue_client_free(c);
	bd_storage_account_free(a);
	free(sas);

	/* An expired SAS is refused, and its signature never shows. */
	c = sas_client(-60, &a, &sas);
	secret_sig = strstr(sas, "sig=") + 4;
	ASSERT_INT_EQ(bd_queue_get(c, "sasqueue", 1, 1, on_get, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, BD_EDENIED);
	done_clear(&d);
	secret_sig = NULL;
	bd_queue_client_free(c);
	bd_storage_account_free(a);
	free(sas);
}

static void
on_http_closed(void *arg)
{
	*(bool *)arg = true;
}

int
main(void)
{
	char *conn, *cause = NULL;
	struct done d = { 0 };
	bool closed = false;

	setvbuf(stderr, NULL, _IONBF, 0);
	RUN(names);
	RUN(escape);
	RUN(http_date);
	RUN(parse);

	az_setup("queue");
	az_use_node("@azure/storage-queue");
	az_start(&ports);
	conn = az_connect(&ports, AZ_QUEUE);
	ASSERT_INT_EQ(bd_storage_account_parse(conn, &account, &cause), 0);
	free(conn);

	ASSERT_INT_EQ(uv_loop_init(&loop), 0);
	ASSERT_INT_EQ(bd_http_new(&loop, NULL, &http), 0);
	ASSERT_INT_EQ(bd_queue_client_new(http, account, NULL, &qc, &cause),
	    0);

	RUN(create);
	RUN(lease);
	RUN(batch);
	RUN(text);
	RUN(delay);
	RUN(not_found);
	RUN(denied);
	RUN(sdk);
	RUN(sas);

	/* A request in flight when http closes ends with -ECANCELED. */
	ASSERT_INT_EQ(bd_queue_get(qc, "tasks", 1, 1, on_get, &d), 0);
	bd_queue_client_free(qc);
	bd_http_close(http, on_http_closed, &closed);
	while (!closed)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_INT_EQ(d.calls, 1);
	ASSERT_INT_EQ(d.status, -ECANCELED);
	done_clear(&d);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	bd_storage_account_free(account);
	return 0;
}
