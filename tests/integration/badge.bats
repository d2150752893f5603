#!/usr/bin/env bats
# tally - badges: GET /badge.svg and /badge/NAME.svg (docs/api.md,
# "Badges"): the counter's value as an SVG image, well-formed (xmllint),
# label and colour from the query, checked (400 JSON) and escaped (no
# markup from the query reaches the SVG), the headers another site's
# page needs to embed it, ETag and If-None-Match (304), a badge for a
# counter that does not exist, HEAD, 405, and the database down.

load ../lib/helpers

setup_file() {
	require_tool xmllint "apt-get install libxml2-utils" || return 0
	# shellcheck disable=SC2119 # no database named: a private cluster
	tally_stack_start
}

# The rules a 400 states (src/badge.h).
LABEL_RULE="label is 1 to 40 characters of UTF-8 text, no control characters"
COLOR_RULE="color is one of brightgreen, green, yellowgreen, yellow, orange, red, blue, lightgrey, grey, or 3 or 6 hex digits (0a7, 00aa77)"
QUERY_RULE="the query is label=TEXT and color=COLOR, each at most once, %-encoded"
NAME_RULE="a counter's name is a key or a namespace and a key, separated by one '/' (/read/visits, /read/example.com/visits): each 1 to 64 of A-Z a-z 0-9 . _ - and neither '.' nor '..'"

# named_value NAME: the counter's value in the database ("" if none).
named_value() {
	psql_tally "SELECT value FROM tally_counter WHERE name = '$1'"
}

# svg_xpath EXPR: EXPR evaluated on the last answer's body (namespaces
# ignored through local-name()).
svg_xpath() {
	xmllint --xpath "$1" - <<<"$HTTP_BODY"
}

# The texts of the last badge: its title ("label: value"), then the
# texts drawn, one a line.
badge_title() { svg_xpath 'string(/*[local-name()="svg"]/*[local-name()="title"])'; }
badge_texts() {
	local i n
	n=$(svg_xpath 'count(//*[local-name()="text"])')
	for ((i = 1; i <= n; i++)); do
		# xmllint ends each string with a newline
		svg_xpath "string((//*[local-name()=\"text\"])[$i])"
	done
}

# The shape of the last badge: its elements' names, then its attributes'
# names, in document order, one a line (the values left out).
badge_shape() {
	python3 -c '
import sys, xml.etree.ElementTree as ET
for e in ET.fromstring(sys.stdin.read()).iter():
    print(e.tag, *sorted(e.attrib))' <<<"$HTTP_BODY"
}

# assert_badge STATUS VALUE LABEL: the last answer is a well-formed SVG
# badge with the badge's headers, saying LABEL and VALUE.
assert_badge() {
	assert_equal "$HTTP_STATUS" "$1"
	assert_equal "$(header content-type)" "image/svg+xml; charset=utf-8"
	assert_equal "$(header cache-control)" no-cache
	assert_equal "$(header x-content-type-options)" nosniff
	assert_equal "$(header cross-origin-resource-policy)" cross-origin
	assert_equal "$(header content-security-policy)" "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	xmllint --noout - <<<"$HTTP_BODY"
	assert_equal "$(svg_xpath 'name(/*)')" svg
	assert_equal "$(svg_xpath 'namespace-uri(/*)')" http://www.w3.org/2000/svg
	assert_equal "$(badge_title)" "$3: $2"
	assert_equal "$(svg_xpath 'string(/*/@aria-label)')" "$3: $2"
	assert_equal "$(badge_texts)" "$(printf '%s\n' "$3" "$3" "$2" "$2")"
}

