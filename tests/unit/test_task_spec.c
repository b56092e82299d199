/* SPDX-License-Identifier: MIT */
/*
 * Tests for task_spec.c and json_field.c: every validation rule with a
 * good value and the exact reason for a bad one.  JSON in these tests is
 * written with single quotes, which the helpers turn into double quotes.
 */
#include <cjson/cJSON.h>
#include <errno.h>

#include "error.h"
#include "json_field.h"
#include "task_spec.h"
#include "unit.h"
#include "xmalloc.h"

/* s with every ' turned into ", so that tests read better.  Caller frees. */
static char *
dq(const char *s)
{
	char *out = xstrdup(s), *p;

	for (p = out; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return out;
}

/* Parses json (single-quoted) as kind; fails the test on an error. */
static struct bd_task_spec *
parse_kind_ok(const char *json, enum bd_task_kind kind)
{
	struct bd_task_spec *spec = NULL;
	char *text = dq(json), *cause = NULL;
	int rc;

	rc = bd_task_spec_parse(text, strlen(text), kind, &spec, &cause);
	if (rc != 0)
		UNIT_FAIL("%s: rc %d: %s", text, rc, cause ? cause : "(none)");
	ASSERT_NULL(cause);
	ASSERT_NOT_NULL(spec);
	free(text);
	return spec;
}

#define parse_ok(json) parse_kind_ok((json), BD_TASK_KIND_TASK)

/* Checks that raw bytes are refused with rc and a cause equal to want. */
static void
raw_bad_kind(const char *text, size_t len, enum bd_task_kind kind, int want_rc,
    const char *want)
{
	struct bd_task_spec *spec = (struct bd_task_spec *)1;
	char *cause = NULL;
	int rc;

	rc = bd_task_spec_parse(text, len, kind, &spec, &cause);
	ASSERT_NULL(spec);
	if (cause == NULL)
		UNIT_FAIL("rc %d without a cause; wanted \"%s\"", rc, want);
	if (strcmp(cause, want) != 0)
		UNIT_FAIL("cause \"%s\" != \"%s\"", cause, want);
	ASSERT_INT_EQ(rc, want_rc);
	free(cause);

	/* The same without a cause to fill in. */
	spec = (struct bd_task_spec *)1;
	ASSERT_INT_EQ(bd_task_spec_parse(text, len, kind, &spec, NULL),
	    want_rc);
	ASSERT_NULL(spec);
}

static void
bad_kind(const char *json, enum bd_task_kind kind, const char *want)
{
	char *text = dq(json);

	raw_bad_kind(text, strlen(text), kind, BD_EINVALID, want);
	free(text);
}

#define bad(json, want) bad_kind((json), BD_TASK_KIND_TASK, (want))

/* A task document with extra top-level fields after id and commandLine. */
#define T(extra) "{'id':'t','commandLine':'c'," extra "}"

TEST(minimal_defaults)
{
	struct bd_task_spec *s = parse_ok("{'id':'t1','commandLine':'/bin/true'}");

	ASSERT_INT_EQ(s->kind, BD_TASK_KIND_TASK);
	ASSERT_STR_EQ(s->id, "t1");
	ASSERT_STR_EQ(s->command_line, "/bin/true");
	ASSERT_NULL(s->display_name);
	ASSERT_INT_EQ(s->n_resource_files, 0);
	ASSERT_NULL(s->resource_files);
	ASSERT_INT_EQ(s->n_output_files, 0);
	ASSERT_INT_EQ(s->environment_settings.count, 0);
	ASSERT(!s->has_constraints);
	ASSERT_INT_EQ(s->constraints.max_wall_clock_ms, BD_DURATION_INFINITE);
	ASSERT_INT_EQ(s->constraints.retention_ms, 7LL * 86400 * 1000);
	ASSERT(!s->constraints.has_max_task_retry_count);
	ASSERT_NULL(s->user_identity.username);
	ASSERT_INT_EQ(s->user_identity.scope, BD_AUTO_USER_SCOPE_POOL);
	ASSERT_INT_EQ(s->user_identity.elevation, BD_ELEVATION_NONADMIN);
	ASSERT(!s->user_identity.has_auto_user);
	ASSERT(!s->has_exit_conditions);
	ASSERT(!s->has_depends_on);
	ASSERT_INT_EQ(s->n_application_packages, 0);
	ASSERT_NULL(s->container_settings);
	ASSERT_NULL(s->multi_instance);
	ASSERT_NULL(s->affinity_id);
	ASSERT_INT_EQ(s->required_slots, 1);
	ASSERT(!s->authentication_token_job);
	ASSERT(s->wait_for_success);
	ASSERT(s->rerun_on_node_reboot_after_success);
	ASSERT(s->kill_job_on_completion);
	ASSERT(s->run_exclusive);
	ASSERT(s->allow_low_priority_node);
	bd_task_spec_free(s);
	bd_task_spec_free(NULL);
}

TEST(full_task)
{
	struct bd_task_spec *s = parse_ok("{"
	    "'id':'full-task_1','displayName':'Full \\u00e9 task',"
	    "'commandLine':'/bin/sh -c \\'echo hi\\'',"
	    "'resourceFiles':["
	    "  {'httpUrl':'https://a.blob/c/f?sv=1','filePath':'in/f.txt',"
	    "   'fileMode':'0755','identityReference':{'resourceId':'/sub/x'}},"
	    "  {'storageContainerUrl':'HTTPS://a.blob/c','blobPrefix':'p/',"
	    "   'filePath':'data'},"
	    "  {'autoStorageContainerName':'my-container'}],"
	    "'outputFiles':[{'filePattern':'../std*.txt',"
	    "  'destination':{'container':{'containerUrl':'https://a/c?sas',"
	    "   'path':'logs','identityReference':{'resourceId':'/id'},"
	    "   'uploadHeaders':[{'name':'Content-Type','value':'text/plain'},"
	    "    {'name':'x-ms-meta-a'}]}},"
	    "  'uploadOptions':{'uploadCondition':'TaskFailure'}}],"
	    "'environmentSettings':[{'name':'A','value':'1'},{'name':'B'},"
	    "  {'name':'A','value':'2'}],"
	    "'affinityInfo':{'affinityId':'node-1'},"
	    "'constraints':{'maxWallClockTime':'PT1H','retentionTime':'P1D',"
	    "  'maxTaskRetryCount':3},"
	    "'requiredSlots':2,"
	    "'userIdentity':{'autoUser':{'scope':'Task',"
	    "  'elevationLevel':'Admin'}},"
	    "'exitConditions':{'exitCodes':[{'code':3,'exitOptions':"
	    "  {'jobAction':'Terminate','dependencyAction':'Block'}}],"
	    "  'exitCodeRanges':[{'start':-5,'end':-1,'exitOptions':"
	    "  {'jobAction':'disable'}}],"
	    "  'preProcessingError':{'jobAction':'none'},"
	    "  'fileUploadError':{'dependencyAction':'satisfy'},"
	    "  'default':{'jobAction':'terminate'}},"
	    "'dependsOn':{'taskIds':['a','b-2'],'taskIdRanges':"
	    "  [{'start':1,'end':10},{'start':0,'end':0}]},"
	    "'applicationPackageReferences':[{'applicationId':'blender',"
	    "  'version':'2.80-daily'},{'applicationId':'my_app'}],"
	    "'containerSettings':{'imageName':'ubuntu:22.04',"
	    "  'containerRunOptions':'--rm','workingDirectory':"
	    "  'containerImageDefault','registry':{'registryServer':'r.io',"
	    "  'username':'u','password':'p'},"
	    "  'containerHostBatchBindMounts':[{'source':'shared',"
	    "  'isReadOnly':true}]},"
	    "'authenticationTokenSettings':{'access':['job']}"
	    "}");
	struct bd_resource_file *rf = s->resource_files;
	struct bd_output_file *of = s->output_files;
	struct bd_exit_conditions *ec = &s->exit_conditions;

	ASSERT_STR_EQ(s->id, "full-task_1");
	ASSERT_STR_EQ(s->display_name, "Full \xc3\xa9 task");
	ASSERT_STR_EQ(s->command_line, "/bin/sh -c \"echo hi\"");

	ASSERT_INT_EQ(s->n_resource_files, 3);
	ASSERT_INT_EQ(rf[0].source, BD_RESOURCE_HTTP_URL);
	ASSERT_STR_EQ(rf[0].url, "https://a.blob/c/f?sv=1");
	ASSERT_STR_EQ(rf[0].file_path, "in/f.txt");
	ASSERT_INT_EQ(rf[0].file_mode, 0755);
	ASSERT_STR_EQ(rf[0].identity_reference, "/sub/x");
	ASSERT_NULL(rf[0].blob_prefix);
	ASSERT_INT_EQ(rf[1].source, BD_RESOURCE_STORAGE_CONTAINER_URL);
	ASSERT_STR_EQ(rf[1].blob_prefix, "p/");
	ASSERT_STR_EQ(rf[1].file_path, "data");
	ASSERT_INT_EQ(rf[1].file_mode, 0770);
	ASSERT_INT_EQ(rf[2].source, BD_RESOURCE_AUTO_STORAGE_CONTAINER);
	ASSERT_STR_EQ(rf[2].url, "my-container");
	ASSERT_NULL(rf[2].file_path);
	ASSERT_NULL(rf[2].identity_reference);

	ASSERT_INT_EQ(s->n_output_files, 1);
	ASSERT_STR_EQ(of->file_pattern, "../std*.txt");
	ASSERT_STR_EQ(of->container_url, "https://a/c?sas");
	ASSERT_STR_EQ(of->path, "logs");
	ASSERT_STR_EQ(of->identity_reference, "/id");
	ASSERT_INT_EQ(of->upload_headers.count, 2);
	ASSERT_STR_EQ(of->upload_headers.items[0].name, "Content-Type");
	ASSERT_STR_EQ(of->upload_headers.items[0].value, "text/plain");
	ASSERT_STR_EQ(of->upload_headers.items[1].value, "");
	ASSERT_INT_EQ(of->upload_condition, BD_UPLOAD_TASK_FAILURE);

	/* A repeated name keeps its place and takes the later value. */
	ASSERT_INT_EQ(s->environment_settings.count, 2);
	ASSERT_STR_EQ(s->environment_settings.items[0].name, "A");
	ASSERT_STR_EQ(s->environment_settings.items[0].value, "2");
	ASSERT_STR_EQ(s->environment_settings.items[1].value, "");
	ASSERT_STR_EQ(bd_name_value_list_get(&s->environment_settings, "A"),
	    "2");
	ASSERT_NULL(bd_name_value_list_get(&s->environment_settings, "a"));

	ASSERT_STR_EQ(s->affinity_id, "node-1");
	ASSERT(s->has_constraints);
	ASSERT_INT_EQ(s->constraints.max_wall_clock_ms, 3600000);
	ASSERT_INT_EQ(s->constraints.retention_ms, 86400000);
	ASSERT(s->constraints.has_max_task_retry_count);
	ASSERT_INT_EQ(s->constraints.max_task_retry_count, 3);
	ASSERT_INT_EQ(s->required_slots, 2);
	ASSERT(s->user_identity.has_auto_user);
	ASSERT_INT_EQ(s->user_identity.scope, BD_AUTO_USER_SCOPE_TASK);
	ASSERT_INT_EQ(s->user_identity.elevation, BD_ELEVATION_ADMIN);

	ASSERT(s->has_exit_conditions);
	ASSERT_INT_EQ(ec->n_exit_codes, 1);
	ASSERT_INT_EQ(ec->exit_codes[0].code, 3);
	ASSERT(ec->exit_codes[0].options.has_job_action);
	ASSERT_INT_EQ(ec->exit_codes[0].options.job_action,
	    BD_JOB_ACTION_TERMINATE);
	ASSERT(ec->exit_codes[0].options.has_dependency_action);
	ASSERT_INT_EQ(ec->exit_codes[0].options.dependency_action,
	    BD_DEPENDENCY_ACTION_BLOCK);
	ASSERT_INT_EQ(ec->n_exit_code_ranges, 1);
	ASSERT_INT_EQ(ec->exit_code_ranges[0].start, -5);
	ASSERT_INT_EQ(ec->exit_code_ranges[0].end, -1);
	ASSERT_INT_EQ(ec->exit_code_ranges[0].options.job_action,
	    BD_JOB_ACTION_DISABLE);
	ASSERT(!ec->exit_code_ranges[0].options.has_dependency_action);
	ASSERT(ec->has_pre_processing_error);
	ASSERT_INT_EQ(ec->pre_processing_error.job_action, BD_JOB_ACTION_NONE);
	ASSERT(ec->has_file_upload_error);
	ASSERT(!ec->file_upload_error.has_job_action);
	ASSERT_INT_EQ(ec->file_upload_error.dependency_action,
	    BD_DEPENDENCY_ACTION_SATISFY);
	ASSERT(ec->has_default);
	ASSERT_INT_EQ(ec->default_options.job_action, BD_JOB_ACTION_TERMINATE);

	ASSERT(s->has_depends_on);
	ASSERT_INT_EQ(s->depends_on.n_task_ids, 2);
	ASSERT_STR_EQ(s->depends_on.task_ids[1], "b-2");
	ASSERT_INT_EQ(s->depends_on.n_task_id_ranges, 2);
	ASSERT_INT_EQ(s->depends_on.task_id_ranges[0].start, 1);
	ASSERT_INT_EQ(s->depends_on.task_id_ranges[0].end, 10);

	ASSERT_INT_EQ(s->n_application_packages, 2);
	ASSERT_STR_EQ(s->application_packages[0].application_id, "blender");
	ASSERT_STR_EQ(s->application_packages[0].version, "2.80-daily");
	ASSERT_NULL(s->application_packages[1].version);

	ASSERT_NOT_NULL(s->container_settings);
	ASSERT_STR_EQ(s->container_settings->image_name, "ubuntu:22.04");
	ASSERT_STR_EQ(s->container_settings->container_run_options, "--rm");
	ASSERT_STR_EQ(s->container_settings->registry_server, "r.io");
	ASSERT_STR_EQ(s->container_settings->registry_username, "u");
	ASSERT_STR_EQ(s->container_settings->registry_password, "p");
	ASSERT_INT_EQ(s->container_settings->working_directory,
	    BD_CONTAINER_WD_IMAGE_DEFAULT);
	ASSERT(s->authentication_token_job);
	bd_task_spec_free(s);
}

/* A CloudTask as the service or `az batch task show` prints it. */
TEST(read_back_dump)
{
	struct bd_task_spec *s = parse_ok("{"
	    "'odata.metadata':'https://acct/$metadata#tasks/@Element',"
	    "'id':'t','url':'https://acct/jobs/j/tasks/t','eTag':'0x1',"
	    "'lastModified':'2024-01-01T00:00:00Z',"
	    "'creationTime':'2024-01-01T00:00:00Z','state':'completed',"
	    "'stateTransitionTime':'x','previousState':'running',"
	    "'previousStateTransitionTime':'x',"
	    "'commandLine':'c','displayName':null,'resourceFiles':null,"
	    "'additionalProperties':{},"
	    "'executionInfo':{'exitCode':0,'retryCount':0},"
	    "'nodeInfo':{'nodeId':'n'},'stats':null,"
	    "'userIdentity':{'userName':null,'autoUser':{'scope':'pool',"
	    "  'elevationLevel':'nonadmin','additionalProperties':{}}},"
	    "'constraints':{'maxWallClockTime':'10675199 days, 2:48:05.477581',"
	    "  'retentionTime':'7 days, 0:00:00','maxTaskRetryCount':0},"
	    "'exitConditions':{'default':{'jobAction':'none',"
	    "  'dependencyAction':null},'exitCodes':null},"
	    "'requiredSlots':1,'multiInstanceSettings':null"
	    "}");

	ASSERT_STR_EQ(s->id, "t");
	ASSERT_INT_EQ(s->constraints.max_wall_clock_ms, BD_DURATION_INFINITE);
	ASSERT_INT_EQ(s->constraints.retention_ms, 7LL * 86400000);
	ASSERT(s->user_identity.has_auto_user);
	ASSERT(s->has_exit_conditions);
	ASSERT(!s->exit_conditions.default_options.has_dependency_action);
	bd_task_spec_free(s);

	/* Read-only fields are only for tasks, and only these names. */
	bad("{'id':'t','commandLine':'c','additionalProperties':{'a':1}}",
	    "additionalProperties: unknown field");
	bad_kind("{'commandLine':'c','url':'x'}", BD_TASK_KIND_START,
	    "url: unknown field");
}

TEST(ids)
{
	struct bd_task_spec *s;
	char json[256];

	bad("{'commandLine':'c'}", "id: required");
	bad("{'id':null,'commandLine':'c'}", "id: required");
	bad("{'id':'','commandLine':'c'}", "id: must not be empty");
	bad("{'id':7,'commandLine':'c'}", "id: expected a string, not a number");
	bad("{'id':'a b','commandLine':'c'}",
	    "id: may contain only letters, digits, '-' and '_'");
	bad("{'id':'a.b','commandLine':'c'}",
	    "id: may contain only letters, digits, '-' and '_'");
	bad("{'id':'../x','commandLine':'c'}",
	    "id: may contain only letters, digits, '-' and '_'");
	bad("{'id':'\\u00e9','commandLine':'c'}",
	    "id: may contain only letters, digits, '-' and '_'");
	snprintf(json, sizeof json, "{'id':'%.*s','commandLine':'c'}", 65,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	bad(json, "id: longer than 64 characters");
	snprintf(json, sizeof json, "{'id':'%.*s','commandLine':'c'}", 64,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	s = parse_ok(json);
	ASSERT_INT_EQ(strlen(s->id), 64);
	bd_task_spec_free(s);
	s = parse_ok("{'id':'A-z_09','commandLine':'c'}");
	bd_task_spec_free(s);
}

TEST(command_line_and_display_name)
{
	struct bd_task_spec *s;
	char *json;

	bad("{'id':'t'}", "commandLine: required");
	bad("{'id':'t','commandLine':''}", "commandLine: must not be empty");
	bad("{'id':'t','commandLine':['a']}",
	    "commandLine: expected a string, not an array");
	bad("{'id':'t','commandLine':'c','displayName':false}",
	    "displayName: expected a string, not a boolean");

	json = xasprintf("{\"id\":\"t\",\"commandLine\":\"%0*d\"}", 32768, 0);
	s = parse_ok(json);
	ASSERT_INT_EQ(strlen(s->command_line), 32768);
	bd_task_spec_free(s);
	free(json);
	json = xasprintf("{\"id\":\"t\",\"commandLine\":\"%0*d\"}", 32769, 0);
	bad(json, "commandLine: longer than 32768 bytes");
	free(json);
	json = xasprintf("{\"id\":\"t\",\"commandLine\":\"c\","
	    "\"displayName\":\"%0*d\"}", 1025, 0);
	bad(json, "displayName: longer than 1024 bytes");
	free(json);
}

TEST(unknown_fields)
{
	bad("{'id':'t','comandLine':'c'}",
	    "comandLine: unknown field (did you mean commandLine?)");
	bad("{'id':'t','commandLine':'c','CommandLine':'d'}",
	    "CommandLine: unknown field (did you mean commandLine?)");
	bad(T("'frobnicate':1"), "frobnicate: unknown field");
	bad(T("'a b\\n':1"), "\"a b\\x0a\": unknown field");
	bad(T("'commandLine':'d'"), "commandLine: duplicate field");
	bad(T("'resourceFiles':[{'httpUrl':'http://x','filePath':'f',"
	    "'filepath':'g'}]"),
	    "resourceFiles[0].filepath: unknown field "
	    "(did you mean filePath?)");
	bad(T("'constraints':{'maxWallclockTime':'PT1H'}"),
	    "constraints.maxWallclockTime: unknown field "
	    "(did you mean maxWallClockTime?)");
	bad(T("'killJobOnCompletion':true"),
	    "killJobOnCompletion: unknown field (not a field of a task)");
	bad(T("'waitForSuccess':true"),
	    "waitForSuccess: unknown field (not a field of a task)");
}

TEST(environment_settings)
{
	struct bd_task_spec *s;
	char *json;

	bad(T("'environmentSettings':{}"),
	    "environmentSettings: expected an array, not an object");
	bad(T("'environmentSettings':['A=1']"),
	    "environmentSettings[0]: expected an object, not a string");
	bad(T("'environmentSettings':[{'value':'1'}]"),
	    "environmentSettings[0].name: required");
	bad(T("'environmentSettings':[{'name':'A'},{'name':''}]"),
	    "environmentSettings[1].name: must not be empty");
	bad(T("'environmentSettings':[{'name':'A=B','value':'1'}]"),
	    "environmentSettings[0].name: must not contain '='");
	bad(T("'environmentSettings':[{'name':'A','value':1}]"),
	    "environmentSettings[0].value: expected a string, not a number");
	bad(T("'environmentSettings':[{'name':'A','valu':'1'}]"),
	    "environmentSettings[0].valu: unknown field "
	    "(did you mean value?)");
	json = xasprintf("{\"id\":\"t\",\"commandLine\":\"c\","
	    "\"environmentSettings\":[{\"name\":\"%0*d\"}]}", 1025, 0);
	bad(json, "environmentSettings[0].name: longer than 1024 bytes");
	free(json);
	json = xasprintf("{\"id\":\"t\",\"commandLine\":\"c\","
	    "\"environmentSettings\":[{\"name\":\"A\",\"value\":\"%0*d\"}]}",
	    32769, 0);
	bad(json, "environmentSettings[0].value: longer than 32768 bytes");
	free(json);

	s = parse_ok(T("'environmentSettings':[]"));
	ASSERT_INT_EQ(s->environment_settings.count, 0);
	bd_task_spec_free(s);
	s = parse_ok(T("'environmentSettings':[{'name':'A','value':null}]"));
	ASSERT_STR_EQ(s->environment_settings.items[0].value, "");
	bd_task_spec_free(s);
}

TEST(resource_file_sources)
{
	bad(T("'resourceFiles':[{'filePath':'f'}]"),
	    "resourceFiles[0]: exactly one of httpUrl, storageContainerUrl, "
	    "autoStorageContainerName is required");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'f'},"
	    "{'httpUrl':'http://a','storageContainerUrl':'http://b'}]"),
	    "resourceFiles[1]: exactly one of httpUrl, storageContainerUrl, "
	    "autoStorageContainerName is required");
	bad(T("'resourceFiles':[{'storageContainerUrl':'http://b',"
	    "'autoStorageContainerName':'abc'}]"),
	    "resourceFiles[0]: exactly one of httpUrl, storageContainerUrl, "
	    "autoStorageContainerName is required");
	bad(T("'resourceFiles':[{'httpUrl':'','filePath':'f'}]"),
	    "resourceFiles[0].httpUrl: must not be empty");
	bad(T("'resourceFiles':[{'httpUrl':'ftp://a/b','filePath':'f'}]"),
	    "resourceFiles[0].httpUrl: must be an http, https or file URL");
	bad(T("'resourceFiles':[{'httpUrl':'http:','filePath':'f'}]"),
	    "resourceFiles[0].httpUrl: must be an http, https or file URL");
	bad(T("'resourceFiles':[{'httpUrl':'/etc/passwd','filePath':'f'}]"),
	    "resourceFiles[0].httpUrl: must be an http, https or file URL");
	bad(T("'resourceFiles':[{'httpUrl':'http://a/b c','filePath':'f'}]"),
	    "resourceFiles[0].httpUrl: must not contain spaces or control "
	    "characters");
	bad(T("'resourceFiles':[{'storageContainerUrl':'gopher://x'}]"),
	    "resourceFiles[0].storageContainerUrl: must be an http, https or "
	    "file URL");
	bad(T("'resourceFiles':[{'autoStorageContainerName':'Big'}]"),
	    "resourceFiles[0].autoStorageContainerName: must be a storage "
	    "container name: 3 to 63 lower-case letters, digits and '-'");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','blobPrefix':'x',"
	    "'filePath':'f'}]"),
	    "resourceFiles[0].blobPrefix: only allowed with "
	    "storageContainerUrl or autoStorageContainerName");
	bad(T("'resourceFiles':[{'httpUrl':'http://a'}]"),
	    "resourceFiles[0].filePath: required with httpUrl");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'f',"
	    "'identityReference':{'resourceId':7}}]"),
	    "resourceFiles[0].identityReference.resourceId: expected a "
	    "string, not a number");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'f',"
	    "'identityReference':'x'}]"),
	    "resourceFiles[0].identityReference: expected an object, not a "
	    "string");
	bad(T("'resourceFiles':{'httpUrl':'http://a'}"),
	    "resourceFiles: expected an array, not an object");
	bad(T("'resourceFiles':[null]"),
	    "resourceFiles[0]: expected an object, not null");
}

