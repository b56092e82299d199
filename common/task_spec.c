/* SPDX-License-Identifier: MIT */
/*
 * The Azure Batch task model: JSON in, a validated bd_task_spec out.
 *
 * One parser serves the five kinds of task (a task, a job manager, job
 * preparation and job release task, a start task).  A table says which
 * top-level fields each kind has in the REST API (2024-07-01.20.0); a
 * field of another kind is an "unknown field", as is any name the API does
 * not have, so that a typo never silently drops a setting.  The read-only
 * fields of a CloudTask are skipped, so that a task printed by the service
 * or `az batch task show` can be read back.
 *
 * Each sub-object has its own small parser that fills its struct in place;
 * arrays are allocated zeroed at their full length before their items are
 * parsed, so that bd_task_spec_free() can free a half-built spec after an
 * error.  Every error names the field's path.
 */
#include "task_spec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "duration.h"
#include "error.h"
#include "json_field.h"
#include "xmalloc.h"

#define TASK_DISPLAY_NAME_MAX	1024
#define TASK_COMMAND_LINE_MAX	32768
#define TASK_ENV_NAME_MAX	1024
#define TASK_ENV_VALUE_MAX	32768
#define TASK_HEADER_NAME_MAX	256
#define TASK_HEADER_VALUE_MAX	8192
#define TASK_URL_MAX		8192
#define TASK_PATH_MAX		4096
#define TASK_NAME_MAX		255	/* one component of a path */
#define TASK_STRING_MAX		1024	/* names, prefixes, image names */
#define TASK_RESOURCE_ID_MAX	4096	/* ARM ids of managed identities */
#define TASK_TASK_IDS_MAX	64000	/* TaskDependencyListTooLong */
#define TASK_APP_ID_MAX		64
#define TASK_USER_NAME_MAX	64
#define TASK_SLOTS_MAX		256
#define TASK_INSTANCES_MAX	10000
#define TASK_INT32_MAX		2147483647LL
#define TASK_INT32_MIN		(-2147483647LL - 1)

#define TASK_RELEASE_WALL_CLOCK_MS	(15LL * 60 * 1000)

#define K_TASK	(1u << BD_TASK_KIND_TASK)
#define K_MGR	(1u << BD_TASK_KIND_JOB_MANAGER)
#define K_PREP	(1u << BD_TASK_KIND_JOB_PREPARATION)
#define K_REL	(1u << BD_TASK_KIND_JOB_RELEASE)
#define K_START	(1u << BD_TASK_KIND_START)
#define K_ALL	(K_TASK | K_MGR | K_PREP | K_REL | K_START)

/* Top-level fields and the kinds that have them. */
static const struct task_field {
	const char *name;
	unsigned kinds;
} task_fields[] = {
	{ "id", K_TASK | K_MGR | K_PREP | K_REL },
	{ "displayName", K_TASK | K_MGR },
	{ "commandLine", K_ALL },
	{ "containerSettings", K_ALL },
	{ "resourceFiles", K_ALL },
	{ "outputFiles", K_TASK | K_MGR },
	{ "environmentSettings", K_ALL },
	{ "affinityInfo", K_TASK },
	{ "constraints", K_TASK | K_MGR | K_PREP },
	{ "requiredSlots", K_TASK | K_MGR },
	{ "userIdentity", K_ALL },
	{ "exitConditions", K_TASK },
	{ "multiInstanceSettings", K_TASK },
	{ "dependsOn", K_TASK },
	{ "applicationPackageReferences", K_TASK | K_MGR | K_PREP | K_REL },
	{ "authenticationTokenSettings", K_TASK | K_MGR },
	{ "killJobOnCompletion", K_MGR },
	{ "runExclusive", K_MGR },
	{ "allowLowPriorityNode", K_MGR },
	{ "waitForSuccess", K_PREP | K_START },
	{ "rerunOnNodeRebootAfterSuccess", K_PREP },
	{ "maxWallClockTime", K_REL },
	{ "retentionTime", K_REL },
	{ "maxTaskRetryCount", K_START },
};
#define TASK_NFIELDS (sizeof task_fields / sizeof task_fields[0])

/* Read-only CloudTask fields: accepted and ignored. */
static const char *const task_read_only[] = {
	"url", "eTag", "lastModified", "creationTime", "state",
	"stateTransitionTime", "previousState", "previousStateTransitionTime",
	"executionInfo", "nodeInfo", "stats", "odata.metadata", NULL,
};

static const char *const resource_file_fields[] = {
	"autoStorageContainerName", "storageContainerUrl", "httpUrl",
	"blobPrefix", "filePath", "fileMode", "identityReference", NULL,
};
static const char *const identity_reference_fields[] = { "resourceId", NULL };
static const char *const output_file_fields[] = {
	"filePattern", "destination", "uploadOptions", NULL,
};
static const char *const destination_fields[] = { "container", NULL };
static const char *const container_destination_fields[] = {
	"path", "containerUrl", "identityReference", "uploadHeaders", NULL,
};
static const char *const upload_options_fields[] = { "uploadCondition", NULL };
static const char *const name_value_fields[] = { "name", "value", NULL };
static const char *const constraints_fields[] = {
	"maxWallClockTime", "retentionTime", "maxTaskRetryCount", NULL,
};
static const char *const user_identity_fields[] = {
	"username", "userName", "autoUser", NULL,
};
static const char *const auto_user_fields[] = {
	"scope", "elevationLevel", NULL,
};
static const char *const exit_conditions_fields[] = {
	"exitCodes", "exitCodeRanges", "preProcessingError", "fileUploadError",
	"default", NULL,
};
static const char *const exit_code_fields[] = { "code", "exitOptions", NULL };
static const char *const exit_code_range_fields[] = {
	"start", "end", "exitOptions", NULL,
};
static const char *const exit_options_fields[] = {
	"jobAction", "dependencyAction", NULL,
};
static const char *const depends_on_fields[] = {
	"taskIds", "taskIdRanges", NULL,
};
static const char *const range_fields[] = { "start", "end", NULL };
static const char *const app_package_fields[] = {
	"applicationId", "version", NULL,
};
static const char *const container_settings_fields[] = {
	"imageName", "containerRunOptions", "registry", "workingDirectory",
	"containerHostBatchBindMounts", NULL,
};
static const char *const registry_fields[] = {
	"registryServer", "username", "password", "identityReference", NULL,
};
static const char *const bind_mount_fields[] = {
	"source", "isReadOnly", NULL,
};
static const char *const multi_instance_fields[] = {
	"numberOfInstances", "coordinationCommandLine", "commonResourceFiles",
	NULL,
};
static const char *const affinity_fields[] = { "affinityId", NULL };
static const char *const token_settings_fields[] = { "access", NULL };

