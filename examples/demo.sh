#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The first set-up command: installs what is missing, builds batchd, and
# runs a small demo on this machine: a job with a preparation and a release
# task, and three tasks that download an input (file:// storage), run a
# shell pipeline and upload their outputs (file:// container).
#
#   sudo bash examples/demo.sh            # demo under /tmp/batchd-demo
#   BATCHD_DEMO_DIR=/some/dir bash examples/demo.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
demo=${BATCHD_DEMO_DIR:-/tmp/batchd-demo}

bash "$top/.ci/install-deps"
# .ci/build reconfigures an existing tree, so modules added since it was
# set up are built too.
bash "$top/.ci/build" build
batchd="$top/build/agent/batchd"

rm -rf "$demo"
mkdir -p "$demo/inputs" "$demo/outputs" "$demo/tasks" "$demo/results"
# Run as root, batchd runs tasks as the pool's task user (_azbatch), and
# file:// outputs are written with that user's rights.
chmod 1777 "$demo/outputs"
cat > "$demo/inputs/part-1.txt" <<'TXT'
The batch pool runs the tasks of a job on many nodes, and each node
downloads the inputs of a task, runs its command and uploads its outputs.
TXT
cat > "$demo/inputs/part-2.txt" <<'TXT'
A task that fails is retried; a task that runs too long is ended; a node
that dies loses its leases and its tasks run on another node of the pool.
TXT
cat > "$demo/inputs/part-3.txt" <<'TXT'
Outputs go to blob storage, logs go to stdout.txt and stderr.txt, and the
task directory is kept so that a person can read what the task did.
TXT

echo
echo "== running the demo job in $demo (node root $demo/root)"
status=0
for n in 1 2 3; do
	sed -e "s|@DEMO@|$demo|g" -e "s|@N@|$n|g" \
	    "$top/examples/demo/task.json.in" > "$demo/tasks/count-$n.json"
	echo
	echo "== batchd run --job job.json count-$n.json"
	"$batchd" run --root "$demo/root" --job "$top/examples/demo/job.json" \
	    --result "$demo/results/count-$n.json" "$demo/tasks/count-$n.json" ||
	    status=$?
done

echo
echo "== outputs (uploaded to the file:// container $demo/outputs):"
(cd "$demo/outputs" && find . -type f | sort)
echo
echo "== task records (CloudTask JSON): $demo/results/"
echo "== task directories: $demo/root/workitems/wordcount/job-1/"
exit "$status"
