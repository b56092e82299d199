/* SPDX-License-Identifier: MIT */
/* libcurl's entry points, resolved on first use (see curl_api.h). */
#include "curl_api.h"

#include <errno.h>

#include "lazylib.h"

struct bd_curl_api bd_curl;

#define CURL_SYMBOL(field, name) { name, (void **)&bd_curl.field }

static const struct bd_lazylib_symbol curl_symbols[] = {
	CURL_SYMBOL(global_init, "curl_global_init"),
	CURL_SYMBOL(easy_init, "curl_easy_init"),
	CURL_SYMBOL(easy_setopt, "curl_easy_setopt"),
	CURL_SYMBOL(easy_getinfo, "curl_easy_getinfo"),
	CURL_SYMBOL(easy_cleanup, "curl_easy_cleanup"),
	CURL_SYMBOL(easy_strerror, "curl_easy_strerror"),
	CURL_SYMBOL(multi_init, "curl_multi_init"),
	CURL_SYMBOL(multi_setopt, "curl_multi_setopt"),
	CURL_SYMBOL(multi_add_handle, "curl_multi_add_handle"),
	CURL_SYMBOL(multi_remove_handle, "curl_multi_remove_handle"),
	CURL_SYMBOL(multi_assign, "curl_multi_assign"),
	CURL_SYMBOL(multi_socket_action, "curl_multi_socket_action"),
	CURL_SYMBOL(multi_info_read, "curl_multi_info_read"),
	CURL_SYMBOL(multi_cleanup, "curl_multi_cleanup"),
	CURL_SYMBOL(multi_strerror, "curl_multi_strerror"),
	CURL_SYMBOL(slist_append, "curl_slist_append"),
	CURL_SYMBOL(slist_free_all, "curl_slist_free_all"),
	CURL_SYMBOL(getdate, "curl_getdate"),
	{ NULL, NULL },
};

static struct bd_lazylib curl_lib = { "libcurl.so.4", curl_symbols, 0, NULL };
static int curl_init_state; /* 0 not yet, 1 done, <0 failed */

int
bd_curl_api_load(const char **cause)
{
	int rc;

	if ((rc = bd_lazylib_load(&curl_lib, cause)) < 0)
		return rc;
	if (curl_init_state == 0)
		curl_init_state = curl_global_init(CURL_GLOBAL_DEFAULT) ==
		    CURLE_OK ? 1 : -1;
	if (curl_init_state < 0) {
		if (cause != NULL)
			*cause = "curl_global_init failed";
		return -ENOMEM;
	}
	return 0;
}