TEST(resource_file_paths)
{
	struct bd_task_spec *s;
	char *json;

	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'/etc/x'}]"),
	    "resourceFiles[0].filePath: must be relative to the working "
	    "directory");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'../x'}]"),
	    "resourceFiles[0].filePath: must stay inside the working "
	    "directory");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'a/../../x'}]"),
	    "resourceFiles[0].filePath: must stay inside the working "
	    "directory");
	bad(T("'resourceFiles':[{'storageContainerUrl':'http://a',"
	    "'filePath':'..'}]"),
	    "resourceFiles[0].filePath: must stay inside the working "
	    "directory");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'a/..'}]"),
	    "resourceFiles[0].filePath: must name a file inside the working "
	    "directory");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'dir/'}]"),
	    "resourceFiles[0].filePath: must name a file inside the working "
	    "directory");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':''}]"),
	    "resourceFiles[0].filePath: must not be empty");
	json = xasprintf("{\"id\":\"t\",\"commandLine\":\"c\",\"resourceFiles\":"
	    "[{\"httpUrl\":\"http://a\",\"filePath\":\"d/%0*d\"}]}", 256, 0);
	bad(json, "resourceFiles[0].filePath: a path component is longer "
	    "than 255 bytes");
	free(json);

	s = parse_ok(T("'resourceFiles':["
	    "{'httpUrl':'http://a','filePath':'./a//b/./c'},"
	    "{'httpUrl':'file:///x','filePath':'a/b/../c'},"
	    "{'storageContainerUrl':'http://a','filePath':'x/..'},"
	    "{'storageContainerUrl':'http://a','filePath':'./'},"
	    "{'storageContainerUrl':'http://a','filePath':'d/'},"
	    "{'httpUrl':'http://a','filePath':'..x/...'}]"));
	ASSERT_STR_EQ(s->resource_files[0].file_path, "a/b/c");
	ASSERT_STR_EQ(s->resource_files[1].file_path, "a/c");
	ASSERT_NULL(s->resource_files[2].file_path);
	ASSERT_NULL(s->resource_files[3].file_path);
	ASSERT_STR_EQ(s->resource_files[4].file_path, "d");
	ASSERT_STR_EQ(s->resource_files[5].file_path, "..x/...");
	bd_task_spec_free(s);
}

