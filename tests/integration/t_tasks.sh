#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Tasks: inventory_refresh for a group with real agents; run_command refused
# by the default policy, and (where a policy allows it) run with its output,
# exit code and timeout; a task for an offline agent delivered when it comes
# back; an expired task that never runs; a periodic task that runs twice;
# cancelling; canopyctl; bad inputs.
set -eu
. "$(dirname "$0")/lib.sh"

need_bin canopyd
need_bin canopy-agent
need_bin canopyctl
pg_start
canopyd_start
admin_create admin 'tasks-password-1'
api_login

step "two agents, one of them offline"
token_create 2 >/dev/null
agent_enroll on1
agent_enroll off1
agent_start on1
dev_id() {
	api GET "/api/v1/devices?q=$1" >/dev/null
	json ".devices[] | select(.name == \"$1\") | .id"
}
listed() { [ -n "$(dev_id "$1")" ]; }
wait_for "device on1 listed" 30 listed on1
ON1=$(dev_id on1)
OFF1=$(dev_id off1)
[ -n "$OFF1" ] || fail "device off1 not listed: $API_BODY"
inv_updated() {
	api GET "/api/v1/devices/$1" >/dev/null
	json '.inventory_updated // empty'
}
has_inventory() { [ -n "$(inv_updated "$1")" ]; }
wait_for "on1's inventory" 30 has_inventory "$ON1"
inv_before=$(inv_updated "$ON1")

# Prints the state of device $2's newest run of task $1.
run_state() {
	api GET "/api/v1/tasks/$1" >/dev/null
	[ "$API_STATUS" = 200 ] || fail "GET /tasks/$1: $API_STATUS $API_BODY"
	json "[.results[] | select(.device == \"$2\")] | last | .state // empty"
}
state_is() { [ "$(run_state "$1" "$2")" = "$3" ]; }
task_create() {
	api POST /api/v1/tasks "$1" >/dev/null
	assert_status 201 "POST /tasks $1"
	json .id
}