@test "the default counter's badge carries its value, as /read and the database have it, and follows writes" {
	local i before
	for i in 1 2; do
		http POST /write -d ''
		assert_equal "$HTTP_STATUS" 200
		before=$(jq -r .counter <<<"$HTTP_BODY")
		http GET /badge.svg -H 'Origin: http://example.org'
		assert_badge 200 "$before" counter
		assert_equal "$(counter_value)" "$before"
		# embeddable from any origin, like every read
		assert_equal "$(header access-control-allow-origin)" '*'
		[[ $(header etag) =~ ^\"b[0-9a-f]{16}\"$ ]]
		http GET /read
		assert_equal "$HTTP_BODY" "{\"counter\":$before}"
	done
	# the JSON answers keep their own policy
	assert_equal "$(header cross-origin-resource-policy)" same-origin
	assert_equal "$(header cache-control)" no-store
}

@test "a named counter's badge, a name with a namespace too; an unknown one gets a badge saying so (404)" {
	local i
	http GET /badge/mysite.com/visits.svg
	assert_badge 404 "not found" counter
	assert_equal "$(header etag)" ""
	for i in 1 2 3; do
		http POST /write/mysite.com/visits -d ''
	done
	http GET '/badge/mysite.com/visits.svg?label=visits'
	assert_badge 200 3 visits
	assert_equal "$(named_value mysite.com/visits)" 3
	http GET /badge/mysite.com.svg
	assert_badge 404 "not found" counter
	http POST /write/hits -d ''
	http GET '/badge/hits.svg?color=green'
	assert_badge 200 1 counter
	grep -q 'fill="#97ca00"' <<<"$HTTP_BODY"
	# the longest name there is
	local key
	key=$(printf 'k%.0s' {1..64})
	http POST "/write/$key/$key" -d ''
	assert_equal "$HTTP_STATUS" 200
	http GET "/badge/$key/$key.svg"
	assert_badge 200 1 counter
}

@test "a badge's name follows the counters' grammar (400 JSON stating it); a path without .svg is no badge (404)" {
	local path
	for path in /.svg /a/b/c.svg /a%20b.svg '/a%3Cb.svg' /x/..svg "/$(printf 'a%.0s' {1..65}).svg"; do
		http GET "/badge$path" --path-as-is
		echo "# /badge$path: $HTTP_STATUS $HTTP_BODY" >&3
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$(header content-type)" application/json
		assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "$NAME_RULE"
	done
	http GET /badge/visits
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$(header content-type)" application/json
	assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "not found: a named counter's badge is /badge/NAME.svg"
}

@test "label and color: valid ones are drawn, anything else gets 400 JSON stating the rule" {
	local q forty
	forty=$(printf 'x%.0s' {1..40})
	http GET "/badge.svg?label=$forty&color=0a7"
	assert_badge 200 "$(counter_value)" "$forty"
	grep -q 'fill="#0a7"' <<<"$HTTP_BODY"
	http GET '/badge.svg?label=caf%C3%A9+%E2%9C%93+%E4%B8%AD&color=%2300AA77&v=2'
	assert_badge 200 "$(counter_value)" "café ✓ 中"
	grep -q 'fill="#00aa77"' <<<"$HTTP_BODY"
	# lighttpd refuses an ASCII control character in the URL, %-encoded
	# too, and some bytes that are no UTF-8, before the responder sees
	# them (400 JSON, its own words); the responder refuses the rest
	for q in label=%00 label=a%0Ab label=%7F label=%FF label=%C0%AF \
		label=%ED%A0%80 label=%F4%90%80%80 label=%E2%82; do
		http GET "/badge.svg?$q"
		echo "# ?$q: $HTTP_STATUS $HTTP_BODY" >&3
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$(header content-type)" application/json
		[[ $(jq -r .error <<<"$HTTP_BODY") == "$LABEL_RULE" ||
			$(jq -r .error <<<"$HTTP_BODY") == "bad request: "* ]]
	done
	for q in label= "label=${forty}x" label=%C2%85 label=%EF%BF%BE; do
		http GET "/badge.svg?$q"
		echo "# ?$q: $HTTP_STATUS $HTTP_BODY" >&3
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$(header content-type)" application/json
		assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "$LABEL_RULE"
	done
	for q in color= color=purple color=12345 color=ggg color=%3Cscript%3E \
		color=%23 'color=0a7%22' color=1234567 color=%E2%80%8B; do
		http GET "/badge/hits.svg?$q"
		echo "# ?$q: $HTTP_STATUS $HTTP_BODY" >&3
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "$COLOR_RULE"
	done
	for q in 'label=a&label=b' 'color=red&color=red' label 'color&label=x'; do
		http GET "/badge.svg?$q"
		echo "# ?$q: $HTTP_STATUS $HTTP_BODY" >&3
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "$QUERY_RULE"
	done
	# lighttpd passes a '%' that starts no escape as "%25": it is text
	http GET '/badge.svg?label=100%zz'
	assert_badge 200 "$(counter_value)" "100%zz"
}

@test "no markup from the query reaches the SVG: script, quotes, entities and CDATA ends are text" {
	local label shape enc
	http GET '/badge.svg?label=plain'
	assert_badge 200 "$(counter_value)" plain
	shape=$(badge_shape)
	grep -q '^{http://www.w3.org/2000/svg}text ' <<<"$shape"
	for label in '<script>alert(1)</script>' '"><script>alert(1)</script>' \
		"' onload='alert(1)" '&amp;&lt;&#60;&#x3c;&nbsp;' ']]><x/>' \
		'<![CDATA[<x/>]]>' '<?xml-stylesheet href="x"?>' '<!ENTITY x "y">&x;' \
		'<a href="javascript:x">a</a>' '&' '<' '"' "'"; do
		enc=$(jq -rn --arg s "$label" '$s | @uri')
		http GET "/badge.svg?label=$enc"
		echo "# $label: $HTTP_STATUS" >&3
		assert_badge 200 "$(counter_value)" "$label"
		# the same elements and attributes as for a plain label
		assert_equal "$(badge_shape)" "$shape"
		[[ $HTTP_BODY != *'<script'* && $HTTP_BODY != *'<x/>'* &&
			$HTTP_BODY != *'<![CDATA['* && $HTTP_BODY != *'<?xml-stylesheet'* &&
			$HTTP_BODY != *'<!ENTITY'* && $HTTP_BODY != *'<a '* ]]
	done
}

@test "widths come from the text: a wider label makes a wider badge" {
	local narrow wide
	http GET '/badge.svg?label=iiii'
	narrow=$(svg_xpath 'string(/*/@width)')
	http GET '/badge.svg?label=WWWW'
	wide=$(svg_xpath 'string(/*/@width)')
	echo "# iiii: $narrow px, WWWW: $wide px" >&3
	((wide > narrow + 20))
	# the sections make up the whole: label, then value
	assert_equal "$(svg_xpath 'sum(//*[local-name()="g"][1]/*[local-name()="rect"][position() < 3]/@width)')" "$wide"
}

@test "ETag and If-None-Match: 304 without a body while the badge is the same; a write changes it" {
	local etag etag2
	http POST /write/hits -d ''
	http GET '/badge/hits.svg?label=hits'
	assert_badge 200 "$(named_value hits)" hits
	etag=$(header etag)
	[[ $etag =~ ^\"b[0-9a-f]{16}\"$ ]]
	http GET '/badge/hits.svg?label=hits'
	assert_equal "$(header etag)" "$etag"
	for inm in "$etag" "W/$etag" "\"other\", $etag" '*'; do
		http GET '/badge/hits.svg?label=hits' -H "If-None-Match: $inm"
		echo "# If-None-Match: $inm: $HTTP_STATUS" >&3
		assert_equal "$HTTP_STATUS" 304
		assert_equal "$HTTP_BODY" ""
		assert_equal "$(header etag)" "$etag"
		assert_equal "$(header cache-control)" no-cache
		assert_equal "$(header content-type)" ""
		assert_equal "$(header cross-origin-resource-policy)" cross-origin
	done
	http GET '/badge/hits.svg?label=hits' -H 'If-None-Match: "b0000000000000000"'
	assert_equal "$HTTP_STATUS" 200
	# another label is another badge
	http GET '/badge/hits.svg?label=other' -H "If-None-Match: $etag"
	assert_equal "$HTTP_STATUS" 200
	[[ $(header etag) != "$etag" ]]
	http POST /write/hits -d ''
	http GET '/badge/hits.svg?label=hits' -H "If-None-Match: $etag"
	assert_badge 200 "$(named_value hits)" hits
	etag2=$(header etag)
	[[ $etag2 != "$etag" ]]
	http GET '/badge/hits.svg?label=hits' -H "If-None-Match: $etag2"
	assert_equal "$HTTP_STATUS" 304
}

@test "metrics count the badges by path, 304 among the codes" {
	local etag
	http POST /write/hits -d ''
	http GET /badge/hits.svg
	etag=$(header etag)
	http GET /badge/hits.svg -H "If-None-Match: $etag"
	assert_equal "$HTTP_STATUS" 304
	http GET /badge.svg
	http_internal GET /metrics
	assert_regex "$HTTP_BODY" 'http_requests_total\{path="/badge/",method="GET",code="304"\} [1-9]'
	assert_regex "$HTTP_BODY" 'http_requests_total\{path="/badge/",method="GET",code="200"\} [1-9]'
	assert_regex "$HTTP_BODY" 'http_requests_total\{path="/badge.svg",method="GET",code="200"\} [1-9]'
}

@test "HEAD answers the headers of GET without the body; other methods get 405 with Allow" {
	local length etag
	http POST /write/hits -d ''
	http GET /badge/hits.svg
	length=${#HTTP_BODY}
	etag=$(header etag)
	http HEAD /badge/hits.svg
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" ""
	assert_equal "$(header content-type)" "image/svg+xml; charset=utf-8"
	# the body ends in a newline, which $(...) dropped
	assert_equal "$(header content-length)" "$((length + 1))"
	assert_equal "$(header etag)" "$etag"
	for spec in "POST /badge.svg" "PUT /badge/hits.svg" "DELETE /badge/x.svg"; do
		read -r method path <<<"$spec"
		http "$method" "$path" -d ''
		assert_equal "$HTTP_STATUS" 405
		assert_equal "$(header allow)" "GET, HEAD"
		assert_equal "$HTTP_BODY" '{"error":"method not allowed","allow":["GET","HEAD"]}'
	done
}

@test "database down: badges get 503 JSON with Retry-After, then the value again" {
	local before i
	before=$(counter_value)
	stack_pg_stop fast
	for path in /badge.svg /badge/hits.svg /badge/none.svg; do
		http GET "$path"
		assert_equal "$HTTP_STATUS" 503
		[ -n "$(header retry-after)" ]
		assert_equal "$(header content-type)" application/json
		assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	done
	stack_pg_start
	for i in $(seq 50); do
		answers_200 GET /badge.svg && break
		sleep 0.2
	done
	http GET /badge.svg
	assert_badge 200 "$before" counter
}