static const struct bd_json_enum upload_condition_enum[] = {
	{ "taskSuccess", BD_UPLOAD_TASK_SUCCESS },
	{ "taskFailure", BD_UPLOAD_TASK_FAILURE },
	{ "taskCompletion", BD_UPLOAD_TASK_COMPLETION },
	{ NULL, 0 },
};
static const struct bd_json_enum scope_enum[] = {
	{ "task", BD_AUTO_USER_SCOPE_TASK },
	{ "pool", BD_AUTO_USER_SCOPE_POOL },
	{ NULL, 0 },
};
static const struct bd_json_enum elevation_enum[] = {
	{ "nonAdmin", BD_ELEVATION_NONADMIN },
	{ "admin", BD_ELEVATION_ADMIN },
	{ NULL, 0 },
};
static const struct bd_json_enum job_action_enum[] = {
	{ "none", BD_JOB_ACTION_NONE },
	{ "disable", BD_JOB_ACTION_DISABLE },
	{ "terminate", BD_JOB_ACTION_TERMINATE },
	{ NULL, 0 },
};
static const struct bd_json_enum dependency_action_enum[] = {
	{ "satisfy", BD_DEPENDENCY_ACTION_SATISFY },
	{ "block", BD_DEPENDENCY_ACTION_BLOCK },
	{ NULL, 0 },
};
static const struct bd_json_enum container_wd_enum[] = {
	{ "taskWorkingDirectory", BD_CONTAINER_WD_TASK },
	{ "containerImageDefault", BD_CONTAINER_WD_IMAGE_DEFAULT },
	{ NULL, 0 },
};
static const struct bd_json_enum bind_mount_source_enum[] = {
	{ "Shared", 0 }, { "Startup", 1 }, { "VfsMounts", 2 }, { "Task", 3 },
	{ "JobPrep", 4 }, { "Applications", 5 },
	{ NULL, 0 },
};

/* Runs a getter or parser and jumps to fail on an error. */
#define TRY(expr)					\
	do {						\
		if ((rc = (expr)) < 0)			\
			goto fail;			\
	} while (0)

const char *
bd_task_kind_name(enum bd_task_kind kind)
{
	switch (kind) {
	case BD_TASK_KIND_TASK:
		return "task";
	case BD_TASK_KIND_JOB_MANAGER:
		return "job manager task";
	case BD_TASK_KIND_JOB_PREPARATION:
		return "job preparation task";
	case BD_TASK_KIND_JOB_RELEASE:
		return "job release task";
	case BD_TASK_KIND_START:
		return "start task";
	}
	return "task";
}

const char *
bd_upload_condition_name(enum bd_upload_condition c)
{
	switch (c) {
	case BD_UPLOAD_TASK_SUCCESS:
		return "tasksuccess";
	case BD_UPLOAD_TASK_FAILURE:
		return "taskfailure";
	case BD_UPLOAD_TASK_COMPLETION:
		break;
	}
	return "taskcompletion";
}

const char *
bd_job_action_name(enum bd_job_action a)
{
	switch (a) {
	case BD_JOB_ACTION_DISABLE:
		return "disable";
	case BD_JOB_ACTION_TERMINATE:
		return "terminate";
	case BD_JOB_ACTION_NONE:
		break;
	}
	return "none";
}

const char *
bd_dependency_action_name(enum bd_dependency_action a)
{
	switch (a) {
	case BD_DEPENDENCY_ACTION_BLOCK:
		return "block";
	case BD_DEPENDENCY_ACTION_SATISFY:
		break;
	}
	return "satisfy";
}

/* Name/value lists. */

void
bd_name_value_list_clear(struct bd_name_value_list *list)
{
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < list->count; i++) {
		free(list->items[i].name);
		free(list->items[i].value);
	}
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

const char *
bd_name_value_list_get(const struct bd_name_value_list *list,
    const char *name)
{
	size_t i;

	for (i = 0; i < list->count; i++)
		if (strcmp(list->items[i].name, name) == 0)
			return list->items[i].value;
	return NULL;
}

/* Whether name is an HTTP header name (an RFC 9110 token). */
static bool
task_header_name_valid(const char *name)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	const char *p;

	for (p = name; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(extra, *p) != NULL)
			continue;
		return false;
	}
	return p != name;
}

/* Checks one {name, value} item of a list of the given kind. */
static int
task_name_value_check(const char *path, enum bd_name_value_kind kind,
    const char *name, const char *value, char **cause)
{
	switch (kind) {
	case BD_NAME_VALUE_ENVIRONMENT:
		if (strchr(name, '=') != NULL)
			return bd_json_fail(cause, BD_EINVALID, path, "name",
			    "must not contain '='");
		break;
	case BD_NAME_VALUE_HEADER:
		if (!task_header_name_valid(name))
			return bd_json_fail(cause, BD_EINVALID, path, "name",
			    "not a valid HTTP header name");
		if (strpbrk(value, "\r\n") != NULL)
			return bd_json_fail(cause, BD_EINVALID, path, "value",
			    "must not contain line breaks");
		break;
	case BD_NAME_VALUE_METADATA:
		break;
	}
	return 0;
}

int
bd_name_value_list_from_json(const cJSON *obj, const char *path,
    const char *name, enum bd_name_value_kind kind,
    struct bd_name_value_list *out, char **cause)
{
	size_t name_max, value_max, count, i, j;
	struct bd_name_value_list list = { NULL, 0 };
	const cJSON *item;
	char *apath = NULL, *ipath = NULL, *iname = NULL, *ivalue = NULL;
	int rc;

	if (kind == BD_NAME_VALUE_HEADER) {
		name_max = TASK_HEADER_NAME_MAX;
		value_max = TASK_HEADER_VALUE_MAX;
	} else {
		name_max = TASK_ENV_NAME_MAX;
		value_max = TASK_ENV_VALUE_MAX;
	}
	rc = bd_json_get_array(obj, path, name, 0, BD_JSON_ITEM_OBJECT,
	    BD_JSON_MAX_ITEMS, &item, &count, cause);
	if (rc <= 0)
		return rc;
	list.items = xcalloc(count, sizeof *list.items);
	apath = bd_json_path(path, name);
	for (i = 0; item != NULL; item = item->next, i++) {
		ipath = bd_json_path_index(apath, i);
		TRY(bd_json_check_fields(item, ipath, name_value_fields, NULL,
		    NULL, NULL, cause));
		TRY(bd_json_get_string(item, ipath, "name",
		    BD_JSON_REQUIRED | BD_JSON_NONEMPTY, name_max, &iname,
		    cause));
		TRY(bd_json_get_string(item, ipath, "value",
		    kind == BD_NAME_VALUE_METADATA ? BD_JSON_REQUIRED : 0,
		    value_max, &ivalue, cause));
		if (ivalue == NULL)
			ivalue = xstrdup("");
		TRY(task_name_value_check(ipath, kind, iname, ivalue, cause));
		free(ipath);
		ipath = NULL;

		/* A name given again replaces the earlier value. */
		for (j = 0; j < list.count; j++)
			if (strcmp(list.items[j].name, iname) == 0)
				break;
		if (j < list.count) {
			free(list.items[j].value);
			list.items[j].value = ivalue;
			free(iname);
		} else {
			list.items[list.count].name = iname;
			list.items[list.count].value = ivalue;
			list.count++;
		}
		iname = ivalue = NULL;
	}
	free(apath);
	*out = list;
	return 1;

fail:
	free(apath);
	free(ipath);
	free(iname);
	free(ivalue);
	bd_name_value_list_clear(&list);
	return rc;
}

/* Field checks. */

/* Checks that url is an http, https or file URL without spaces. */
static int
task_check_url(const char *path, const char *name, const char *url,
    char **cause)
{
	static const char *const schemes[] = { "http:", "https:", "file:" };
	const char *p;
	size_t i, n;

	for (i = 0; i < 3; i++) {
		n = strlen(schemes[i]);
		if (strncasecmp(url, schemes[i], n) == 0 && url[n] != '\0')
			break;
	}
	if (i == 3)
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "must be an http, https or file URL");
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return bd_json_fail(cause, BD_EINVALID, path, name,
			    "must not contain spaces or control characters");
	return 0;
}

