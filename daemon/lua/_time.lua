-- Calendar time in scripts, which have no os.date: UTC only (the routers' clock is ms since the epoch).

-- The UTC date and time of ms since the epoch: year, month, day, hour, minute, second (the days-to-civil
-- conversion of H. Hinnant's "date" algorithms).
local function utc_civil(ms)
  local s = math.floor(ms / 1000)
  local z = math.floor(s / 86400) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local t = s % 86400
  return yoe + era * 400 + (m <= 2 and 1 or 0), m, d, math.floor(t / 3600), math.floor(t % 3600 / 60), t % 60
end

-- "YYYY-MM-DD", the UTC day of ms.
local function utc_day(ms)
  local y, m, d = utc_civil(ms)
  return string.format('%04d-%02d-%02d', y, m, d)
end

-- RFC 3339 (UTC, seconds) of ms.
local function rfc3339(ms)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02dZ', utc_civil(ms))
end
