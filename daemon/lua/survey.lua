-- needs: _time _report
-- Records what the customer answered a satisfaction survey about a resolved conversation (docs/routing.md
-- "Surveys"): CSAT 1..5, CES 1..7, NPS 0..10, any of them ("" for one not given; at least one given). Each is
-- recorded once: the same score again changes nothing, another one is refused, so a survey tool that resends
-- cannot count twice and a later answer cannot rewrite an earlier one. Counted in the SLA report (_report.lua)
-- on the day it is recorded, under the team that held the conversation when it was resolved (`resolved_team`,
-- "-" when none) and its channel: csat, csat_sum, csat_satisfied (4 or 5); ces, ces_sum; nps, nps_promoters
-- (9, 10), nps_detractors (0..6).
-- outcome: "recorded" (at least one score new), "already" (each given score recorded before, the same),
-- "not found" (no such conversation: never, or archived: gone from Redis or claimed for the archive), "not
-- resolved" (open, or merged into another: a survey is of a resolved conversation), "surveyed" (a score given
-- differs from the one recorded; nothing recorded) with detail "csat 4" (the measure and the score recorded); else
-- detail "".
-- @args prefix:str conversation:str who:str now:int csat:str ces:str nps:str
-- @reply outcome:str detail:str
local cv, now = A.conversation, A.now
local ck = K.conversation(cv)
local MEASURES = { { 'csat', 1, 5 }, { 'ces', 1, 7 }, { 'nps', 0, 10 } }
local given = { A.csat, A.ces, A.nps }
local any = false
for i, m in ipairs(MEASURES) do
  local v = given[i]
  if v ~= '' then
    local n = v:match('^%d%d?$') and tonumber(v)
    if not n or n < m[2] or n > m[3] then
      return redis.error_reply('ERR survey: ' .. m[1] .. ' is ' .. m[2] .. '..' .. m[3] .. ', not "' .. v:sub(1, 20) .. '"')
    end
    given[i], any = n, true
  else
    given[i] = nil
  end
end
if not any then return redis.error_reply('ERR survey: no score given (csat, ces or nps)') end
local f = redis.call('HMGET', ck, 'status', 'resolved_team', 'channel', 'csat', 'ces', 'nps',
                     'archive_claimed_at', 'resolved_owner')
-- Claimed for the archive once (archive_claim.lua: its retention.resolved is over): its record is being written,
-- or was (a claim released after a failed batch, or one whose router died after its fsync, whose record the next
-- claim finds and does not write again). A score written now would be in no record once it leaves Redis: it is
-- archived as far as a survey goes.
if not f[1] or f[7] then return { 'not found', '' } end
if f[1] ~= 'resolved' then return { 'not resolved', '' } end
local new = false
for i, m in ipairs(MEASURES) do
  local had = f[3 + i] and tonumber(f[3 + i])
  if given[i] and had and had ~= given[i] then return { 'surveyed', m[1] .. ' ' .. had } end
  if given[i] and had then given[i] = nil end -- recorded before: nothing to add
  if given[i] then new = true end
end
if not new then return { 'already', '' } end
local set, counts, ev = { 'surveyed_at', A.now_text }, {}, {}
local function count(counter, n) counts[#counts + 1] = counter; counts[#counts + 1] = n end
for i, m in ipairs(MEASURES) do
  local v = given[i]
  if v then
    set[#set + 1], set[#set + 2] = m[1], v
    ev[#ev + 1], ev[#ev + 2] = m[1], v
    count(m[1], 1)
    if m[1] == 'nps' then
      if v >= 9 then count('nps_promoters', 1) elseif v <= 6 then count('nps_detractors', 1) end
    else
      count(m[1] .. '_sum', v)
      if m[1] == 'csat' and v >= 4 then count('csat_satisfied', 1) end
    end
  end
end
redis.call('HSET', ck, unpack(set))
report(now, f[2] or nil, f[3] or nil, unpack(counts))
agent_report(f[8] or nil, unpack(counts))
redis.call('HINCRBY', K.stats(), 'surveys', '1')
event('surveyed', 'conversation', cv, 'by', A.who, unpack(ev))
return { 'recorded', '' }