/*
 * Normalises a path relative to the working directory: drops "." and
 * empty components and resolves "..", refusing to climb above the start.
 * *out is NULL when nothing is left (the directory itself), else a copy
 * the caller frees.
 */
static int
task_relative_path(const char *path, const char *name, const char *raw,
    char **out, char **cause)
{
	size_t len = strlen(raw), olen = 0, clen;
	const char *p = raw, *slash;
	char *buf;

	if (raw[0] == '/')
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "must be relative to the working directory");
	buf = xmalloc(len + 1);
	while (*p != '\0') {
		slash = strchr(p, '/');
		clen = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (clen > TASK_NAME_MAX) {
			free(buf);
			return bd_json_fail(cause, BD_EINVALID, path, name,
			    "a path component is longer than %d bytes",
			    TASK_NAME_MAX);
		}
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			if (olen == 0) {
				free(buf);
				return bd_json_fail(cause, BD_EINVALID, path,
				    name, "must stay inside the working "
				    "directory");
			}
			while (olen > 0 && buf[olen - 1] != '/')
				olen--;
			if (olen > 0)
				olen--;
		} else if (clen != 0 && !(clen == 1 && p[0] == '.')) {
			if (olen > 0)
				buf[olen++] = '/';
			memcpy(buf + olen, p, clen);
			olen += clen;
		}
		p += clen;
		if (*p == '/')
			p++;
	}
	if (olen == 0) {
		free(buf);
		*out = NULL;
		return 0;
	}
	buf[olen] = '\0';
	*out = buf;
	return 0;
}

/* Parses an identityReference object into its resourceId (or NULL). */
static int
task_parse_identity_reference(const cJSON *obj, const char *path,
    char **out, char **cause)
{
	const cJSON *ref;
	char *rpath;
	int rc;

	rc = bd_json_get_object(obj, path, "identityReference", 0, &ref,
	    cause);
	if (rc <= 0)
		return rc;
	rpath = bd_json_path(path, "identityReference");
	rc = bd_json_check_fields(ref, rpath, identity_reference_fields, NULL,
	    NULL, NULL, cause);
	if (rc == 0)
		rc = bd_json_get_string(ref, rpath, "resourceId",
		    BD_JSON_NONEMPTY, TASK_RESOURCE_ID_MAX, out, cause);
	free(rpath);
	return rc;
}

/* Whether name is a storage container name (3-63 of a-z, 0-9, '-'). */
static bool
task_container_name_valid(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		if (i >= 63)
			return false;
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
			return false;
	}
	return i >= 3 && name[0] != '-';
}

/* Parses the octal fileMode string into *mode. */
static int
task_parse_file_mode(const cJSON *obj, const char *path, unsigned *mode,
    char **cause)
{
	char *s = NULL;
	unsigned v = 0;
	size_t i;
	int rc;

	rc = bd_json_get_string(obj, path, "fileMode", 0, 16, &s, cause);
	if (rc <= 0)
		return rc;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '7')
			break;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	rc = 0;
	if (i == 0 || s[i] != '\0' || i > 4)
		rc = bd_json_fail(cause, BD_EINVALID, path, "fileMode",
		    "must be an octal mode of 1 to 4 digits such as \"0755\"");
	else if (v & 07000)
		rc = bd_json_fail(cause, BD_EINVALID, path, "fileMode",
		    "set-user-ID, set-group-ID and sticky bits are not "
		    "allowed");
	free(s);
	if (rc == 0)
		*mode = v;
	return rc;
}

/* Parses one ResourceFile object. */
static int
task_parse_resource_file(const cJSON *obj, const char *path,
    struct bd_resource_file *rf, char **cause)
{
	char *http = NULL, *container_url = NULL, *auto_name = NULL;
	char *file_path = NULL;
	int rc, n;

	rf->file_mode = 0770;
	TRY(bd_json_check_fields(obj, path, resource_file_fields, NULL, NULL,
	    NULL, cause));
	TRY(bd_json_get_string(obj, path, "httpUrl", BD_JSON_NONEMPTY,
	    TASK_URL_MAX, &http, cause));
	TRY(bd_json_get_string(obj, path, "storageContainerUrl",
	    BD_JSON_NONEMPTY, TASK_URL_MAX, &container_url, cause));
	TRY(bd_json_get_string(obj, path, "autoStorageContainerName",
	    BD_JSON_NONEMPTY, TASK_STRING_MAX, &auto_name, cause));
	n = (http != NULL) + (container_url != NULL) + (auto_name != NULL);
	if (n != 1) {
		rc = bd_json_fail(cause, BD_EINVALID, path, NULL,
		    "exactly one of httpUrl, storageContainerUrl, "
		    "autoStorageContainerName is required");
		goto fail;
	}
	if (http != NULL) {
		TRY(task_check_url(path, "httpUrl", http, cause));
		rf->source = BD_RESOURCE_HTTP_URL;
		rf->url = http;
		http = NULL;
	} else if (container_url != NULL) {
		TRY(task_check_url(path, "storageContainerUrl", container_url,
		    cause));
		rf->source = BD_RESOURCE_STORAGE_CONTAINER_URL;
		rf->url = container_url;
		container_url = NULL;
	} else {
		if (!task_container_name_valid(auto_name)) {
			rc = bd_json_fail(cause, BD_EINVALID, path,
			    "autoStorageContainerName", "must be a storage "
			    "container name: 3 to 63 lower-case letters, "
			    "digits and '-'");
			goto fail;
		}
		rf->source = BD_RESOURCE_AUTO_STORAGE_CONTAINER;
		rf->url = auto_name;
		auto_name = NULL;
	}

	TRY(bd_json_get_string(obj, path, "blobPrefix", 0, TASK_STRING_MAX,
	    &rf->blob_prefix, cause));
	if (rf->blob_prefix != NULL && rf->source == BD_RESOURCE_HTTP_URL) {
		rc = bd_json_fail(cause, BD_EINVALID, path, "blobPrefix",
		    "only allowed with storageContainerUrl or "
		    "autoStorageContainerName");
		goto fail;
	}

	TRY(bd_json_get_string(obj, path, "filePath", BD_JSON_NONEMPTY,
	    TASK_PATH_MAX, &file_path, cause));
	if (file_path == NULL && rf->source == BD_RESOURCE_HTTP_URL) {
		rc = bd_json_fail(cause, BD_EINVALID, path, "filePath",
		    "required with httpUrl");
		goto fail;
	}
	if (file_path != NULL) {
		TRY(task_relative_path(path, "filePath", file_path,
		    &rf->file_path, cause));
		if (rf->source == BD_RESOURCE_HTTP_URL &&
		    (rf->file_path == NULL ||
		    file_path[strlen(file_path) - 1] == '/')) {
			rc = bd_json_fail(cause, BD_EINVALID, path, "filePath",
			    "must name a file inside the working directory");
			goto fail;
		}
	}
	TRY(task_parse_file_mode(obj, path, &rf->file_mode, cause));
	TRY(task_parse_identity_reference(obj, path, &rf->identity_reference,
	    cause));
	rc = 0;

fail:
	free(http);
	free(container_url);
	free(auto_name);
	free(file_path);
	return rc;
}

