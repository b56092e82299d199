/* SPDX-License-Identifier: MIT */
#ifndef BD_AZURITE_SUPPORT_H
#define BD_AZURITE_SUPPORT_H

/*
 * Test support for the unit tests that run against a real Azurite
 * (test_blob, test_queue, test_table, test_azure_backend): shell commands
 * with their output, a scratch directory, the Node.js packages, and one
 * Azurite started and stopped through tests/lib/azurite-harness.sh.
 *
 * A test calls az_setup() once, then az_use_node() and az_start(); an
 * atexit handler stops Azurite and removes the scratch directory however
 * the program ends (kept when TEST_<NAME>_KEEP is set).  This module owns
 * the scratch and Azurite directories; the strings it returns from
 * az_lib_dir() and az_work_dir() are borrowed for the life of the program.
 * Every failure ends the program through UNIT_FAIL, and a missing node or
 * npm ends it with 77, meson's "skip".
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The ports the harness started Azurite's three services on. */
struct az_ports {
	int	blob;
	int	queue;
	int	table;
};

/* The services az_connect() names in a connection string. */
#define AZ_BLOB		0x1
#define AZ_QUEUE	0x2
#define AZ_TABLE	0x4

char *az_run(int *, const char *, ...) __attribute__((format(printf, 2, 3)));
char *az_vtool(const char *, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));
char *az_storagetool(const char *, ...) __attribute__((format(printf, 1, 2)));

void az_setup(const char *);
const char *az_lib_dir(void);
const char *az_work_dir(void);
char *az_write_file(const char *, const void *, size_t);

void az_use_node(const char *);
void az_start(struct az_ports *);
int az_harness(const char *);
char *az_connect(const struct az_ports *, int);

void az_sleep_ms(uv_loop_t *, uint64_t);
int64_t az_now_ms(void);

#endif
