/* SPDX-License-Identifier: MIT */
#ifndef BD_NGINX_SUPPORT_H
#define BD_NGINX_SUPPORT_H

/*
 * Test support for the unit tests that run against a real nginx
 * (test_http, test_download, test_upload): one nginx started, restarted,
 * killed and stopped through tests/lib/nginx-harness.sh, and its access
 * log read back.
 *
 * ng_start() starts nginx with its prefix in dir (created; www/ is the
 * document root) and registers an atexit handler that stops it however
 * the program ends.  Without nginx installed it returns 0 (the caller
 * skips its HTTP cases), or with required ends the program with 77,
 * meson's "skip".  The module owns a copy of dir; ng_dir() lends it for
 * the life of the program.  Other failures end the program through
 * UNIT_FAIL.
 */

#include <stdbool.h>

int ng_start(const char *dir, bool required);
int ng_harness(const char *verb, const char *arg);
void ng_stop(void);
const char *ng_dir(void);
char *ng_access_log(void);
int ng_access_count(const char *a, const char *b, long long *sent);

#endif