/* Parses the array obj.name of ResourceFiles into *out and *n. */
static int
task_parse_resource_files(const cJSON *obj, const char *path,
    const char *name, struct bd_resource_file **out, size_t *n,
    char **cause)
{
	const cJSON *item;
	char *apath, *ipath;
	size_t count, i;
	int rc;

	rc = bd_json_get_array(obj, path, name, 0, BD_JSON_ITEM_OBJECT,
	    BD_JSON_MAX_ITEMS, &item, &count, cause);
	if (rc <= 0)
		return rc;
	*out = xcalloc(count, sizeof **out);
	*n = count;
	apath = bd_json_path(path, name);
	for (i = 0; item != NULL; item = item->next, i++) {
		ipath = bd_json_path_index(apath, i);
		rc = task_parse_resource_file(item, ipath, &(*out)[i], cause);
		free(ipath);
		if (rc < 0)
			break;
	}
	free(apath);
	return rc < 0 ? rc : 1;
}

/* Frees what one resource file owns. */
static void
task_resource_file_clear(struct bd_resource_file *rf)
{
	free(rf->url);
	free(rf->blob_prefix);
	free(rf->file_path);
	free(rf->identity_reference);
}

/* Frees an array of n resource files. */
static void
task_resource_files_free(struct bd_resource_file *rf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		task_resource_file_clear(&rf[i]);
	free(rf);
}

/* Parses one OutputFile object. */
static int
task_parse_output_file(const cJSON *obj, const char *path,
    struct bd_output_file *of, char **cause)
{
	const cJSON *dest, *container, *options;
	char *dpath = NULL, *cpath = NULL, *opath = NULL;
	int rc, cond = BD_UPLOAD_TASK_COMPLETION;

	TRY(bd_json_check_fields(obj, path, output_file_fields, NULL, NULL,
	    NULL, cause));
	TRY(bd_json_get_string(obj, path, "filePattern",
	    BD_JSON_REQUIRED | BD_JSON_NONEMPTY, TASK_PATH_MAX,
	    &of->file_pattern, cause));

	TRY(bd_json_get_object(obj, path, "destination", BD_JSON_REQUIRED,
	    &dest, cause));
	dpath = bd_json_path(path, "destination");
	TRY(bd_json_check_fields(dest, dpath, destination_fields, NULL, NULL,
	    NULL, cause));
	TRY(bd_json_get_object(dest, dpath, "container", BD_JSON_REQUIRED,
	    &container, cause));
	cpath = bd_json_path(dpath, "container");
	TRY(bd_json_check_fields(container, cpath,
	    container_destination_fields, NULL, NULL, NULL, cause));
	TRY(bd_json_get_string(container, cpath, "containerUrl",
	    BD_JSON_REQUIRED | BD_JSON_NONEMPTY, TASK_URL_MAX,
	    &of->container_url, cause));
	TRY(task_check_url(cpath, "containerUrl", of->container_url, cause));
	TRY(bd_json_get_string(container, cpath, "path", 0, TASK_STRING_MAX,
	    &of->path, cause));
	TRY(task_parse_identity_reference(container, cpath,
	    &of->identity_reference, cause));
	TRY(bd_name_value_list_from_json(container, cpath, "uploadHeaders",
	    BD_NAME_VALUE_HEADER, &of->upload_headers, cause));

	TRY(bd_json_get_object(obj, path, "uploadOptions", BD_JSON_REQUIRED,
	    &options, cause));
	opath = bd_json_path(path, "uploadOptions");
	TRY(bd_json_check_fields(options, opath, upload_options_fields, NULL,
	    NULL, NULL, cause));
	TRY(bd_json_get_enum(options, opath, "uploadCondition",
	    BD_JSON_REQUIRED, upload_condition_enum, &cond, cause));
	of->upload_condition = (enum bd_upload_condition)cond;
	rc = 0;

fail:
	free(dpath);
	free(cpath);
	free(opath);
	return rc;
}

/* Frees an array of n output files. */
static void
task_output_files_free(struct bd_output_file *of, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(of[i].file_pattern);
		free(of[i].container_url);
		free(of[i].path);
		free(of[i].identity_reference);
		bd_name_value_list_clear(&of[i].upload_headers);
	}
	free(of);
}

/* Parses the outputFiles array. */
static int
task_parse_output_files(const cJSON *obj, const char *path,
    struct bd_task_spec *spec, char **cause)
{
	const cJSON *item;
	char *apath, *ipath;
	size_t count, i;
	int rc;

	rc = bd_json_get_array(obj, path, "outputFiles", 0,
	    BD_JSON_ITEM_OBJECT, BD_JSON_MAX_ITEMS, &item, &count, cause);
	if (rc <= 0)
		return rc;
	spec->output_files = xcalloc(count, sizeof *spec->output_files);
	spec->n_output_files = count;
	apath = bd_json_path(path, "outputFiles");
	for (i = 0; item != NULL; item = item->next, i++) {
		ipath = bd_json_path_index(apath, i);
		rc = task_parse_output_file(item, ipath,
		    &spec->output_files[i], cause);
		free(ipath);
		if (rc < 0)
			break;
	}
	free(apath);
	return rc < 0 ? rc : 1;
}

/* Parses a TaskConstraints object into spec->constraints. */
static int
task_parse_constraints(const cJSON *obj, const char *path,
    struct bd_task_spec *spec, char **cause)
{
	struct bd_task_constraints *c = &spec->constraints;
	const cJSON *cons;
	char *cpath;
	int64_t n;
	int rc;

	rc = bd_json_get_object(obj, path, "constraints", 0, &cons, cause);
	if (rc <= 0)
		return rc;
	cpath = bd_json_path(path, "constraints");
	TRY(bd_json_check_fields(cons, cpath, constraints_fields, NULL, NULL,
	    NULL, cause));
	TRY(bd_json_get_duration(cons, cpath, "maxWallClockTime", 0,
	    &c->max_wall_clock_ms, cause));
	TRY(bd_json_get_duration(cons, cpath, "retentionTime", 0,
	    &c->retention_ms, cause));
	TRY(bd_json_get_int(cons, cpath, "maxTaskRetryCount", 0, -1,
	    TASK_INT32_MAX, &n, cause));
	if (rc == 1) {
		c->max_task_retry_count = (int)n;
		c->has_max_task_retry_count = true;
	}
	spec->has_constraints = true;
	rc = 1;

fail:
	free(cpath);
	return rc;
}

/* Whether name can be a user account name on a Linux node. */
static bool
task_user_name_valid(const char *name)
{
	const char *p;

	if (name[0] == '-' || strlen(name) > TASK_USER_NAME_MAX)
		return false;
	for (p = name; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '/' ||
		    *p == ':')
			return false;
	return p != name;
}

/* Parses a UserIdentity object. */
static int
task_parse_user_identity(const cJSON *obj, const char *path,
    struct bd_user_identity *ui, char **cause)
{
	const cJSON *uobj, *auto_user;
	char *upath = NULL, *apath = NULL, *alt = NULL;
	int rc, v;

	rc = bd_json_get_object(obj, path, "userIdentity", 0, &uobj, cause);
	if (rc <= 0)
		return rc;
	upath = bd_json_path(path, "userIdentity");
	TRY(bd_json_check_fields(uobj, upath, user_identity_fields, NULL,
	    NULL, NULL, cause));
	TRY(bd_json_get_string(uobj, upath, "username", BD_JSON_NONEMPTY,
	    TASK_STRING_MAX, &ui->username, cause));
	TRY(bd_json_get_string(uobj, upath, "userName", BD_JSON_NONEMPTY,
	    TASK_STRING_MAX, &alt, cause));
	if (alt != NULL && ui->username != NULL) {
		rc = bd_json_fail(cause, BD_EINVALID, upath, NULL,
		    "give username or userName, not both");
		goto fail;
	}
	if (alt != NULL) {
		ui->username = alt;
		alt = NULL;
	}
	if (ui->username != NULL && !task_user_name_valid(ui->username)) {
		rc = bd_json_fail(cause, BD_EINVALID, upath, "username",
		    "not a valid user name");
		goto fail;
	}

