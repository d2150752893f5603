-- tally - header-names.lua: refuses a request on an API path whose
-- header names hold a character other than a letter, a digit or '-'.
--
-- lighttpd hands headers to a FastCGI responder as HTTP_NAME, every
-- character that is not a letter or a digit turned into '_'. So
-- "X_Forwarded_For", "X.Forwarded.For" and "X~Forwarded~For" all arrive
-- as HTTP_X_FORWARDED_FOR, and the responder cannot tell them from the
-- real X-Forwarded-For (or Idempotency-Key, X-Request-Id). Such a name is
-- refused before the responder sees it, with 400 JSON naming the header,
-- as Apache and nginx (underscores_in_headers off) keep them from CGI.
-- Run by mod_magnet (magnet.attract-raw-url-to, see lighttpd.conf).

local r = lighty.r
for name in pairs(r.req_header) do
  if name:find("[^%w-]") then
    -- the name goes into the body through %q-free JSON: only printable
    -- ASCII other than '"' and '\' is kept, the rest becomes '?'
    local shown = name:gsub('[^%w!#$%%&\'*+.^_`|~-]', '?')
    r.resp_header["Content-Type"] = "application/json"
    r.resp_header["Cache-Control"] = "no-store"
    r.resp_header["X-Content-Type-Options"] = "nosniff"
    r.resp_body:set({ '{"error":"bad request: the header name ', shown,
      ' holds a character other than a letter, a digit or \'-\';',
      ' a FastCGI responder cannot tell it from the header spelled',
      ' with \'-\': send that one"}\n' })
    return 400
  end
end
return 0
