-- wrk script: POST /orders with a unique body per request and a customer token chosen
-- round-robin from a file (one token per line), then a summary of answers by status.
--
--   wrk -t2 -c32 -d20s --latency -s bench/orders.lua http://127.0.0.1:8080 -- tokens.txt
--
-- Every body is different (the shipping address carries the thread number and a counter), so
-- no request is an idempotent replay; items use demo-catalog prices (product-1..3), so every
-- order is valid and below the simulated gateway's decline limit. The last line printed is
--   orders.lua: 2xx=<n> 429=<n> non_2xx=<n> socket_errors=<n>
-- which bench/run-orders.sh reads.

local threads = {}
local next_id = 1

-- Runs in the main state once per thread before it starts.
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local products = {
  { id = "product-1", name = "MacBook Pro", price = 1500000 },
  { id = "product-2", name = "Magic Mouse", price = 99000 },
  { id = "product-3", name = "USB-C Hub", price = 59000 },
}

local tokens = {}
local counter = 0
local prefix = ""
ok_2xx = 0
status_429 = 0
non_2xx = 0

-- Runs in each thread's state: reads the token file named after "--".
function init(args)
  local path = args[1]
  if path == nil then
    error("orders.lua: pass the token file after --, e.g. -- tokens.txt")
  end
  local f = io.open(path, "r")
  if f == nil then
    error("orders.lua: cannot open token file " .. path)
  end
  for line in f:lines() do
    if #line > 0 then
      table.insert(tokens, line)
    end
  end
  f:close()
  if #tokens == 0 then
    error("orders.lua: no tokens in " .. path)
  end
  math.randomseed(os.time() + (id or 0) * 7919)
  prefix = string.format("bench-%d-%06d", id or 0, math.random(0, 999999))
  counter = (id or 0) -- spreads the threads over the token list
end

function request()
  counter = counter + 1
  local token = tokens[(counter % #tokens) + 1]
  local p = products[(counter % #products) + 1]
  local body = string.format(
    '{"items":[{"productId":"%s","productName":"%s","quantity":1,"price":%d}],'
      .. '"shippingAddress":"%s-%d"}',
    p.id, p.name, p.price, prefix, counter)
  return wrk.format("POST", "/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok_2xx = ok_2xx + 1
  else
    non_2xx = non_2xx + 1
    if status == 429 then
      status_429 = status_429 + 1
    end
  end
end

-- Runs in the main state after the run: sums the threads' counters.
function done(summary, latency, requests)
  local ok, limited, bad = 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + (t:get("ok_2xx") or 0)
    limited = limited + (t:get("status_429") or 0)
    bad = bad + (t:get("non_2xx") or 0)
  end
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format("orders.lua: 2xx=%d 429=%d non_2xx=%d socket_errors=%d\n",
    ok, limited, bad, socket_errors))
  io.write(string.format("orders.lua: requests=%d duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99)))
end
