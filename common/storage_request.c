/* SPDX-License-Identifier: MIT */
/*
 * Signed requests to Azure Storage; see storage_request.h.  Stateless: the
 * header lines live only for the call, http.c copies what it keeps.
 */
#include "storage_request.h"

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "xmalloc.h"

char *
bd_storage_url(const struct bd_storage_account *a, const char *endpoint,
    const char *path, const char *query)
{
	if (a->sas != NULL)
		return xasprintf("%s%s?%s%s%s", endpoint, path,
		    query != NULL ? query : "", query != NULL ? "&" : "",
		    a->sas);
	if (query != NULL)
		return xasprintf("%s%s?%s", endpoint, path, query);
	return xasprintf("%s%s", endpoint, path);
}

int
bd_storage_request_start(struct bd_http *http,
    const struct bd_storage_account *a, enum bd_storage_service service,
    struct bd_http_request *req, const char *const *extra, size_t n_extra,
    bd_http_done_cb cb, void *arg)
{
	/* A SAS authorises by itself; a key signs; neither is anonymous. */
	bool sign = a->sas == NULL && a->key != NULL && a->name != NULL;
	char **lines = NULL, *cause = NULL;
	size_t n = 0;
	int rc;

	rc = bd_storage_headers(a, service, sign, req->method, req->url,
	    (int64_t)req->body_mem_len, -1, -1, extra, n_extra, time(NULL),
	    &lines, &n, &cause);
	free(cause);
	if (rc != 0)
		return rc;
	req->headers = (const char *const *)lines;
	req->n_headers = n;
	rc = bd_http_start(http, req, cb, arg, NULL);
	req->headers = NULL;
	req->n_headers = 0;
	bd_storage_headers_free(lines, n);
	return rc;
}
