/* SPDX-License-Identifier: MIT */
#ifndef BD_ERROR_H
#define BD_ERROR_H

/*
 * Functions return 0 or a negative number: a negative errno for system
 * errors, or one of batchd's own codes below, which sit far from errno's
 * range so that the two never collide.
 */
enum {
	BD_EFIRST = -4000,
	BD_EJSON = -4000,	/* not valid JSON, or not the expected shape */
	BD_EINVALID = -4001,	/* a field failed validation */
	BD_EHTTP = -4002,	/* HTTP status that is an error */
	BD_ENET = -4003,	/* connection or protocol failure below HTTP */
	BD_ETIMEDOUT = -4004,	/* a request or transfer ran out of time */
	BD_ETOOBIG = -4005,	/* an input passed a configured limit */
	BD_EESCAPE = -4006,	/* a path would leave its directory */
	BD_ENOTFOUND = -4007,	/* remote object not found */
	BD_EDENIED = -4008,	/* remote access denied */
	BD_ECHECKSUM = -4009,	/* content did not match its checksum */
	BD_EUNSUPPORTED = -4010, /* a valid request batchd cannot serve */
	BD_ELAST = -4010,
};

/* A static description of err (a negative errno or a BD_E code). */
const char *bd_strerror(int err);

#endif