TEST(resource_file_mode)
{
	struct bd_task_spec *s;

	s = parse_ok(T("'resourceFiles':["
	    "{'httpUrl':'http://a','filePath':'a','fileMode':'755'},"
	    "{'httpUrl':'http://a','filePath':'b','fileMode':'0600'},"
	    "{'httpUrl':'http://a','filePath':'c','fileMode':'7'},"
	    "{'httpUrl':'http://a','filePath':'d'}]"));
	ASSERT_INT_EQ(s->resource_files[0].file_mode, 0755);
	ASSERT_INT_EQ(s->resource_files[1].file_mode, 0600);
	ASSERT_INT_EQ(s->resource_files[2].file_mode, 07);
	ASSERT_INT_EQ(s->resource_files[3].file_mode, 0770);
	bd_task_spec_free(s);

	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'a',"
	    "'fileMode':'rwx'}]"),
	    "resourceFiles[0].fileMode: must be an octal mode of 1 to 4 "
	    "digits such as \"0755\"");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'a',"
	    "'fileMode':'0758'}]"),
	    "resourceFiles[0].fileMode: must be an octal mode of 1 to 4 "
	    "digits such as \"0755\"");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'a',"
	    "'fileMode':'00755'}]"),
	    "resourceFiles[0].fileMode: must be an octal mode of 1 to 4 "
	    "digits such as \"0755\"");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'a',"
	    "'fileMode':''}]"),
	    "resourceFiles[0].fileMode: must be an octal mode of 1 to 4 "
	    "digits such as \"0755\"");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'a',"
	    "'fileMode':'4755'}]"),
	    "resourceFiles[0].fileMode: set-user-ID, set-group-ID and sticky "
	    "bits are not allowed");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'a',"
	    "'fileMode':'1777'}]"),
	    "resourceFiles[0].fileMode: set-user-ID, set-group-ID and sticky "
	    "bits are not allowed");
	bad(T("'resourceFiles':[{'httpUrl':'http://a','filePath':'a',"
	    "'fileMode':755}]"),
	    "resourceFiles[0].fileMode: expected a string, not a number");
}