	TRY(bd_json_get_object(uobj, upath, "autoUser", 0, &auto_user,
	    cause));
	if (rc == 1) {
		if (ui->username != NULL) {
			rc = bd_json_fail(cause, BD_EINVALID, upath, NULL,
			    "username and autoUser are mutually exclusive");
			goto fail;
		}
		apath = bd_json_path(upath, "autoUser");
		TRY(bd_json_check_fields(auto_user, apath, auto_user_fields,
		    NULL, NULL, NULL, cause));
		v = BD_AUTO_USER_SCOPE_POOL;
		TRY(bd_json_get_enum(auto_user, apath, "scope", 0, scope_enum,
		    &v, cause));
		ui->scope = (enum bd_auto_user_scope)v;
		v = BD_ELEVATION_NONADMIN;
		TRY(bd_json_get_enum(auto_user, apath, "elevationLevel", 0,
		    elevation_enum, &v, cause));
		ui->elevation = (enum bd_elevation_level)v;
		ui->has_auto_user = true;
	}
	rc = 1;

fail:
	free(upath);
	free(apath);
	free(alt);
	return rc;
}

/* Parses an ExitOptions object obj.name into *eo. */
static int
task_parse_exit_options(const cJSON *obj, const char *path, const char *name,
    int flags, struct bd_exit_options *eo, char **cause)
{
	const cJSON *opts;
	char *opath;
	int rc, v;

	rc = bd_json_get_object(obj, path, name, flags, &opts, cause);
	if (rc <= 0)
		return rc;
	opath = bd_json_path(path, name);
	TRY(bd_json_check_fields(opts, opath, exit_options_fields, NULL, NULL,
	    NULL, cause));
	TRY(bd_json_get_enum(opts, opath, "jobAction", 0, job_action_enum, &v,
	    cause));
	if (rc == 1) {
		eo->job_action = (enum bd_job_action)v;
		eo->has_job_action = true;
	}
	TRY(bd_json_get_enum(opts, opath, "dependencyAction", 0,
	    dependency_action_enum, &v, cause));
	if (rc == 1) {
		eo->dependency_action = (enum bd_dependency_action)v;
		eo->has_dependency_action = true;
	}
	rc = 1;

fail:
	free(opath);
	return rc;
}

/* Parses the exitCodes array of an ExitConditions object. */
static int
task_parse_exit_codes(const cJSON *obj, const char *path,
    struct bd_exit_conditions *ec, char **cause)
{
	const cJSON *item;
	char *apath, *ipath = NULL;
	size_t count, i;
	int64_t code;
	int rc;

	rc = bd_json_get_array(obj, path, "exitCodes", 0, BD_JSON_ITEM_OBJECT,
	    BD_JSON_MAX_ITEMS, &item, &count, cause);
	if (rc <= 0)
		return rc;
	ec->exit_codes = xcalloc(count, sizeof *ec->exit_codes);
	ec->n_exit_codes = count;
	apath = bd_json_path(path, "exitCodes");
	for (i = 0; item != NULL; item = item->next, i++) {
		ipath = bd_json_path_index(apath, i);
		TRY(bd_json_check_fields(item, ipath, exit_code_fields, NULL,
		    NULL, NULL, cause));
		TRY(bd_json_get_int(item, ipath, "code", BD_JSON_REQUIRED,
		    TASK_INT32_MIN, TASK_INT32_MAX, &code, cause));
		ec->exit_codes[i].code = (int)code;
		TRY(task_parse_exit_options(item, ipath, "exitOptions",
		    BD_JSON_REQUIRED, &ec->exit_codes[i].options, cause));
		free(ipath);
		ipath = NULL;
	}
	rc = 1;

fail:
	free(ipath);
	free(apath);
	return rc;
}

/* Parses the exitCodeRanges array of an ExitConditions object. */
static int
task_parse_exit_code_ranges(const cJSON *obj, const char *path,
    struct bd_exit_conditions *ec, char **cause)
{
	struct bd_exit_code_range *r;
	const cJSON *item;
	char *apath, *ipath = NULL;
	size_t count, i;
	int64_t start, end;
	int rc;

	rc = bd_json_get_array(obj, path, "exitCodeRanges", 0,
	    BD_JSON_ITEM_OBJECT, BD_JSON_MAX_ITEMS, &item, &count, cause);
	if (rc <= 0)
		return rc;
	ec->exit_code_ranges = xcalloc(count, sizeof *ec->exit_code_ranges);
	ec->n_exit_code_ranges = count;
	apath = bd_json_path(path, "exitCodeRanges");
	for (i = 0; item != NULL; item = item->next, i++) {
		r = &ec->exit_code_ranges[i];
		ipath = bd_json_path_index(apath, i);
		TRY(bd_json_check_fields(item, ipath, exit_code_range_fields,
		    NULL, NULL, NULL, cause));
		TRY(bd_json_get_int(item, ipath, "start", BD_JSON_REQUIRED,
		    TASK_INT32_MIN, TASK_INT32_MAX, &start, cause));
		TRY(bd_json_get_int(item, ipath, "end", BD_JSON_REQUIRED,
		    TASK_INT32_MIN, TASK_INT32_MAX, &end, cause));
		if (start > end) {
			rc = bd_json_fail(cause, BD_EINVALID, ipath, NULL,
			    "start (%lld) is greater than end (%lld)",
			    (long long)start, (long long)end);
			goto fail;
		}
		r->start = (int)start;
		r->end = (int)end;
		TRY(task_parse_exit_options(item, ipath, "exitOptions",
		    BD_JSON_REQUIRED, &r->options, cause));
		free(ipath);
		ipath = NULL;
	}
	rc = 1;

fail:
	free(ipath);
	free(apath);
	return rc;
}

/* Parses an ExitConditions object into spec->exit_conditions. */
static int
task_parse_exit_conditions(const cJSON *obj, const char *path,
    struct bd_task_spec *spec, char **cause)
{
	struct bd_exit_conditions *ec = &spec->exit_conditions;
	const cJSON *eobj;
	char *epath;
	int rc;

	rc = bd_json_get_object(obj, path, "exitConditions", 0, &eobj, cause);
	if (rc <= 0)
		return rc;
	epath = bd_json_path(path, "exitConditions");
	TRY(bd_json_check_fields(eobj, epath, exit_conditions_fields, NULL,
	    NULL, NULL, cause));
	TRY(task_parse_exit_codes(eobj, epath, ec, cause));
	TRY(task_parse_exit_code_ranges(eobj, epath, ec, cause));
	TRY(task_parse_exit_options(eobj, epath, "preProcessingError", 0,
	    &ec->pre_processing_error, cause));
	ec->has_pre_processing_error = rc == 1;
	TRY(task_parse_exit_options(eobj, epath, "fileUploadError", 0,
	    &ec->file_upload_error, cause));
	ec->has_file_upload_error = rc == 1;
	TRY(task_parse_exit_options(eobj, epath, "default", 0,
	    &ec->default_options, cause));
	ec->has_default = rc == 1;
	spec->has_exit_conditions = true;
	rc = 1;

fail:
	free(epath);
	return rc;
}

