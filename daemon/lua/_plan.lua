-- The plan: what plan.c writes and assign.lua and drain.lua read, declared once here. scripts/embed-lua gives
-- the same two lines to C (LUA_PLAN_SPEC, LUA_PLAN_TARGET_SPEC: plan.c's output is checked against them
-- in tests/unit/daemon/test_plan.c) and the tests read them too (lua_contract.py). Types: str, int, bool,
-- obj (any JSON object), [str] (array of strings), [target] (array of targets); "?" before a name: may be
-- absent. Fields not declared are refused, so the two sides cannot drift apart unnoticed.
local PLAN_SPEC = 'conv:str version:str channel:str category:str prio:int tier:str reason:str ?rule:str ?queue:str now:int due:int escalate_at:int targets:[target] ?prefer:str ?exclude:str skills:[str] trace:obj aging:int valid_until:int ?unservable:str'
local PLAN_TARGET_SPEC = 'i:int team:str strategy:str timeout:int queue_below:int wait_below:int handle_time:int max_concurrent:int quota:int day:str everyone:bool agents:[str] team_level:bool accept_timeout:int auto_accept:bool'

-- The declarations as tables: scripts/embed-lua writes each `fields_of(SPEC)` line as a table literal, because
-- matching the spec's text with patterns on every call cost more than the rest of a decision's checks.
local PLAN_FIELDS = fields_of(PLAN_SPEC)
local PLAN_TARGET_FIELDS = fields_of(PLAN_TARGET_SPEC)

local function check_fields(script, where, doc, spec)
  local function bad(why) error({ err = 'ERR ' .. script .. ': ' .. where .. why }) end
  if type(doc) ~= 'table' then bad(': not an object') end
  for _, f in ipairs(spec.fields) do
    local name, ty = f[1], f[2]
    local v = doc[name]
    if v == nil or v == cjson.null then
      if not f[3] then bad('.' .. name .. ': missing') end
    elseif ty == 'str' then if type(v) ~= 'string' then bad('.' .. name .. ': not a string') end
    elseif ty == 'int' then if type(v) ~= 'number' or v ~= math.floor(v) then bad('.' .. name .. ': not an integer') end
    elseif ty == 'bool' then if type(v) ~= 'boolean' then bad('.' .. name .. ': not true or false') end
    elseif ty == 'obj' then if type(v) ~= 'table' then bad('.' .. name .. ': not an object') end
    else -- an array, of strings or of targets
      if type(v) ~= 'table' then bad('.' .. name .. ': not an array') end
      for i, e in ipairs(v) do
        if ty == '[str]' and type(e) ~= 'string' then bad('.' .. name .. '[' .. i .. ']: not a string') end
        if ty == '[target]' then check_fields(script, where .. '.' .. name .. '[' .. i .. ']', e, PLAN_TARGET_FIELDS) end
      end
    end
  end
  for name in pairs(doc) do
    if not spec.known[name] then bad('.' .. tostring(name) .. ': not a plan field') end
  end
end

-- Refuses (an error reply, nothing written) a plan that does not match the declaration.
local function check_plan(script, plan) check_fields(script, 'plan', plan, PLAN_FIELDS) end