TEST(output_files)
{
	struct bd_task_spec *s;

#define OF(x) T("'outputFiles':[" x "]")
#define DEST "'destination':{'container':{'containerUrl':'https://a/c'}}"
#define OPTS "'uploadOptions':{'uploadCondition':'taskSuccess'}"
	s = parse_ok(OF("{'filePattern':'*.txt'," DEST "," OPTS "}"));
	ASSERT_INT_EQ(s->output_files[0].upload_condition,
	    BD_UPLOAD_TASK_SUCCESS);
	ASSERT_NULL(s->output_files[0].path);
	ASSERT_INT_EQ(s->output_files[0].upload_headers.count, 0);
	bd_task_spec_free(s);

	bad(OF("{" DEST "," OPTS "}"), "outputFiles[0].filePattern: required");
	bad(OF("{'filePattern':'x'," OPTS "}"),
	    "outputFiles[0].destination: required");
	bad(OF("{'filePattern':'x','destination':{}," OPTS "}"),
	    "outputFiles[0].destination.container: required");
	bad(OF("{'filePattern':'x','destination':{'container':{}}," OPTS "}"),
	    "outputFiles[0].destination.container.containerUrl: required");
	bad(OF("{'filePattern':'x','destination':{'container':"
	    "{'containerUrl':'c:\\\\x'}}," OPTS "}"),
	    "outputFiles[0].destination.container.containerUrl: must be an "
	    "http, https or file URL");
	bad(OF("{'filePattern':'x'," DEST "}"),
	    "outputFiles[0].uploadOptions: required");
	bad(OF("{'filePattern':'x'," DEST ",'uploadOptions':{}}"),
	    "outputFiles[0].uploadOptions.uploadCondition: required");
	bad(OF("{'filePattern':'x'," DEST ",'uploadOptions':"
	    "{'uploadCondition':'always'}}"),
	    "outputFiles[0].uploadOptions.uploadCondition: unknown value "
	    "\"always\" (expected one of: taskSuccess, taskFailure, "
	    "taskCompletion)");
	bad(OF("{'filePattern':'x','destination':{'container':"
	    "{'containerUrl':'http://a','uploadHeaders':[{'value':'v'}]}},"
	    OPTS "}"),
	    "outputFiles[0].destination.container.uploadHeaders[0].name: "
	    "required");
	bad(OF("{'filePattern':'x','destination':{'container':"
	    "{'containerUrl':'http://a','uploadHeaders':[{'name':'a b'}]}},"
	    OPTS "}"),
	    "outputFiles[0].destination.container.uploadHeaders[0].name: "
	    "not a valid HTTP header name");
	bad(OF("{'filePattern':'x','destination':{'container':"
	    "{'containerUrl':'http://a','uploadHeaders':[{'name':'a',"
	    "'value':'v\\r\\nX: y'}]}}," OPTS "}"),
	    "outputFiles[0].destination.container.uploadHeaders[0].value: "
	    "must not contain line breaks");
	bad(OF("{'filePattern':'x','destination':{'container':"
	    "{'containerUrl':'http://a'},'blob':1}," OPTS "}"),
	    "outputFiles[0].destination.blob: unknown field");
#undef OF
#undef DEST
#undef OPTS
}