/* Parses a TaskDependencies object into spec->depends_on. */
static int
task_parse_depends_on(const cJSON *obj, const char *path,
    struct bd_task_spec *spec, char **cause)
{
	struct bd_task_dependencies *d = &spec->depends_on;
	const cJSON *dobj, *item, *first;
	char *dpath, *apath = NULL, *ipath = NULL;
	size_t count, i, total = 0;
	int64_t start, end;
	int rc;

	rc = bd_json_get_object(obj, path, "dependsOn", 0, &dobj, cause);
	if (rc <= 0)
		return rc;
	spec->has_depends_on = true;
	dpath = bd_json_path(path, "dependsOn");
	TRY(bd_json_check_fields(dobj, dpath, depends_on_fields, NULL, NULL,
	    NULL, cause));

	TRY(bd_json_get_array(dobj, dpath, "taskIds", 0, BD_JSON_ITEM_STRING,
	    BD_JSON_MAX_ITEMS, &first, &count, cause));
	if (rc == 1) {
		apath = bd_json_path(dpath, "taskIds");
		for (item = first, i = 0; item != NULL;
		    item = item->next, i++) {
			total += strlen(item->valuestring);
			if (total > TASK_TASK_IDS_MAX) {
				rc = bd_json_fail(cause, BD_EINVALID, apath,
				    NULL, "longer than %d characters in total",
				    TASK_TASK_IDS_MAX);
				goto fail;
			}
			if (!bd_json_id_valid(item->valuestring)) {
				ipath = bd_json_path_index(apath, i);
				rc = bd_json_fail(cause, BD_EINVALID, ipath,
				    NULL, "not a task id: 1 to 64 letters, "
				    "digits, '-' and '_'");
				goto fail;
			}
		}
		d->task_ids = xcalloc(count, sizeof *d->task_ids);
		for (item = first; item != NULL; item = item->next)
			d->task_ids[d->n_task_ids++] =
			    xstrdup(item->valuestring);
		free(apath);
		apath = NULL;
	}

	TRY(bd_json_get_array(dobj, dpath, "taskIdRanges", 0,
	    BD_JSON_ITEM_OBJECT, BD_JSON_MAX_ITEMS, &item, &count, cause));
	if (rc == 1) {
		d->task_id_ranges = xcalloc(count, sizeof *d->task_id_ranges);
		d->n_task_id_ranges = count;
		apath = bd_json_path(dpath, "taskIdRanges");
		for (i = 0; item != NULL; item = item->next, i++) {
			ipath = bd_json_path_index(apath, i);
			TRY(bd_json_check_fields(item, ipath, range_fields,
			    NULL, NULL, NULL, cause));
			TRY(bd_json_get_int(item, ipath, "start",
			    BD_JSON_REQUIRED, 0, TASK_INT32_MAX, &start,
			    cause));
			TRY(bd_json_get_int(item, ipath, "end",
			    BD_JSON_REQUIRED, 0, TASK_INT32_MAX, &end, cause));
			if (start > end) {
				rc = bd_json_fail(cause, BD_EINVALID, ipath,
				    NULL, "start (%lld) is greater than end "
				    "(%lld)", (long long)start,
				    (long long)end);
				goto fail;
			}
			d->task_id_ranges[i].start = start;
			d->task_id_ranges[i].end = end;
			free(ipath);
			ipath = NULL;
		}
	}
	rc = 1;

fail:
	free(dpath);
	free(apath);
	free(ipath);
	return rc;
}

/* Whether s is an application id or version: 1-64 of [A-Za-z0-9_.-]. */
static bool
task_app_name_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= TASK_APP_ID_MAX)
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	}
	return i > 0;
}

/* Parses the applicationPackageReferences array. */
static int
task_parse_app_packages(const cJSON *obj, const char *path,
    struct bd_task_spec *spec, char **cause)
{
	struct bd_application_package_reference *ref;
	const cJSON *item;
	char *apath, *ipath = NULL;
	size_t count, i;
	int rc;

	rc = bd_json_get_array(obj, path, "applicationPackageReferences", 0,
	    BD_JSON_ITEM_OBJECT, BD_JSON_MAX_ITEMS, &item, &count, cause);
	if (rc <= 0)
		return rc;
	spec->application_packages = xcalloc(count,
	    sizeof *spec->application_packages);
	spec->n_application_packages = count;
	apath = bd_json_path(path, "applicationPackageReferences");
	for (i = 0; item != NULL; item = item->next, i++) {
		ref = &spec->application_packages[i];
		ipath = bd_json_path_index(apath, i);
		TRY(bd_json_check_fields(item, ipath, app_package_fields, NULL,
		    NULL, NULL, cause));
		TRY(bd_json_get_string(item, ipath, "applicationId",
		    BD_JSON_REQUIRED | BD_JSON_NONEMPTY, TASK_STRING_MAX,
		    &ref->application_id, cause));
		if (!task_app_name_valid(ref->application_id)) {
			rc = bd_json_fail(cause, BD_EINVALID, ipath,
			    "applicationId", "must be 1 to 64 letters, "
			    "digits, '_', '-' and '.'");
			goto fail;
		}
		TRY(bd_json_get_string(item, ipath, "version",
		    BD_JSON_NONEMPTY, TASK_STRING_MAX, &ref->version, cause));
		if (ref->version != NULL &&
		    !task_app_name_valid(ref->version)) {
			rc = bd_json_fail(cause, BD_EINVALID, ipath, "version",
			    "must be 1 to 64 letters, digits, '_', '-' and "
			    "'.'");
			goto fail;
		}
		free(ipath);
		ipath = NULL;
	}
	rc = 1;

fail:
	free(ipath);
	free(apath);
	return rc;
}

/* Frees container settings; NULL is allowed. */
static void
task_container_settings_free(struct bd_container_settings *cs)
{
	if (cs == NULL)
		return;
	free(cs->image_name);
	free(cs->container_run_options);
	free(cs->registry_server);
	free(cs->registry_username);
	free(cs->registry_password);
	free(cs);
}

/* Parses the containerHostBatchBindMounts array (checked, not kept). */
static int
task_parse_bind_mounts(const cJSON *obj, const char *path, char **cause)
{
	const cJSON *item;
	char *apath, *ipath = NULL;
	size_t count, i;
	bool ro;
	int rc, v;

	rc = bd_json_get_array(obj, path, "containerHostBatchBindMounts", 0,
	    BD_JSON_ITEM_OBJECT, BD_JSON_MAX_ITEMS, &item, &count, cause);
	if (rc <= 0)
		return rc;
	apath = bd_json_path(path, "containerHostBatchBindMounts");
	for (i = 0; item != NULL; item = item->next, i++) {
		ipath = bd_json_path_index(apath, i);
		TRY(bd_json_check_fields(item, ipath, bind_mount_fields, NULL,
		    NULL, NULL, cause));
		TRY(bd_json_get_enum(item, ipath, "source", 0,
		    bind_mount_source_enum, &v, cause));
		TRY(bd_json_get_bool(item, ipath, "isReadOnly", 0, &ro,
		    cause));
		free(ipath);
		ipath = NULL;
	}
	rc = 1;

fail:
	free(ipath);
	free(apath);
	return rc;
}