step "inventory_refresh for a group: done by the connected agent"
# The clock has a one-second resolution: make the refresh visibly later.
later_than_before() { [ "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \> "$inv_before" ]; }
wait_for "a second to pass" 5 later_than_before
api POST /api/v1/tasks '{"type":"inventory_refresh","group":"/Unassigned devices"}' >/dev/null
assert_status 201 "POST /tasks inventory_refresh"
T1=$(json .id)
assert_match "$T1" '^[0-9]+$' "the task id"
wait_for "on1's inventory_refresh run done" 30 state_is "$T1" "$ON1" done
api GET "/api/v1/tasks/$T1" >/dev/null
assert_eq inventory_refresh "$(json .type)" "task type"
assert_eq on1 "$(json ".results[] | select(.device == \"$ON1\") | .device_name")" "device_name"
assert_match "$(json ".results[] | select(.device == \"$ON1\") | .finished")" '^20[0-9-]+T' "finished"
assert_eq pending "$(run_state "$T1" "$OFF1")" "off1's run while it is offline"
inv_advanced() { [ "$(inv_updated "$ON1")" \> "$inv_before" ]; }
wait_for "on1's inventory_updated to advance past $inv_before" 30 inv_advanced

step "a task for an offline agent is delivered when it comes back"
agent_start off1
wait_for "off1's inventory_refresh run done" 30 state_is "$T1" "$OFF1" done

step "run_command is refused by the default policy"
T2=$(task_create "{\"type\":\"run_command\",\"devices\":[\"$ON1\"],\"params\":{\"command\":\"touch $TEST_DIR/ran\"}}")
wait_for "run_command refused" 30 state_is "$T2" "$ON1" refused
[ ! -e "$TEST_DIR/ran" ] || fail "a refused command ran"
api GET "/api/v1/tasks/$T2" >/dev/null
assert_contains "$(json '.results[0].output')" allow_run_command "the refusal's reason"

step "run_command where a policy allows it"
api POST /api/v1/policies '{"group":"/Unassigned devices","product":"canopy-agent","name":"cmds","settings":{"allow_run_command":{"value":true,"locked":false}}}' >/dev/null
policy_status=$API_STATUS
policy_body=$API_BODY
policy_applied() {
	grep -q allow_run_command "$(agent_dir on1)/policy.json" 2>/dev/null
}
allowed=0
if [ "$policy_status" = 201 ]; then
	wait_for "on1 to apply the policy allowing run_command" 30 policy_applied
	allowed=1
fi
if [ "$allowed" = 1 ]; then
	T3=$(task_create "{\"type\":\"run_command\",\"devices\":[\"$ON1\"],\"params\":{\"command\":\"echo out-line; echo err-line >&2; exit 3\"}}")
	wait_for "run_command finished" 30 state_is "$T3" "$ON1" failed
	api GET "/api/v1/tasks/$T3" >/dev/null
	assert_eq 3 "$(json '.results[0].exit_code')" "exit code"
	assert_contains "$(json '.results[0].output')" out-line "stdout captured"
	assert_contains "$(json '.results[0].output')" err-line "stderr captured"
	T4=$(task_create "{\"type\":\"run_command\",\"devices\":[\"$ON1\"],\"params\":{\"command\":\"echo fine\"}}")
	wait_for "run_command done" 30 state_is "$T4" "$ON1" done
	api GET "/api/v1/tasks/$T4" >/dev/null
	assert_eq 0 "$(json '.results[0].exit_code')" "exit code 0"

	step "a run delivered again is not run twice"
	T4b=$(task_create "{\"type\":\"run_command\",\"devices\":[\"$ON1\"],\"params\":{\"command\":\"echo once >> $TEST_DIR/once\"}}")
	wait_for "the counted command done" 30 state_is "$T4b" "$ON1" done
	run4b=$(json ".results[0].run" "$(api GET "/api/v1/tasks/$T4b")")
	# As if the server had lost the result: it delivers the run again.
	pg_sql "UPDATE task_runs SET state = 'sent' WHERE id = $run4b" >/dev/null
	agent_stop on1
	agent_start on1
	wait_for "on1 to answer the redelivered run $run4b" 30 \
	    grep -q "run $run4b: already finished" "$TEST_DIR/agent-on1.log"
	assert_eq 1 "$(wc -l <"$TEST_DIR/once")" "times the command ran"

	step "a command that outlives its timeout is killed"
	T5=$(task_create "{\"type\":\"run_command\",\"devices\":[\"$ON1\"],\"params\":{\"command\":\"sleep 60\",\"timeout_s\":1}}")
	wait_for "run_command timed out" 30 state_is "$T5" "$ON1" failed
	api GET "/api/v1/tasks/$T5" >/dev/null
	assert_contains "$(json '.results[0].output')" "timed out after 1 s" "timeout note"

	step "output is capped"
	T6=$(task_create "{\"type\":\"run_command\",\"devices\":[\"$ON1\"],\"params\":{\"command\":\"head -c 200000 /dev/zero | tr '\\\\\\\\0' a\"}}")
	wait_for "big output done" 30 state_is "$T6" "$ON1" done
	api GET "/api/v1/tasks/$T6" >/dev/null
	assert_contains "$(json '.results[0].output')" "[output truncated]" "truncation note"
	len=$(json '.results[0].output | utf8bytelength')
	[ "$len" -le 65536 ] || fail "output of $len bytes exceeds the cap"
	[ "$len" -gt 60000 ] || fail "output of $len bytes: too little kept"
else
	echo "SKIP (part): run_command allowed by a policy: POST /policies" \
	    "answered $policy_status: $policy_body" |
	    tee -a "$TEST_DIR/skipped"
fi

step "an unknown task type is refused, naming the types"
api POST /api/v1/tasks "{\"type\":\"reboot\",\"devices\":[\"$ON1\"]}" >/dev/null
assert_status 400 "unknown type"
assert_contains "$(json .error.message)" "inventory_refresh, run_command" "the types listed"

step "an expired task never runs"
agent_stop off1
T7=$(task_create "{\"type\":\"inventory_refresh\",\"devices\":[\"$OFF1\"],\"expires_s\":1}")
wait_for "off1's run expired" 30 state_is "$T7" "$OFF1" expired
T7b=$(task_create "{\"type\":\"inventory_refresh\",\"devices\":[\"$OFF1\"]}")
agent_start off1
wait_for "off1 back (a later task done)" 30 state_is "$T7b" "$OFF1" done
assert_eq expired "$(run_state "$T7" "$OFF1")" "the expired run"
run7=$(json ".results[] | select(.device == \"$OFF1\") | .run" "$(api GET "/api/v1/tasks/$T7")")
if grep -q "run $run7:" "$TEST_DIR/agent-off1.log"; then
	fail "the expired run $run7 ran on the agent"
fi

step "a periodic task runs every period"
T8=$(task_create "{\"type\":\"inventory_refresh\",\"devices\":[\"$ON1\"],\"schedule\":{\"every_s\":60}}")
runs_done() {
	api GET "/api/v1/tasks/$T8" >/dev/null
	[ "$(json '[.results[] | select(.state == "done")] | length')" -ge "$1" ]
}
wait_for "the first run" 30 runs_done 1
api GET "/api/v1/tasks/$T8" >/dev/null
assert_eq 60 "$(json .schedule.every_s)" "schedule.every_s"
next1=$(json .next_run)
[ -n "$next1" ] && [ "$next1" != null ] || fail "a periodic task has no next_run"
# A minute is long for a test: move the clock of this task instead.
pg_sql "UPDATE tasks SET next_run = now() WHERE id = $T8" >/dev/null
wait_for "the second run" 30 runs_done 2

step "cancel"
T9=$(task_create "{\"type\":\"inventory_refresh\",\"devices\":[\"$ON1\"],\"schedule\":{\"at\":\"2099-01-01T00:00:00Z\"}}")
api DELETE "/api/v1/tasks/$T9" >/dev/null
assert_status 204 "DELETE /tasks/$T9"
api GET "/api/v1/tasks/$T9" >/dev/null
assert_eq cancelled "$(json .state)" "the cancelled task's state"
assert_eq null "$(json .next_run)" "the cancelled task's next_run"
agent_stop off1
T10=$(task_create "{\"type\":\"inventory_refresh\",\"devices\":[\"$OFF1\"]}")
wait_for "off1's run pending" 30 state_is "$T10" "$OFF1" pending
api DELETE "/api/v1/tasks/$T10" >/dev/null
assert_status 204 "DELETE /tasks/$T10"
assert_eq cancelled "$(run_state "$T10" "$OFF1")" "a pending run cancelled"
api GET /api/v1/audit >/dev/null
if [ "$API_STATUS" = 200 ]; then
	assert_contains "$API_BODY" task_cancel "the audit log"
fi
assert_eq 1 "$(pg_sql "SELECT count(*) FROM audit WHERE action = 'task_cancel' AND object = '$T10'")" "audit row of the cancel"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM audit WHERE action = 'task_create' AND object = '$T1'")" "audit row of a create"

step "list and paging"
api GET "/api/v1/tasks?limit=2" >/dev/null
assert_status 200 "GET /tasks"
assert_eq 2 "$(json '.tasks | length')" "tasks on a page of 2"
assert_eq "$T10" "$(json '.tasks[0].id')" "newest first"
next=$(json '.next // empty')
[ -n "$next" ] || fail "no next cursor: $API_BODY"
api GET "/api/v1/tasks?limit=2&cursor=$next" >/dev/null
assert_status 200 "GET /tasks?cursor="
last1=$(json '.tasks[1].id' "$(api GET "/api/v1/tasks?limit=2")")
[ "$(json '.tasks[0].id')" -lt "$last1" ] ||
    fail "the second page does not start after the first: $API_BODY"

step "canopyctl"
ctl_login
out=$(ctl task create --type inventory_refresh --device "$ON1") ||
    fail "canopyctl task create: $out"
T11=$(printf '%s\n' "$out" | grep -oE '[0-9]+' | head -n 1)
wait_for "canopyctl's task done" 30 state_is "$T11" "$ON1" done
out=$(ctl task show "$T11") || fail "canopyctl task show: $out"
assert_contains "$out" on1 "task show: the device"
assert_contains "$out" done "task show: the state"
out=$(ctl task list) || fail "canopyctl task list: $out"
assert_contains "$out" inventory_refresh "task list"
out=$(ctl --json task show "$T11" 2>/dev/null || ctl task show --json "$T11") ||
    fail "canopyctl task show --json: $out"
assert_eq "$T11" "$(json .id "$out")" "task show --json"
T12=$(ctl task create --type run_command --group "/Unassigned devices" \
    --command "true" --at 2099-01-01T00:00:00Z | grep -oE '[0-9]+' | head -n 1)
ctl task cancel "$T12" >/dev/null || fail "canopyctl task cancel"
api GET "/api/v1/tasks/$T12" >/dev/null
assert_eq cancelled "$(json .state)" "cancelled by canopyctl"
if ctl task create --type nonsense --device "$ON1" >ctl-bad.out 2>&1; then
	fail "canopyctl task create --type nonsense succeeded"
fi
assert_contains "$(cat ctl-bad.out)" type "canopyctl's error names the field"

step "roles and group scopes"
api POST /api/v1/groups '{"path":"/Managed devices/Scoped"}' >/dev/null
assert_status 201 "POST /groups /Managed devices/Scoped"
api POST /api/v1/admins '{"name":"sop","password":"tasks-password-2","roles":[{"role":"operator","scope":"/Managed devices/Scoped"}]}' >/dev/null
assert_status 201 "POST /admins sop"
api POST /api/v1/admins '{"name":"aud","password":"tasks-password-3","roles":[{"role":"auditor"}]}' >/dev/null
assert_status 201 "POST /admins aud"
admin_token=$API_TOKEN
api_login aud tasks-password-3
api GET "/api/v1/tasks/$T1" >/dev/null
assert_status 200 "an auditor reads a task"
api POST /api/v1/tasks '{"type":"inventory_refresh","group":"/Unassigned devices"}' >/dev/null
assert_status 403 "an auditor creates a task"
api DELETE "/api/v1/tasks/$T1" >/dev/null
assert_status 403 "an auditor cancels a task"
api_login sop tasks-password-2
api POST /api/v1/tasks '{"type":"inventory_refresh","group":"/Unassigned devices"}' >/dev/null
assert_status 404 "a scoped operator: a group outside the scope"
api POST /api/v1/tasks "{\"type\":\"inventory_refresh\",\"devices\":[\"$ON1\"]}" >/dev/null
assert_status 404 "a scoped operator: a device outside the scope"
api GET "/api/v1/tasks/$T1" >/dev/null
assert_status 404 "a scoped operator: a task outside the scope"
api DELETE "/api/v1/tasks/$T1" >/dev/null
assert_status 404 "a scoped operator: cancel a task outside the scope"
api POST /api/v1/tasks '{"type":"inventory_refresh","group":"/Managed devices/Scoped"}' >/dev/null
assert_status 201 "a scoped operator: a task for the own group"
TS=$(json .id)
api GET /api/v1/tasks >/dev/null
assert_eq "$TS" "$(json '[.tasks[].id] | join(",")')" "a scoped operator's task list"
API_TOKEN=$admin_token

step "a group task reaches its subgroups when recursive"
api POST "/api/v1/devices/$ON1/move" '{"group":"/Managed devices/Scoped"}' >/dev/null
assert_status 200 "move on1 into /Managed devices/Scoped"
TR=$(task_create '{"type":"inventory_refresh","group":"/Managed devices"}')
wait_for "on1's run of the recursive task" 30 state_is "$TR" "$ON1" done
TN=$(task_create '{"type":"inventory_refresh","group":"/Managed devices","recursive":false}')
materialised() {
	api GET "/api/v1/tasks/$TN" >/dev/null
	[ "$(json .next_run)" = null ]
}
wait_for "the non-recursive task to be materialised" 30 materialised
assert_eq 0 "$(json '.results | length')" "runs of a non-recursive task for a group without devices"

step "bad inputs"
bad() {
	api POST /api/v1/tasks "$1" >/dev/null
	assert_status "${3:-400}" "POST /tasks $1"
	assert_error_body "POST /tasks $1"
	assert_contains "$(json .error.message)" "$2" "the message of POST /tasks $1"
}
bad '{' body
bad '[]' body
bad '' body
bad '{"group":"/Unassigned devices"}' type
bad '{"type":7,"group":"/Unassigned devices"}' type
bad '{"type":"inventory_refresh"}' group
bad "{\"type\":\"inventory_refresh\",\"group\":\"/Unassigned devices\",\"devices\":[\"$ON1\"]}" group
bad '{"type":"inventory_refresh","devices":[]}' devices
bad '{"type":"inventory_refresh","devices":["nope"]}' 'devices[0]'
bad '{"type":"inventory_refresh","devices":"x"}' devices
bad '{"type":"inventory_refresh","group":"/Unassigned devices","extra":1}' extra
bad '{"type":"inventory_refresh","group":"/Unassigned devices","recursive":"yes"}' recursive
bad '{"type":"inventory_refresh","group":"/Unassigned devices","params":{"x":1}}' params.x
bad '{"type":"inventory_refresh","group":"/Unassigned devices","params":[]}' params
bad '{"type":"run_command","group":"/Unassigned devices"}' params.command
bad '{"type":"run_command","group":"/Unassigned devices","params":{"command":""}}' params.command
bad "{\"type\":\"run_command\",\"group\":\"/Unassigned devices\",\"params\":{\"command\":\"$(head -c 4097 /dev/zero | tr '\0' x)\"}}" params.command
bad '{"type":"run_command","group":"/Unassigned devices","params":{"command":"true","timeout_s":0}}' params.timeout_s
bad '{"type":"run_command","group":"/Unassigned devices","params":{"command":"true","timeout_s":3601}}' params.timeout_s
bad '{"type":"inventory_refresh","group":"/Unassigned devices","schedule":"later"}' schedule
bad '{"type":"inventory_refresh","group":"/Unassigned devices","schedule":{"every_s":59}}' schedule.every_s
bad '{"type":"inventory_refresh","group":"/Unassigned devices","schedule":{"at":"tomorrow"}}' schedule.at
bad '{"type":"inventory_refresh","group":"/Unassigned devices","schedule":{"at":"2026-13-01T00:00:00Z"}}' schedule.at
bad '{"type":"inventory_refresh","group":"/Unassigned devices","schedule":{"when":1}}' schedule.when
bad '{"type":"inventory_refresh","group":"/Unassigned devices","expires_s":0}' expires_s
bad '{"type":"inventory_refresh","group":"/Unassigned devices","name":""}' name
bad '{"type":"inventory_refresh","group":"nowhere"}' group
bad '{"type":"inventory_refresh","group":"/No such group"}' group 404
bad '{"type":"inventory_refresh","devices":["00000000-0000-4000-8000-000000000000"]}' devices 404
api GET /api/v1/tasks/999999 >/dev/null
assert_status 404 "GET /tasks/999999"
api GET /api/v1/tasks/abc >/dev/null
assert_status 404 "GET /tasks/abc"
api DELETE /api/v1/tasks/999999 >/dev/null
assert_status 404 "DELETE /tasks/999999"
api GET "/api/v1/tasks?limit=0" >/dev/null
assert_status 400 "GET /tasks?limit=0"
api GET "/api/v1/tasks?cursor=zz" >/dev/null
assert_status 400 "GET /tasks?cursor=zz"
assert_eq 0 "$(pg_sql "SELECT count(*) FROM tasks WHERE id > $TN")" "nothing stored by bad requests"

agent_stop on1
canopyd_stop