TEST(constraints)
{
	struct bd_task_spec *s;

	s = parse_ok(T("'constraints':{'maxTaskRetryCount':-1}"));
	ASSERT(s->has_constraints);
	ASSERT(s->constraints.has_max_task_retry_count);
	ASSERT_INT_EQ(s->constraints.max_task_retry_count, -1);
	ASSERT_INT_EQ(s->constraints.max_wall_clock_ms, BD_DURATION_INFINITE);
	bd_task_spec_free(s);
	s = parse_ok(T("'constraints':{'maxWallClockTime':'PT0.5S'}"));
	ASSERT(!s->constraints.has_max_task_retry_count);
	ASSERT_INT_EQ(s->constraints.max_wall_clock_ms, 500);
	bd_task_spec_free(s);
	s = parse_ok(T("'constraints':{'maxWallClockTime':"
	    "'P10675199DT2H48M5.4775807S'}"));
	ASSERT_INT_EQ(s->constraints.max_wall_clock_ms, BD_DURATION_INFINITE);
	bd_task_spec_free(s);

	bad(T("'constraints':{'maxTaskRetryCount':-2}"),
	    "constraints.maxTaskRetryCount: must be an integer between -1 and "
	    "2147483647");
	bad(T("'constraints':{'maxTaskRetryCount':1.5}"),
	    "constraints.maxTaskRetryCount: must be an integer between -1 and "
	    "2147483647");
	bad(T("'constraints':{'maxTaskRetryCount':1e300}"),
	    "constraints.maxTaskRetryCount: must be an integer between -1 and "
	    "2147483647");
	bad(T("'constraints':{'maxTaskRetryCount':'3'}"),
	    "constraints.maxTaskRetryCount: expected an integer, not a string");
	bad(T("'constraints':{'maxWallClockTime':'P1Y'}"),
	    "constraints.maxWallClockTime: invalid duration \"P1Y\": years "
	    "and months have no fixed length; use days (P30D) or weeks (P4W)");
	bad(T("'constraints':{'retentionTime':'1 hour'}"),
	    "constraints.retentionTime: invalid duration \"1 hour\": not an "
	    "ISO 8601 duration such as PT1H30M, P7D or PT0.5S");
	bad(T("'constraints':{'retentionTime':3600}"),
	    "constraints.retentionTime: expected a duration string such as "
	    "\"PT1H\", not a number");
	bad(T("'constraints':[]"),
	    "constraints: expected an object, not an array");
}

TEST(user_identity)
{
	struct bd_task_spec *s;

	s = parse_ok(T("'userIdentity':{'username':'alice'}"));
	ASSERT_STR_EQ(s->user_identity.username, "alice");
	ASSERT(!s->user_identity.has_auto_user);
	bd_task_spec_free(s);
	s = parse_ok(T("'userIdentity':{'userName':'bob','autoUser':null}"));
	ASSERT_STR_EQ(s->user_identity.username, "bob");
	bd_task_spec_free(s);
	s = parse_ok(T("'userIdentity':{'autoUser':{}}"));
	ASSERT(s->user_identity.has_auto_user);
	ASSERT_INT_EQ(s->user_identity.scope, BD_AUTO_USER_SCOPE_POOL);
	ASSERT_INT_EQ(s->user_identity.elevation, BD_ELEVATION_NONADMIN);
	bd_task_spec_free(s);
	s = parse_ok(T("'userIdentity':{'autoUser':{'scope':'POOL',"
	    "'elevationLevel':'nonAdmin'}}"));
	ASSERT_INT_EQ(s->user_identity.scope, BD_AUTO_USER_SCOPE_POOL);
	bd_task_spec_free(s);

	bad(T("'userIdentity':{'username':'a','autoUser':{'scope':'task'}}"),
	    "userIdentity: username and autoUser are mutually exclusive");
	bad(T("'userIdentity':{'username':'a','userName':'b'}"),
	    "userIdentity: give username or userName, not both");
	bad(T("'userIdentity':{'username':'a/b'}"),
	    "userIdentity.username: not a valid user name");
	bad(T("'userIdentity':{'username':''}"),
	    "userIdentity.username: must not be empty");
	bad(T("'userIdentity':{'autoUser':{'scope':'node'}}"),
	    "userIdentity.autoUser.scope: unknown value \"node\" (expected one "
	    "of: task, pool)");
	bad(T("'userIdentity':{'autoUser':{'elevationLevel':'root'}}"),
	    "userIdentity.autoUser.elevationLevel: unknown value \"root\" "
	    "(expected one of: nonAdmin, admin)");
	bad(T("'userIdentity':{'autoUser':{'elevationLevel':1}}"),
	    "userIdentity.autoUser.elevationLevel: expected a string, not a "
	    "number");
	bad(T("'userIdentity':{'user':'a'}"),
	    "userIdentity.user: unknown field");
}

TEST(exit_conditions)
{
	bad(T("'exitConditions':{'exitCodes':[{'exitOptions':{}}]}"),
	    "exitConditions.exitCodes[0].code: required");
	bad(T("'exitConditions':{'exitCodes':[{'code':1}]}"),
	    "exitConditions.exitCodes[0].exitOptions: required");
	bad(T("'exitConditions':{'exitCodes':[{'code':1,'exitOptions':"
	    "{'jobAction':'explode'}}]}"),
	    "exitConditions.exitCodes[0].exitOptions.jobAction: unknown value "
	    "\"explode\" (expected one of: none, disable, terminate)");
	bad(T("'exitConditions':{'exitCodes':[{'code':1,'exitOptions':"
	    "{'dependencyAction':'cancel'}}]}"),
	    "exitConditions.exitCodes[0].exitOptions.dependencyAction: unknown "
	    "value \"cancel\" (expected one of: satisfy, block)");
	bad(T("'exitConditions':{'exitCodes':[{'code':4294967296,"
	    "'exitOptions':{}}]}"),
	    "exitConditions.exitCodes[0].code: must be an integer between "
	    "-2147483648 and 2147483647");
	bad(T("'exitConditions':{'exitCodeRanges':[{'start':5,'end':3,"
	    "'exitOptions':{}}]}"),
	    "exitConditions.exitCodeRanges[0]: start (5) is greater than end "
	    "(3)");
	bad(T("'exitConditions':{'exitCodeRanges':[{'start':5,"
	    "'exitOptions':{}}]}"),
	    "exitConditions.exitCodeRanges[0].end: required");
	bad(T("'exitConditions':{'default':{'jobAction':'none','x':1}}"),
	    "exitConditions.default.x: unknown field");
	bad(T("'exitConditions':{'defaults':{}}"),
	    "exitConditions.defaults: unknown field (did you mean default?)");
	bad(T("'exitConditions':{'preProcessingError':'terminate'}"),
	    "exitConditions.preProcessingError: expected an object, not a "
	    "string");
}

