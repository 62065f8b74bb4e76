-- The plan: what plan.c writes and assign.lua and drain.lua read, declared once here. scripts/embed-lua gives
-- the same two lines to C (LUA_PLAN_SPEC, LUA_PLAN_TARGET_SPEC: plan.c's output is checked against them
-- in tests/unit/daemon/test_plan.c) and the tests read them too (lua_contract.py). Types: str, int, bool,
-- obj (any JSON object), [str] (array of strings), [target] (array of targets); "?" before a name: may be
-- absent; "=value" after the type: may be absent, and then reads as that value (plan.c leaves such a field out
-- when it has that value: most of a target's fields, on most plans, so a plan is about half the JSON to
-- decode). Fields not declared are refused, so the two sides cannot drift apart unnoticed.
local PLAN_SPEC = 'conv:str version:str channel:str category:str prio:int tier:str reason:str ?rule:str ?queue:str now:int due:int escalate_at:int targets:[target] ?prefer:str ?exclude:str skills:[str]=[] trace:obj aging:int valid_until:int=-1 ?unservable:str ?record:str from:int=0 ?transfer:str'
local PLAN_TARGET_SPEC = 'i:int team:str strategy:str timeout:int=0 queue_below:int=0 wait_below:int=0 handle_time:int max_concurrent:int=0 quota:int=0 day:str= everyone:bool=false agents:[str]=[] team_level:bool=false accept_timeout:int auto_accept:bool=false'

-- The checks, as straight-line Lua that scripts/embed-lua writes from the declarations in place of each
-- `checker(...)` line below (a loop over a table of fields cost twice as much: this runs for every decision).
-- A checked document: every declared field present (unless "?") and of its type, no other field; the first
-- fault is an error reply naming the script and the field: nothing is written.
local null, type = cjson.null, type
local function check_bad(script, where, why) error({ err = 'ERR ' .. script .. ': ' .. where .. why }) end
local check_target = checker(PLAN_TARGET_SPEC)
local check_plan_doc = checker(PLAN_SPEC, check_target)

-- Refuses (an error reply, nothing written) a plan that does not match the declaration.
local function check_plan(script, plan) check_plan_doc(script, 'plan', plan) end
