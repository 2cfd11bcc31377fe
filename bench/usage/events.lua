-- wrk: POST /api/v1/usage-events, BATCH events with ids no request repeats.
local token = os.getenv("TOKEN")
local batch = tonumber(os.getenv("BATCH") or "100")
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function request()
  counter = counter + 1
  local parts = {}
  for i = 1, batch do
    local n = (counter * batch + i)
    if i % 2 == 0 then
      parts[i] = string.format('{"event_id":"w%d-%d-%d","code":"shipped_kg","properties":{"kg":%d.5}}', tid or 0, counter, i, n % 97)
    else
      parts[i] = string.format('{"event_id":"w%d-%d-%d","code":"active_drivers","properties":{"driver":"d%d"}}', tid or 0, counter, i, n % 400)
    end
  end
  return wrk.format("POST", "/api/v1/usage-events", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, '{"events":[' .. table.concat(parts, ",") .. ']}')
end