TEST(depends_on)
{
	struct bd_task_spec *s;
	char *json, *ids, *p;
	size_t i;

	bad(T("'dependsOn':{'taskIds':['a','b c']}"),
	    "dependsOn.taskIds[1]: not a task id: 1 to 64 letters, digits, "
	    "'-' and '_'");
	bad(T("'dependsOn':{'taskIds':['']}"),
	    "dependsOn.taskIds[0]: not a task id: 1 to 64 letters, digits, "
	    "'-' and '_'");
	bad(T("'dependsOn':{'taskIds':[1]}"),
	    "dependsOn.taskIds[0]: expected a string, not a number");
	bad(T("'dependsOn':{'taskIdRanges':[{'start':9,'end':2}]}"),
	    "dependsOn.taskIdRanges[0]: start (9) is greater than end (2)");
	bad(T("'dependsOn':{'taskIdRanges':[{'start':-1,'end':2}]}"),
	    "dependsOn.taskIdRanges[0].start: must be an integer between 0 "
	    "and 2147483647");
	bad(T("'dependsOn':{'taskIdRanges':[{'start':1}]}"),
	    "dependsOn.taskIdRanges[0].end: required");

	/* 1001 ids of 64 characters pass 64000 characters in total. */
	ids = xmalloc(1001 * 67 + 1);
	for (p = ids, i = 0; i < 1001; i++) {
		p += sprintf(p, "%s\"%064zu\"", i ? "," : "", i);
	}
	json = xasprintf("{\"id\":\"t\",\"commandLine\":\"c\","
	    "\"dependsOn\":{\"taskIds\":[%s]}}", ids);
	bad(json, "dependsOn.taskIds: longer than 64000 characters in total");
	free(json);
	free(ids);

	s = parse_ok(T("'dependsOn':{}"));
	ASSERT(s->has_depends_on);
	ASSERT_INT_EQ(s->depends_on.n_task_ids, 0);
	bd_task_spec_free(s);
}

TEST(application_packages)
{
	bad(T("'applicationPackageReferences':[{'version':'1'}]"),
	    "applicationPackageReferences[0].applicationId: required");
	bad(T("'applicationPackageReferences':[{'applicationId':'a/b'}]"),
	    "applicationPackageReferences[0].applicationId: must be 1 to 64 "
	    "letters, digits, '_', '-' and '.'");
	bad(T("'applicationPackageReferences':[{'applicationId':'a',"
	    "'version':'1 0'}]"),
	    "applicationPackageReferences[0].version: must be 1 to 64 "
	    "letters, digits, '_', '-' and '.'");
	bad(T("'applicationPackageReferences':[{'applicationId':'a',"
	    "'version':''}]"),
	    "applicationPackageReferences[0].version: must not be empty");
}

TEST(container_settings)
{
	bad(T("'containerSettings':{}"), "containerSettings.imageName: required");
	bad(T("'containerSettings':{'imageName':'x','workingDirectory':'cwd'}"),
	    "containerSettings.workingDirectory: unknown value \"cwd\" "
	    "(expected one of: taskWorkingDirectory, containerImageDefault)");
	bad(T("'containerSettings':{'imageName':'x','registry':"
	    "{'server':'r'}}"),
	    "containerSettings.registry.server: unknown field");
	bad(T("'containerSettings':{'imageName':'x',"
	    "'containerHostBatchBindMounts':[{'source':'Root'}]}"),
	    "containerSettings.containerHostBatchBindMounts[0].source: "
	    "unknown value \"Root\" (expected one of: Shared, Startup, "
	    "VfsMounts, Task, JobPrep, Applications)");
	bad(T("'containerSettings':{'imageName':'x',"
	    "'containerHostBatchBindMounts':[{'source':'Task',"
	    "'isReadOnly':'yes'}]}"),
	    "containerSettings.containerHostBatchBindMounts[0].isReadOnly: "
	    "expected true or false, not a string");
}

TEST(multi_instance_and_slots)
{
	struct bd_task_spec *s;

	s = parse_ok(T("'multiInstanceSettings':{'numberOfInstances':3,"
	    "'coordinationCommandLine':'coord','commonResourceFiles':"
	    "[{'httpUrl':'http://a','filePath':'f'}]}"));
	ASSERT_INT_EQ(s->multi_instance->number_of_instances, 3);
	ASSERT_STR_EQ(s->multi_instance->coordination_command_line, "coord");
	ASSERT_INT_EQ(s->multi_instance->n_common_resource_files, 1);
	bd_task_spec_free(s);
	s = parse_ok(T("'multiInstanceSettings':{'coordinationCommandLine':"
	    "'c'},'requiredSlots':1"));
	ASSERT_INT_EQ(s->multi_instance->number_of_instances, 1);
	bd_task_spec_free(s);

	bad(T("'multiInstanceSettings':{'numberOfInstances':2}"),
	    "multiInstanceSettings.coordinationCommandLine: required");
	bad(T("'multiInstanceSettings':{'numberOfInstances':0,"
	    "'coordinationCommandLine':'c'}"),
	    "multiInstanceSettings.numberOfInstances: must be an integer "
	    "between 1 and 10000");
	bad(T("'multiInstanceSettings':{'coordinationCommandLine':'c',"
	    "'commonResourceFiles':[{'httpUrl':'http://a','filePath':'../f'}]}"),
	    "multiInstanceSettings.commonResourceFiles[0].filePath: must stay "
	    "inside the working directory");
	bad(T("'multiInstanceSettings':{'coordinationCommandLine':'c'},"
	    "'requiredSlots':2"),
	    "requiredSlots: must be 1 for a multi-instance task");
	bad(T("'requiredSlots':0"),
	    "requiredSlots: must be an integer between 1 and 256");
	bad(T("'requiredSlots':257"),
	    "requiredSlots: must be an integer between 1 and 256");
	bad(T("'affinityInfo':{}"), "affinityInfo.affinityId: required");
	bad(T("'authenticationTokenSettings':{'access':['pool']}"),
	    "authenticationTokenSettings.access[0]: unknown value (expected "
	    "one of: job)");
	bad(T("'authenticationTokenSettings':{'access':'job'}"),
	    "authenticationTokenSettings.access: expected an array, not a "
	    "string");
}

