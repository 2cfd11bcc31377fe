-- wrk: POST /api/leads with a new company per request (no dedup hits).
local token = os.getenv("TOKEN")
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"channel":"website","company_name":"PT Bench %d-%d-%d","contact_name":"Budi","contact_email":"budi%d.%d@bench.co.id"}',
    tid or 0, counter, math.random(1, 1000000000), tid or 0, counter)
  return wrk.format("POST", "/api/leads", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end
