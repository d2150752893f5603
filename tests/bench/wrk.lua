-- tally bench - what one wrk load sends, and the one line it reports.
--
-- BENCH_WRK_MODE (environment) chooses the requests:
--   get         the URL's path, GET (the default)
--   post        POST with an empty body ("Content-Length: 0")
--   post-keyed  the same, each with its own Idempotency-Key header: 32
--               random hex digits (as a client's random UUID spreads its
--               keys over the whole key index), then the run, the
--               thread and the request's number (so no two are alike)
--   mixed       GET /time, /read, /healthz, /livez and POST /write in turn
--               (/metrics is on the internal listener, not the public one)
-- BENCH_RUN_ID makes the keys unique across runs.
--
-- At the end wrk prints, tab-separated after the word "bench-result":
-- duration_us requests ok connect_errors read_errors write_errors
-- status_errors timeouts p50_us p99_us p999_us
-- where "ok" counts 200 answers in the post modes (response() sees each
-- status) and answers without an error status in the others (counting
-- them would slow wrk down: response() makes it parse every answer).

local mode = os.getenv("BENCH_WRK_MODE") or "get"
local run_id = os.getenv("BENCH_RUN_ID") or tostring(os.time())
local threads = {}

local counting = mode == "post" or mode == "post-keyed"

if counting then
	wrk.method = "POST"
	wrk.body = "" -- wrk.format then sends "Content-Length: 0"
end

-- Runs in the setup state: remembers each thread to sum its counts.
function setup(thread)
	table.insert(threads, thread)
	thread:set("thread_no", #threads)
end

if counting then
	ok = 0
	function response(status)
		if status == 200 then
			ok = ok + 1
		end
	end
end

if mode == "post-keyed" then
	local suffix, sent = "", 0
	local function hex16()
		return string.format("%04x", math.random(0, 0xffff))
	end
	function init()
		suffix = string.format("-bench-%s-%d-", run_id, thread_no)
		math.randomseed(os.time() + thread_no)
	end
	function request()
		sent = sent + 1
		local key = hex16() .. hex16() .. hex16() .. hex16() .. hex16() ..
			hex16() .. hex16() .. hex16() .. suffix .. sent
		return wrk.format(nil, nil, { ["Idempotency-Key"] = key })
	end
end

if mode == "mixed" then
	local requests, turn = {}, 0
	function init()
		requests = {
			wrk.format("GET", "/time", {}, nil),
			wrk.format("GET", "/read", {}, nil),
			wrk.format("POST", "/write", {}, ""),
			wrk.format("GET", "/healthz", {}, nil),
			wrk.format("GET", "/livez", {}, nil),
		}
	end
	function request()
		turn = turn % #requests + 1
		return requests[turn]
	end
end

local function counted_ok(summary)
	if not counting then
		return summary.requests - summary.errors.status
	end
	local sum = 0
	for _, thread in ipairs(threads) do
		sum = sum + (thread:get("ok") or 0)
	end
	return sum
end

function done(summary, latency)
	local e = summary.errors
	io.write(string.format(
		"bench-result\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n",
		summary.duration, summary.requests, counted_ok(summary),
		e.connect, e.read, e.write, e.status, e.timeout,
		latency:percentile(50), latency:percentile(99),
		latency:percentile(99.9)))
end