TEST(kinds)
{
	struct bd_task_spec *s;

	/* Job preparation. */
	s = parse_kind_ok("{'commandLine':'c','waitForSuccess':false,"
	    "'rerunOnNodeRebootAfterSuccess':false,'constraints':"
	    "{'maxTaskRetryCount':2}}", BD_TASK_KIND_JOB_PREPARATION);
	ASSERT_STR_EQ(s->id, "jobpreparation");
	ASSERT(!s->wait_for_success);
	ASSERT(!s->rerun_on_node_reboot_after_success);
	ASSERT_INT_EQ(s->constraints.max_task_retry_count, 2);
	bd_task_spec_free(s);
	s = parse_kind_ok("{'id':'prep','commandLine':'c'}",
	    BD_TASK_KIND_JOB_PREPARATION);
	ASSERT_STR_EQ(s->id, "prep");
	ASSERT(s->wait_for_success);
	ASSERT(s->rerun_on_node_reboot_after_success);
	bd_task_spec_free(s);
	bad_kind("{'commandLine':'c','outputFiles':[]}",
	    BD_TASK_KIND_JOB_PREPARATION,
	    "outputFiles: unknown field (not a field of a job preparation "
	    "task)");
	bad_kind("{'commandLine':'c','displayName':'x'}",
	    BD_TASK_KIND_JOB_PREPARATION,
	    "displayName: unknown field (not a field of a job preparation "
	    "task)");
	/* A batchd extension: Azure's preparation and release tasks have no
	 * applicationPackageReferences; the start task still has none. */
	s = parse_kind_ok("{'commandLine':'c','applicationPackageReferences':"
	    "[{'applicationId':'tool','version':'1.0'}]}",
	    BD_TASK_KIND_JOB_PREPARATION);
	ASSERT_INT_EQ(s->n_application_packages, 1);
	ASSERT_STR_EQ(s->application_packages[0].application_id, "tool");
	bd_task_spec_free(s);
	s = parse_kind_ok("{'commandLine':'c','applicationPackageReferences':"
	    "[{'applicationId':'tool'}]}", BD_TASK_KIND_JOB_RELEASE);
	ASSERT_INT_EQ(s->n_application_packages, 1);
	ASSERT_NULL(s->application_packages[0].version);
	bd_task_spec_free(s);
	bad_kind("{'commandLine':'c','applicationPackageReferences':"
	    "[{'applicationId':'tool'}]}", BD_TASK_KIND_START,
	    "applicationPackageReferences: unknown field (not a field of a "
	    "start task)");

	/* Job release. */
	s = parse_kind_ok("{'commandLine':'c'}", BD_TASK_KIND_JOB_RELEASE);
	ASSERT_STR_EQ(s->id, "jobrelease");
	ASSERT(s->has_constraints);
	ASSERT_INT_EQ(s->constraints.max_wall_clock_ms, 15 * 60000);
	ASSERT(s->constraints.has_max_task_retry_count);
	ASSERT_INT_EQ(s->constraints.max_task_retry_count, 0);
	bd_task_spec_free(s);
	s = parse_kind_ok("{'commandLine':'c','maxWallClockTime':'PT10M',"
	    "'retentionTime':'PT1H'}", BD_TASK_KIND_JOB_RELEASE);
	ASSERT_INT_EQ(s->constraints.max_wall_clock_ms, 10 * 60000);
	ASSERT_INT_EQ(s->constraints.retention_ms, 3600000);
	bd_task_spec_free(s);
	s = parse_kind_ok("{'commandLine':'c','maxWallClockTime':'PT15M'}",
	    BD_TASK_KIND_JOB_RELEASE);
	bd_task_spec_free(s);
	bad_kind("{'commandLine':'c','maxWallClockTime':'PT15M0.001S'}",
	    BD_TASK_KIND_JOB_RELEASE,
	    "maxWallClockTime: must be at most 15 minutes (PT15M) for a job "
	    "release task");
	bad_kind("{'commandLine':'c','constraints':{}}",
	    BD_TASK_KIND_JOB_RELEASE,
	    "constraints: unknown field (not a field of a job release task)");
	bad_kind("{'commandLine':'c','waitForSuccess':true}",
	    BD_TASK_KIND_JOB_RELEASE,
	    "waitForSuccess: unknown field (not a field of a job release "
	    "task)");

	/* Start task. */
	s = parse_kind_ok("{'commandLine':'c','maxTaskRetryCount':-1,"
	    "'waitForSuccess':false,'userIdentity':{'autoUser':{'scope':"
	    "'pool','elevationLevel':'admin'}}}", BD_TASK_KIND_START);
	ASSERT_STR_EQ(s->id, "");
	ASSERT(s->constraints.has_max_task_retry_count);
	ASSERT_INT_EQ(s->constraints.max_task_retry_count, -1);
	ASSERT(!s->wait_for_success);
	bd_task_spec_free(s);
	s = parse_kind_ok("{'commandLine':'c'}", BD_TASK_KIND_START);
	ASSERT_INT_EQ(s->constraints.max_task_retry_count, 0);
	ASSERT(s->wait_for_success);
	bd_task_spec_free(s);
	bad_kind("{'id':'s','commandLine':'c'}", BD_TASK_KIND_START,
	    "id: unknown field (not a field of a start task)");
	bad_kind("{'commandLine':'c','maxTaskRetryCount':-2}",
	    BD_TASK_KIND_START,
	    "maxTaskRetryCount: must be an integer between -1 and "
	    "2147483647");

	/* Job manager. */
	s = parse_kind_ok("{'id':'m','commandLine':'c',"
	    "'killJobOnCompletion':false,'runExclusive':false,"
	    "'allowLowPriorityNode':false,'requiredSlots':4}",
	    BD_TASK_KIND_JOB_MANAGER);
	ASSERT(!s->kill_job_on_completion);
	ASSERT(!s->run_exclusive);
	ASSERT(!s->allow_low_priority_node);
	ASSERT_INT_EQ(s->required_slots, 4);
	bd_task_spec_free(s);
	bad_kind("{'commandLine':'c'}", BD_TASK_KIND_JOB_MANAGER,
	    "id: required");
	bad_kind("{'id':'m','commandLine':'c','exitConditions':{}}",
	    BD_TASK_KIND_JOB_MANAGER,
	    "exitConditions: unknown field (not a field of a job manager "
	    "task)");
	bad_kind("{'id':'m','commandLine':'c','killJobOnCompletion':1}",
	    BD_TASK_KIND_JOB_MANAGER,
	    "killJobOnCompletion: expected true or false, not a number");
}

TEST(from_json_path)
{
	struct bd_task_spec *spec = NULL;
	char *text = dq("{'commandLine':'','x':1}"), *cause = NULL;
	cJSON *obj = cJSON_Parse(text);

	ASSERT_INT_EQ(bd_task_spec_from_json(obj, BD_TASK_KIND_JOB_PREPARATION,
	    "jobPreparationTask", &spec, &cause), BD_EINVALID);
	ASSERT_STR_EQ(cause, "jobPreparationTask.x: unknown field");
	free(cause);
	cause = NULL;
	cJSON_DeleteItemFromObject(obj, "x");
	ASSERT_INT_EQ(bd_task_spec_from_json(obj, BD_TASK_KIND_JOB_PREPARATION,
	    "jobPreparationTask", &spec, &cause), BD_EINVALID);
	ASSERT_STR_EQ(cause, "jobPreparationTask.commandLine: must not be "
	    "empty");
	free(cause);
	cause = NULL;
	ASSERT_INT_EQ(bd_task_spec_from_json(obj, BD_TASK_KIND_TASK, "",
	    &spec, &cause), BD_EINVALID);
	ASSERT_STR_EQ(cause, "id: required");
	free(cause);
	cJSON_Delete(obj);
	free(text);
}

/* Whole-document errors. */
static void
doc_bad(const char *text, size_t len, int want_rc, const char *want)
{
	raw_bad_kind(text, len, BD_TASK_KIND_TASK, want_rc, want);
}

#define DOC_BAD(lit, rc, want) doc_bad((lit), sizeof(lit) - 1, (rc), (want))