/* Parses a TaskContainerSettings object. */
static int
task_parse_container_settings(const cJSON *obj, const char *path,
    struct bd_task_spec *spec, char **cause)
{
	struct bd_container_settings *cs;
	const cJSON *cobj, *reg;
	char *cpath, *rpath = NULL, *identity = NULL;
	int rc, v;

	rc = bd_json_get_object(obj, path, "containerSettings", 0, &cobj,
	    cause);
	if (rc <= 0)
		return rc;
	cs = spec->container_settings = xcalloc(1, sizeof *cs);
	cpath = bd_json_path(path, "containerSettings");
	TRY(bd_json_check_fields(cobj, cpath, container_settings_fields, NULL,
	    NULL, NULL, cause));
	TRY(bd_json_get_string(cobj, cpath, "imageName",
	    BD_JSON_REQUIRED | BD_JSON_NONEMPTY, TASK_STRING_MAX,
	    &cs->image_name, cause));
	TRY(bd_json_get_string(cobj, cpath, "containerRunOptions", 0,
	    TASK_COMMAND_LINE_MAX, &cs->container_run_options, cause));
	v = BD_CONTAINER_WD_TASK;
	TRY(bd_json_get_enum(cobj, cpath, "workingDirectory", 0,
	    container_wd_enum, &v, cause));
	cs->working_directory = (enum bd_container_working_directory)v;
	TRY(task_parse_bind_mounts(cobj, cpath, cause));

	TRY(bd_json_get_object(cobj, cpath, "registry", 0, &reg, cause));
	if (rc == 1) {
		rpath = bd_json_path(cpath, "registry");
		TRY(bd_json_check_fields(reg, rpath, registry_fields, NULL,
		    NULL, NULL, cause));
		TRY(bd_json_get_string(reg, rpath, "registryServer",
		    BD_JSON_NONEMPTY, TASK_STRING_MAX, &cs->registry_server,
		    cause));
		TRY(bd_json_get_string(reg, rpath, "username", 0,
		    TASK_STRING_MAX, &cs->registry_username, cause));
		TRY(bd_json_get_string(reg, rpath, "password", 0,
		    TASK_STRING_MAX, &cs->registry_password, cause));
		TRY(task_parse_identity_reference(reg, rpath, &identity,
		    cause));
	}
	rc = 1;

fail:
	free(cpath);
	free(rpath);
	free(identity);
	return rc;
}

/* Parses a MultiInstanceSettings object. */
static int
task_parse_multi_instance(const cJSON *obj, const char *path,
    struct bd_task_spec *spec, char **cause)
{
	struct bd_multi_instance_settings *mi;
	const cJSON *mobj;
	char *mpath;
	int64_t n;
	int rc;

	rc = bd_json_get_object(obj, path, "multiInstanceSettings", 0, &mobj,
	    cause);
	if (rc <= 0)
		return rc;
	mi = spec->multi_instance = xcalloc(1, sizeof *mi);
	mi->number_of_instances = 1;
	mpath = bd_json_path(path, "multiInstanceSettings");
	TRY(bd_json_check_fields(mobj, mpath, multi_instance_fields, NULL,
	    NULL, NULL, cause));
	TRY(bd_json_get_int(mobj, mpath, "numberOfInstances", 0, 1,
	    TASK_INSTANCES_MAX, &n, cause));
	if (rc == 1)
		mi->number_of_instances = (int)n;
	TRY(bd_json_get_string(mobj, mpath, "coordinationCommandLine",
	    BD_JSON_REQUIRED | BD_JSON_NONEMPTY, TASK_COMMAND_LINE_MAX,
	    &mi->coordination_command_line, cause));
	TRY(task_parse_resource_files(mobj, mpath, "commonResourceFiles",
	    &mi->common_resource_files, &mi->n_common_resource_files, cause));
	rc = 1;

fail:
	free(mpath);
	return rc;
}

/* Parses affinityInfo and authenticationTokenSettings. */
static int
task_parse_small_objects(const cJSON *obj, const char *path,
    struct bd_task_spec *spec, char **cause)
{
	const cJSON *o, *item;
	char *opath = NULL, *apath = NULL;
	size_t count, i;
	int rc;

	TRY(bd_json_get_object(obj, path, "affinityInfo", 0, &o, cause));
	if (rc == 1) {
		opath = bd_json_path(path, "affinityInfo");
		TRY(bd_json_check_fields(o, opath, affinity_fields, NULL, NULL,
		    NULL, cause));
		TRY(bd_json_get_string(o, opath, "affinityId",
		    BD_JSON_REQUIRED | BD_JSON_NONEMPTY, TASK_STRING_MAX,
		    &spec->affinity_id, cause));
		free(opath);
		opath = NULL;
	}

	TRY(bd_json_get_object(obj, path, "authenticationTokenSettings", 0,
	    &o, cause));
	if (rc == 1) {
		opath = bd_json_path(path, "authenticationTokenSettings");
		TRY(bd_json_check_fields(o, opath, token_settings_fields, NULL,
		    NULL, NULL, cause));
		TRY(bd_json_get_array(o, opath, "access", 0,
		    BD_JSON_ITEM_STRING, 16, &item, &count, cause));
		if (rc == 1) {
			apath = bd_json_path(opath, "access");
			for (i = 0; item != NULL; item = item->next, i++) {
				if (strcasecmp(item->valuestring, "job") != 0) {
					rc = bd_json_fail(cause, BD_EINVALID,
					    NULL, NULL, "%s[%zu]: unknown "
					    "value (expected one of: job)",
					    apath, i);
					goto fail;
				}
				spec->authentication_token_job = true;
			}
		}
	}
	rc = 0;

fail:
	free(opath);
	free(apath);
	return rc;
}

/* Fields that only a job release or start task has at its top level. */
static int
task_parse_kind_fields(const cJSON *obj, const char *path,
    struct bd_task_spec *spec, char **cause)
{
	struct bd_task_constraints *c = &spec->constraints;
	int64_t n;
	int rc = 0;

	switch (spec->kind) {
	case BD_TASK_KIND_JOB_MANAGER:
		TRY(bd_json_get_bool(obj, path, "killJobOnCompletion", 0,
		    &spec->kill_job_on_completion, cause));
		TRY(bd_json_get_bool(obj, path, "runExclusive", 0,
		    &spec->run_exclusive, cause));
		TRY(bd_json_get_bool(obj, path, "allowLowPriorityNode", 0,
		    &spec->allow_low_priority_node, cause));
		break;
	case BD_TASK_KIND_JOB_PREPARATION:
		TRY(bd_json_get_bool(obj, path, "waitForSuccess", 0,
		    &spec->wait_for_success, cause));
		TRY(bd_json_get_bool(obj, path,
		    "rerunOnNodeRebootAfterSuccess", 0,
		    &spec->rerun_on_node_reboot_after_success, cause));
		break;
	case BD_TASK_KIND_JOB_RELEASE:
		/* No retries, and at most 15 minutes. */
		c->max_wall_clock_ms = TASK_RELEASE_WALL_CLOCK_MS;
		c->has_max_task_retry_count = true;
		TRY(bd_json_get_duration(obj, path, "maxWallClockTime", 0,
		    &c->max_wall_clock_ms, cause));
		if (c->max_wall_clock_ms > TASK_RELEASE_WALL_CLOCK_MS) {
			rc = bd_json_fail(cause, BD_EINVALID, path,
			    "maxWallClockTime", "must be at most 15 minutes "
			    "(PT15M) for a job release task");
			goto fail;
		}
		TRY(bd_json_get_duration(obj, path, "retentionTime", 0,
		    &c->retention_ms, cause));
		spec->has_constraints = true;
		break;
	case BD_TASK_KIND_START:
		c->has_max_task_retry_count = true;
		TRY(bd_json_get_int(obj, path, "maxTaskRetryCount", 0, -1,
		    TASK_INT32_MAX, &n, cause));
		if (rc == 1)
			c->max_task_retry_count = (int)n;
		TRY(bd_json_get_bool(obj, path, "waitForSuccess", 0,
		    &spec->wait_for_success, cause));
		break;
	case BD_TASK_KIND_TASK:
		break;
	}
	rc = 0;

fail:
	return rc;
}

