#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""resourceFiles over http (a real nginx) and file://, and their failures."""
import hashlib
import os
import stat

from harness import Nginx, Workspace, check, finish, read

SAS = "?sv=2023-11-03&sp=r&sig=SuperSecretSignature%2Fx%3D"

with Workspace() as ws:
    ng = Nginx(ws)
    try:
        big = os.urandom(3 * 1024 * 1024 + 17)
        url_big = ng.put_file("in/big.bin", big)
        url_small = ng.put_file("in/small.txt", "small\n")
        local = ws.write("local/data.txt", "local data\n")
        ws.write("container/a/one.txt", "1")
        ws.write("container/a/sub/two.txt", "2")
        ws.write("container/b/three.txt", "3")
        status, out, err, res = ws.run({
            "id": "files",
            "commandLine": "/bin/sh -c 'find . -type f | sort; sha256sum big.bin'",
            "resourceFiles": [
                {"httpUrl": url_big + SAS, "filePath": "big.bin"},
                {"httpUrl": url_small, "filePath": "deep/er/small.txt", "fileMode": "0644"},
                {"httpUrl": "file://" + local, "filePath": "data.txt"},
                {"storageContainerUrl": "file://" + ws.dir + "/container", "blobPrefix": "a/",
                 "filePath": "from-container"},
                {"storageContainerUrl": "file://" + ws.dir + "/container"},
            ],
        })
        wd = os.path.join(ws.task_dir("files"), "wd")
        check(status == 0, "task with every resource-file form runs", err[-2000:])
        stdout = read(os.path.join(ws.task_dir("files"), "stdout.txt"))
        check(hashlib.sha256(big).hexdigest() in stdout, "big file downloaded intact before the command ran")
        check(read(os.path.join(wd, "deep/er/small.txt")) == "small\n", "filePath with directories")
        check(stat.S_IMODE(os.stat(os.path.join(wd, "deep/er/small.txt")).st_mode) == 0o644, "fileMode applied")
        check(stat.S_IMODE(os.stat(os.path.join(wd, "big.bin")).st_mode) == 0o770, "default fileMode 0770")
        check(read(os.path.join(wd, "data.txt")) == "local data\n", "file:// httpUrl")
        check(os.path.isfile(os.path.join(wd, "from-container/a/one.txt")) and
              os.path.isfile(os.path.join(wd, "from-container/a/sub/two.txt")) and
              not os.path.exists(os.path.join(wd, "from-container/b")),
              "container with prefix keeps whole blob names under filePath")
        check(os.path.isfile(os.path.join(wd, "b/three.txt")), "container without filePath lands in wd")
        check(not [f for f in os.listdir(wd) if "partial" in f], "no partial files left")
        check("SuperSecretSignature" not in err + out, "SAS never printed")

        # Failures: each a pre-processing error with Azure's code; the command never runs.
        cases = [
            ({"httpUrl": ng.url + "/in/missing.bin" + SAS, "filePath": "x"}, "BlobNotFound"),
            ({"httpUrl": ng.url + "/status/403" + SAS, "filePath": "x"}, "BlobAccessDenied"),
            ({"httpUrl": "file://" + ws.dir + "/nope.txt", "filePath": "x"}, "BlobNotFound"),
            ({"storageContainerUrl": "file://" + ws.dir + "/no-container"}, "ResourceContainerNotFound"),
            ({"httpUrl": "http://127.0.0.1:1/x" + SAS, "filePath": "x"}, "BlobDownloadMiscError"),
        ]
        for rf, code in cases:
            marker = os.path.join(ws.dir, "ran")
            status, out, err, res = ws.run({"id": "bad", "commandLine": "/bin/touch " + marker,
                                            "resourceFiles": [rf]}, timeout=300)
            fi = res["executionInfo"].get("failureInfo", {}) if res else {}
            check(status == 125 and fi.get("code") == code, "%s gives %s" % (list(rf.values())[0][:60], code),
                  (status, fi))
            check(not os.path.exists(marker), "command did not run after %s" % code)
            check("SuperSecretSignature" not in str(res) + err, "no signature in the record for %s" % code)
            check("exitCode" not in res["executionInfo"], "no exit code for %s" % code)
    finally:
        ng.stop()
finish()