TEST(documents)
{
	struct bd_task_spec *s;
	char *big, *deep;
	size_t i, n;

	DOC_BAD("", BD_EJSON, "not valid JSON: the document is empty");
	DOC_BAD(" \n\t ", BD_EJSON, "not valid JSON: the document is empty");
	DOC_BAD("[]", BD_EJSON, "expected a JSON object, not an array");
	DOC_BAD("null", BD_EJSON, "expected a JSON object, not null");
	DOC_BAD("\"x\"", BD_EJSON, "expected a JSON object, not a string");
	DOC_BAD("42", BD_EJSON, "expected a JSON object, not a number");
	DOC_BAD("{\"id\":\"t\",\"commandLine\":\"c\"} x", BD_EJSON,
	    "not valid JSON at line 1, column 30: unexpected text after the "
	    "end of the document");
	DOC_BAD("{\"id\":\"t\",\"commandLine\":\"c\"}{}", BD_EJSON,
	    "not valid JSON at line 1, column 29: unexpected text after the "
	    "end of the document");
	DOC_BAD("{\n  \"id\": \"t\",\n  \"commandLine\": c\n}", BD_EJSON,
	    "not valid JSON at line 3, column 18");
	DOC_BAD("{\"id\":\"t\",}", BD_EJSON,
	    "not valid JSON at line 1, column 11");
	DOC_BAD("{\"id\":\"t", BD_EJSON, "not valid JSON at line 1, column 8");
	DOC_BAD("{\"id\":\"\xc3\xa9\xff\"}", BD_EJSON,
	    "not valid UTF-8 at byte 9");
	DOC_BAD("{\"id\":\"\xc0\x80\"}", BD_EJSON, "not valid UTF-8 at byte 7");
	DOC_BAD("{\"id\":\"\xed\xa0\x80\"}", BD_EJSON,
	    "not valid UTF-8 at byte 7");
	DOC_BAD("{\"id\":\"\xf4\x90\x80\x80\"}", BD_EJSON,
	    "not valid UTF-8 at byte 7");
	DOC_BAD("{\"id\":\"\xe2\x82\"}", BD_EJSON, "not valid UTF-8 at byte 7");
	DOC_BAD("{\"id\":\"t\xe2\x82", BD_EJSON, "not valid UTF-8 at byte 8");
	DOC_BAD("{\"id\":\"a\\u0000b\",\"commandLine\":\"c\"}", BD_EJSON,
	    "not valid JSON at line 1, column 9: strings must not contain NUL "
	    "characters (\\u0000)");
	DOC_BAD("{\"id\":\"a\0b\",\"commandLine\":\"c\"}", BD_EJSON,
	    "not valid JSON at line 1, column 9: a NUL byte");
	DOC_BAD("{\"id\":\"a\tb\",\"commandLine\":\"c\"}", BD_EJSON,
	    "not valid JSON at line 1, column 9: a control character in a "
	    "string must be escaped");
	DOC_BAD("{\"id\":\"t\",\x01\"commandLine\":\"c\"}", BD_EJSON,
	    "not valid JSON at line 1, column 11: a control character");
	DOC_BAD("{\"a\":\"\xc3\xa9\xc3\xa9\",\n\"b\":\"\xc3\xa9\" x}", BD_EJSON,
	    "not valid JSON at line 2, column 9");

	/* An escaped backslash before u0000 is no NUL. */
	s = parse_ok("{'id':'t','commandLine':'a\\\\u0000'}");
	ASSERT_STR_EQ(s->command_line, "a\\u0000");
	bd_task_spec_free(s);
	/* A byte order mark is skipped, and whitespace around is fine. */
	s = parse_ok("\xef\xbb\xbf \n{'id':'t','commandLine':'c'}\r\n ");
	bd_task_spec_free(s);

	/* Deep nesting: a clear error, no stack overflow. */
	n = 10000;
	deep = xmalloc(2 * n + 1);
	for (i = 0; i < n; i++) {
		deep[i] = '[';
		deep[2 * n - 1 - i] = ']';
	}
	deep[0] = '{';
	deep[2 * n - 1] = '}';
	doc_bad(deep, 2 * n, BD_EJSON, "document is nested more than 64 "
	    "levels deep (at line 1, column 65)");
	free(deep);
	/* 64 levels are fine, 65 are not. */
	for (n = 64; n <= 65; n++) {
		cJSON *root = NULL;
		char *cause = NULL;

		/* {"":[[...]]} with n - 1 brackets is n levels. */
		deep = xmalloc(2 * n + 4);
		memcpy(deep, "{\"\":", 4);
		for (i = 0; i < n - 1; i++) {
			deep[4 + i] = '[';
			deep[4 + n - 1 + i] = ']';
		}
		deep[4 + 2 * (n - 1)] = '}';
		deep[4 + 2 * (n - 1) + 1] = '\0';
		if (n == 64) {
			ASSERT_INT_EQ(bd_json_parse(deep, strlen(deep), &root,
			    &cause), 0);
			cJSON_Delete(root);
		} else {
			ASSERT_INT_EQ(bd_json_parse(deep, strlen(deep), &root,
			    &cause), BD_EJSON);
			ASSERT_NULL(root);
			ASSERT_STR_CONTAINS(cause, "more than 64 levels");
			free(cause);
		}
		free(deep);
	}

	/* Size. */
	big = xmalloc(BD_JSON_MAX_DOCUMENT + 2);
	memset(big, ' ', BD_JSON_MAX_DOCUMENT + 1);
	memcpy(big, "{\"id\":\"t\",\"commandLine\":\"c\"}", 28);
	doc_bad(big, BD_JSON_MAX_DOCUMENT + 1, BD_ETOOBIG,
	    "document is larger than 1 MiB (1048577 bytes)");
	s = NULL;
	ASSERT_INT_EQ(bd_task_spec_parse(big, BD_JSON_MAX_DOCUMENT,
	    BD_TASK_KIND_TASK, &s, NULL), 0);
	bd_task_spec_free(s);
	free(big);
}

TEST(names)
{
	ASSERT_STR_EQ(bd_upload_condition_name(BD_UPLOAD_TASK_COMPLETION),
	    "taskcompletion");
	ASSERT_STR_EQ(bd_upload_condition_name(BD_UPLOAD_TASK_SUCCESS),
	    "tasksuccess");
	ASSERT_STR_EQ(bd_upload_condition_name(BD_UPLOAD_TASK_FAILURE),
	    "taskfailure");
	ASSERT_STR_EQ(bd_job_action_name(BD_JOB_ACTION_NONE), "none");
	ASSERT_STR_EQ(bd_job_action_name(BD_JOB_ACTION_DISABLE), "disable");
	ASSERT_STR_EQ(bd_job_action_name(BD_JOB_ACTION_TERMINATE), "terminate");
	ASSERT_STR_EQ(bd_dependency_action_name(BD_DEPENDENCY_ACTION_SATISFY),
	    "satisfy");
	ASSERT_STR_EQ(bd_dependency_action_name(BD_DEPENDENCY_ACTION_BLOCK),
	    "block");
	ASSERT_STR_EQ(bd_task_kind_name(BD_TASK_KIND_START), "start task");
	ASSERT_STR_EQ(bd_task_kind_name(BD_TASK_KIND_JOB_RELEASE),
	    "job release task");
}

TEST(json_field_helpers)
{
	char *q;

	q = bd_json_quote("a\"b\\c\n\xc3\xa9", 64);
	ASSERT_STR_EQ(q, "\"a\\\"b\\\\c\\x0a\\xc3\\xa9\"");
	free(q);
	q = bd_json_quote("abcdef", 3);
	ASSERT_STR_EQ(q, "\"abc\"...");
	free(q);
	q = bd_json_path(NULL, "a");
	ASSERT_STR_EQ(q, "a");
	free(q);
	q = bd_json_path("a[1]", "b");
	ASSERT_STR_EQ(q, "a[1].b");
	free(q);
	q = bd_json_path_index("a", 7);
	ASSERT_STR_EQ(q, "a[7]");
	free(q);
	ASSERT(bd_json_id_valid("a"));
	ASSERT(!bd_json_id_valid(""));
	ASSERT(!bd_json_id_valid("a:b"));
	ASSERT_INT_EQ(bd_json_fail(NULL, BD_EINVALID, "a", "b", "x"),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_json_fail(&q, BD_EJSON, NULL, NULL, "%d", 5),
	    BD_EJSON);
	ASSERT_STR_EQ(q, "5");
	free(q);
}

int
main(void)
{
	RUN(minimal_defaults);
	RUN(full_task);
	RUN(read_back_dump);
	RUN(ids);
	RUN(command_line_and_display_name);
	RUN(unknown_fields);
	RUN(environment_settings);
	RUN(resource_file_sources);
	RUN(resource_file_paths);
	RUN(resource_file_mode);
	RUN(output_files);
	RUN(constraints);
	RUN(user_identity);
	RUN(exit_conditions);
	RUN(depends_on);
	RUN(application_packages);
	RUN(container_settings);
	RUN(multi_instance_and_slots);
	RUN(kinds);
	RUN(from_json_path);
	RUN(documents);
	RUN(names);
	RUN(json_field_helpers);
	return 0;
}
