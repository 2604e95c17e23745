-- wrk script: POST Sentry envelopes with a fresh event_id per request, count responses by status.
-- Configured through environment variables (set by bench/ingest_bench.sh):
--   BENCH_PATH      request path, e.g. /api/1/envelope/
--   BENCH_AUTH      X-Sentry-Auth header value
--   BENCH_UA        User-Agent header value
--   BENCH_MODE      "gzip-template": BENCH_BODY is a spec written by lib/gzip_template.py: deflated segments between
--                   the event_id occurrences; the fresh id goes in as raw stored blocks and the gzip CRC is patched
--                   from a table (unbounded unique ids, gzip as the SDK sends it, no recompression)
--                   "template": BENCH_BODY is an uncompressed envelope; every occurrence of BENCH_EVENT_ID is
--                   replaced by a fresh 32-hex id per request (unbounded, no Content-Encoding)
--                   "pool": BENCH_BODY is a pool file of pre-built (gzip) bodies, each with its own event_id,
--                   records are "%08d<len>" + bytes; each thread uses a disjoint slice; wraps (= duplicate ids)
--                   are counted in the result as pool_wraps
--   BENCH_BODY, BENCH_EVENT_ID, BENCH_ENCODING (Content-Encoding for pool/gzip-template, e.g. gzip), BENCH_NONCE (8 hex)
--   BENCH_RATE      optional: target requests/s over all threads. Each thread hands out send slots 1/rate apart
--                   (delay() before each request), so the load is paced instead of as-fast-as-possible; the
--                   connections still wait for their answers (a slow server lowers the achieved rate)
--   BENCH_RESULT    path of the JSON summary written by done()

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function split_plain(s, sep)
  local parts, start = {}, 1
  while true do
    local i, j = string.find(s, sep, start, true)
    if not i then break end
    table.insert(parts, string.sub(s, start, i - 1))
    start = j + 1
  end
  table.insert(parts, string.sub(s, start))
  return parts
end

-- records of "%08d" length + bytes
local function read_records(path)
  local recs = {}
  local f = assert(io.open(path, "rb"))
  while true do
    local len = f:read(8)
    if not len or #len < 8 then break end
    table.insert(recs, f:read(tonumber(len)))
  end
  f:close()
  return recs
end

local function now_s()
  bench_clock(1, bench_ts)  -- CLOCK_MONOTONIC
  return tonumber(bench_ts.tv_sec) + tonumber(bench_ts.tv_nsec) / 1e9
end

function init(args)
  counts = {}
  sent = 0
  pool_wraps = 0
  local mode = os.getenv("BENCH_MODE") or "template"
  local headers = {
    ["Content-Type"] = "application/x-sentry-envelope",
    ["X-Sentry-Auth"] = os.getenv("BENCH_AUTH"),
    ["User-Agent"] = os.getenv("BENCH_UA") or "sentry.python/2.75.0",
    ["Accept-Encoding"] = "identity",
  }
  bench_path = os.getenv("BENCH_PATH")
  bench_headers = headers
  bench_mode = mode
  nonce = os.getenv("BENCH_NONCE") or "00000000"
  local enc = os.getenv("BENCH_ENCODING")
  if mode ~= "template" and enc and enc ~= "" and enc ~= "identity" then headers["Content-Encoding"] = enc end
  if mode == "template" then
    parts = split_plain(read_file(os.getenv("BENCH_BODY")), os.getenv("BENCH_EVENT_ID"))
  elseif mode == "gzip-template" then
    local recs = read_records(os.getenv("BENCH_BODY"))
    local k, crc_hex = string.match(recs[1], "^(%d+) (%x+)")
    k = tonumber(k)
    crc_base = tonumber(crc_hex, 16)
    segs = {}
    for i = 1, k + 1 do segs[i] = recs[1 + i] end
    isize = recs[k + 3]
    crc_table = {}
    local i = 0
    for line in string.gmatch(recs[k + 4], "[^\n]+") do
      i = i + 1
      local row, j = {}, 0
      for v in string.gmatch(line, "%x+") do
        row[string.byte("0123456789abcdef", j + 1)] = tonumber(v, 16)
        j = j + 1
      end
      crc_table[i] = row
    end
    body_parts = {}
  else
    local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
    pool = {}
    local k = 0
    for _, body in ipairs(read_records(os.getenv("BENCH_BODY"))) do
      if k % nthreads == tid then table.insert(pool, body) end
      k = k + 1
    end
    pool_i = 0
  end
  local rate = tonumber(os.getenv("BENCH_RATE") or "")
  if rate and rate > 0 then
    local ffi = require("ffi")
    ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
               int clock_gettime(int clk, bench_timespec_t *tp); ]]
    bench_ts = ffi.new("bench_timespec_t")
    bench_clock = ffi.C.clock_gettime
    slot_interval = tonumber(os.getenv("BENCH_THREADS") or "1") / rate
    next_slot = nil
  end
end

if os.getenv("BENCH_RATE") and tonumber(os.getenv("BENCH_RATE")) and tonumber(os.getenv("BENCH_RATE")) > 0 then
  -- milliseconds to wait before this connection sends its next request: the next free send slot of this thread
  function delay()
    local now = now_s()
    if next_slot == nil or next_slot < now - 0.05 then next_slot = now end  -- no credit for >50 ms of lag
    local wait = next_slot - now
    next_slot = next_slot + slot_interval
    if wait <= 0 then return 0 end
    return math.floor(wait * 1000 + 0.5)
  end
end

local function fresh_id()
  return nonce .. string.format("%04x", tid) .. "000000000000" .. string.format("%08x", sent)
end

function request()
  sent = sent + 1
  local body
  if bench_mode == "template" then
    body = table.concat(parts, fresh_id())
  elseif bench_mode == "gzip-template" then
    local id = fresh_id()
    local crc = crc_base
    local byte, bxor, band, rshift = string.byte, bit.bxor, bit.band, bit.rshift
    for i = 1, 32 do crc = bxor(crc, crc_table[i][byte(id, i)]) end
    body = table.concat(segs, id) .. string.char(band(crc, 255), band(rshift(crc, 8), 255),
      band(rshift(crc, 16), 255), band(rshift(crc, 24), 255)) .. isize
  else
    pool_i = pool_i + 1
    if pool_i > #pool then pool_i = 1; pool_wraps = pool_wraps + 1 end
    body = pool[pool_i]
  end
  return wrk.format("POST", bench_path, bench_headers, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local by_status = {}
  local wraps = 0
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do by_status[k] = (by_status[k] or 0) + v end
    wraps = wraps + (t:get("pool_wraps") or 0)
  end
  local st = {}
  for k, v in pairs(by_status) do table.insert(st, string.format('"%d": %d', k, v)) end
  local pct = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    table.insert(pct, string.format('"p%s": %.3f', tostring(p), latency:percentile(p) / 1000.0))
  end
  local e = summary.errors
  local out = string.format(
    '{"duration_s": %.3f, "requests": %d, "bytes_read": %d, "by_status": {%s}, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "non_2xx_3xx": %d, ' ..
    '"latency_ms": {%s, "mean": %.3f, "max": %.3f, "stdev": %.3f}, "pool_wraps": %d}',
    summary.duration / 1e6, summary.requests, summary.bytes, table.concat(st, ", "),
    e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(pct, ", "), latency.mean / 1000.0, latency.max / 1000.0, latency.stdev / 1000.0, wraps)
  local path = os.getenv("BENCH_RESULT")
  if path then
    local f = assert(io.open(path, "w")); f:write(out .. "\n"); f:close()
  end
  io.write(out .. "\n")
end
