-- tally - cors.lua: which pages of other origins may use the API
-- (Cross-Origin Resource Sharing, the Fetch standard). Run by mod_magnet
-- on the API paths twice (lighttpd.conf): before the request is routed
-- (magnet.attract-raw-url-to) and when its answer starts
-- (magnet.attract-response-start-to), so that every answer carries the
-- headers: the responders' and lighttpd's own (404, 405, 503...).
-- lighttpd's own 503s get the Retry-After the responders' carry too
-- (TALLY_RETRY_AFTER, which scripts/lib.sh checked and exported).
--
-- Reads (GET, HEAD) are open to every origin: Access-Control-Allow-Origin
-- is "*". Any other method, a write, is allowed from the origins listed
-- in TALLY_CORS_WRITE_ORIGINS (lighttpd's environment; scripts/lib.sh,
-- tally_cors_origins, checked it at start-up): "*" for every origin, or
-- exact origins separated by commas; the answer then names the origin.
-- A write from any other origin is refused with 403 before it reaches
-- a responder, without CORS headers: a browser does not preflight a
-- "simple" POST, so refusing to share the answer would not be enough.
-- A page of tally's own (the Origin's host is the request's Host,
-- whatever the scheme a proxy in front terminates) is not cross-origin.
--
-- A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
-- answered here, 204 with the Access-Control-Allow-* headers when the
-- origin may use the method it names, 403 without them otherwise; it
-- never reaches a responder. A plain OPTIONS is an ordinary request: the
-- responder's 405 with Allow.

local r = lighty.r
local req = r.req_header
local method = r.req_attr["request.method"]
local origin = req["Origin"]

local READ = { GET = true, HEAD = true }
-- request headers a page may send, and answer headers it may read
local ALLOW_HEADERS = "Content-Type, Idempotency-Key, X-Request-Id, traceparent"
local EXPOSE_HEADERS = "Retry-After, Idempotent-Replayed, RateLimit-Policy, RateLimit"

-- The answer's Access-Control-Allow-Origin for a request by method m
-- from origin o, or nil if that origin may not.
local function allowed(m, o)
  if READ[m] then
    return "*"
  end
  local list = os.getenv("TALLY_CORS_WRITE_ORIGINS") or ""
  if list == "*" then
    return "*"
  end
  for entry in list:gmatch("[^,]+") do
    if entry == o then
      return o
    end
  end
  return nil
end

-- Is the Origin tally's own (the page it serves)?
local function own(o)
  local host = req["Host"]
  return host ~= nil and o:match("^%a+://(.*)$") == host:lower()
end

-- Adds a name to the answer's Vary.
local function vary(name)
  local v = r.resp_header["Vary"]
  r.resp_header["Vary"] = v and (v .. ", " .. name) or name
end

local function refuse(what)
  r.resp_header["Content-Type"] = "application/json"
  r.resp_header["Cache-Control"] = "no-store"
  r.resp_header["X-Content-Type-Options"] = "nosniff"
  r.resp_body:set({ '{"error":"forbidden: ', what, ' from this origin',
    ' is not allowed (TALLY_CORS_WRITE_ORIGINS)"}\n' })
  return 403
end

if r.req_item.http_status == 0 then
  -- before the request is routed
  if origin == nil then
    return 0
  end
  local wanted = req["Access-Control-Request-Method"]
  if method == "OPTIONS" and wanted ~= nil then
    local h = r.resp_header
    h["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    local allow = allowed(wanted, origin)
    if allow == nil then
      return refuse("a cross-origin " .. (wanted:match("^%u+$") or "request"))
    end
    h["Access-Control-Allow-Origin"] = allow
    -- the methods the API has that this origin may use (a method the
    -- API lacks is then not among them: the browser stops there)
    h["Access-Control-Allow-Methods"] =
      allowed("POST", origin) and "GET, HEAD, POST" or "GET, HEAD"
    h["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    h["Access-Control-Max-Age"] = "600"
    h["Cache-Control"] = "no-store"
    h["X-Content-Type-Options"] = "nosniff"
    return 204
  end
  if not READ[method] and method ~= "OPTIONS" and allowed(method, origin) == nil
      and not own(origin) then
    return refuse("a cross-origin " .. method)
  end
  return 0
end

-- the answer starts; a preflight's is complete
if method == "OPTIONS" and origin ~= nil and
    req["Access-Control-Request-Method"] ~= nil then
  return 0
end
-- lighttpd's own 503 (the responder is not running, or its backlog is
-- full) says when to try again, as the responders' 503s do
if r.req_item.http_status == 503 and r.resp_header["Retry-After"] == nil then
  r.resp_header["Retry-After"] = os.getenv("TALLY_RETRY_AFTER")
end
vary("Origin")
if origin ~= nil then
  local allow = allowed(method == "OPTIONS" and "GET" or method, origin)
  if allow ~= nil then
    r.resp_header["Access-Control-Allow-Origin"] = allow
    r.resp_header["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
  end
end
return 0