/* Checks obj's top-level field names against what the kind allows. */
static int
task_check_top_fields(const cJSON *obj, const char *path,
    enum bd_task_kind kind, char **cause)
{
	const char *allowed[TASK_NFIELDS + 1], *all[TASK_NFIELDS + 1];
	char why[64];
	size_t i, n = 0;

	for (i = 0; i < TASK_NFIELDS; i++) {
		all[i] = task_fields[i].name;
		if (task_fields[i].kinds & (1u << kind))
			allowed[n++] = task_fields[i].name;
	}
	all[TASK_NFIELDS] = NULL;
	allowed[n] = NULL;
	snprintf(why, sizeof why, "not a field of a %s",
	    bd_task_kind_name(kind));
	return bd_json_check_fields(obj, path, allowed,
	    kind == BD_TASK_KIND_TASK ? task_read_only : NULL, all, why,
	    cause);
}

/* A spec of the given kind with every default filled in. */
static struct bd_task_spec *
task_spec_new(enum bd_task_kind kind)
{
	struct bd_task_spec *spec = xcalloc(1, sizeof *spec);

	spec->kind = kind;
	spec->constraints.max_wall_clock_ms = BD_DURATION_INFINITE;
	spec->constraints.retention_ms = BD_TASK_RETENTION_DEFAULT_MS;
	spec->constraints.max_task_retry_count = 0;
	spec->constraints.has_max_task_retry_count = false;
	spec->user_identity.scope = BD_AUTO_USER_SCOPE_POOL;
	spec->user_identity.elevation = BD_ELEVATION_NONADMIN;
	spec->required_slots = 1;
	spec->wait_for_success = true;
	spec->rerun_on_node_reboot_after_success = true;
	spec->kill_job_on_completion = true;
	spec->run_exclusive = true;
	spec->allow_low_priority_node = true;
	return spec;
}

int
bd_task_spec_from_json(const cJSON *obj, enum bd_task_kind kind,
    const char *path, struct bd_task_spec **out, char **cause)
{
	struct bd_task_spec *spec;
	int64_t n;
	int rc;

	*out = NULL;
	if ((unsigned)kind > BD_TASK_KIND_START)
		return bd_json_fail(cause, -EINVAL, path, NULL,
		    "unknown kind of task");
	if (path == NULL)
		path = "";
	spec = task_spec_new(kind);
	TRY(task_check_top_fields(obj, path, kind, cause));

	switch (kind) {
	case BD_TASK_KIND_TASK:
	case BD_TASK_KIND_JOB_MANAGER:
		TRY(bd_json_get_id(obj, path, "id", BD_JSON_REQUIRED,
		    &spec->id, cause));
		break;
	case BD_TASK_KIND_JOB_PREPARATION:
	case BD_TASK_KIND_JOB_RELEASE:
		TRY(bd_json_get_id(obj, path, "id", 0, &spec->id, cause));
		if (rc == 0)
			spec->id = xstrdup(kind == BD_TASK_KIND_JOB_RELEASE ?
			    "jobrelease" : "jobpreparation");
		break;
	case BD_TASK_KIND_START:
		spec->id = xstrdup("");
		break;
	}
	TRY(bd_json_get_string(obj, path, "displayName", 0,
	    TASK_DISPLAY_NAME_MAX, &spec->display_name, cause));
	TRY(bd_json_get_string(obj, path, "commandLine",
	    BD_JSON_REQUIRED | BD_JSON_NONEMPTY, TASK_COMMAND_LINE_MAX,
	    &spec->command_line, cause));

	TRY(task_parse_resource_files(obj, path, "resourceFiles",
	    &spec->resource_files, &spec->n_resource_files, cause));
	TRY(task_parse_output_files(obj, path, spec, cause));
	TRY(bd_name_value_list_from_json(obj, path, "environmentSettings",
	    BD_NAME_VALUE_ENVIRONMENT, &spec->environment_settings, cause));
	TRY(task_parse_constraints(obj, path, spec, cause));
	TRY(task_parse_user_identity(obj, path, &spec->user_identity, cause));
	TRY(task_parse_exit_conditions(obj, path, spec, cause));
	TRY(task_parse_depends_on(obj, path, spec, cause));
	TRY(task_parse_app_packages(obj, path, spec, cause));
	TRY(task_parse_container_settings(obj, path, spec, cause));
	TRY(task_parse_multi_instance(obj, path, spec, cause));
	TRY(task_parse_small_objects(obj, path, spec, cause));
	TRY(bd_json_get_int(obj, path, "requiredSlots", 0, 1, TASK_SLOTS_MAX,
	    &n, cause));
	if (rc == 1)
		spec->required_slots = (int)n;
	if (spec->multi_instance != NULL && spec->required_slots != 1) {
		rc = bd_json_fail(cause, BD_EINVALID, path, "requiredSlots",
		    "must be 1 for a multi-instance task");
		goto fail;
	}
	TRY(task_parse_kind_fields(obj, path, spec, cause));
	*out = spec;
	return 0;

fail:
	bd_task_spec_free(spec);
	return rc;
}

int
bd_task_spec_parse(const char *json, size_t len, enum bd_task_kind kind,
    struct bd_task_spec **out, char **cause)
{
	cJSON *root;
	int rc;

	*out = NULL;
	if ((rc = bd_json_parse(json, len, &root, cause)) != 0)
		return rc;
	rc = bd_task_spec_from_json(root, kind, NULL, out, cause);
	cJSON_Delete(root);
	return rc;
}

void
bd_task_spec_free(struct bd_task_spec *spec)
{
	struct bd_exit_conditions *ec;
	size_t i;

	if (spec == NULL)
		return;
	free(spec->id);
	free(spec->display_name);
	free(spec->command_line);
	task_resource_files_free(spec->resource_files, spec->n_resource_files);
	task_output_files_free(spec->output_files, spec->n_output_files);
	bd_name_value_list_clear(&spec->environment_settings);
	free(spec->user_identity.username);
	ec = &spec->exit_conditions;
	free(ec->exit_codes);
	free(ec->exit_code_ranges);
	for (i = 0; i < spec->depends_on.n_task_ids; i++)
		free(spec->depends_on.task_ids[i]);
	free(spec->depends_on.task_ids);
	free(spec->depends_on.task_id_ranges);
	for (i = 0; i < spec->n_application_packages; i++) {
		free(spec->application_packages[i].application_id);
		free(spec->application_packages[i].version);
	}
	free(spec->application_packages);
	task_container_settings_free(spec->container_settings);
	if (spec->multi_instance != NULL) {
		free(spec->multi_instance->coordination_command_line);
		task_resource_files_free(
		    spec->multi_instance->common_resource_files,
		    spec->multi_instance->n_common_resource_files);
		free(spec->multi_instance);
	}
	free(spec->affinity_id);
	free(spec);
}
