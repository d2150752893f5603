/* tally - unit tests for request and response: a real FastCGI request
 * over a unix socket, read by libfcgi and request_init, answered through
 * response.c, and the records read back: status, the headers every
 * answer carries, Content-Length, and a body that is valid JSON whatever
 * the message holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fastcgi.h>
#include <fcgiapp.h>
#include <json-c/json.h>

#include "check.h"
#include "response.h"
#include "stats.h"

/* A listening unix socket, as spawn-fcgi hands one to a responder. */
struct server {
	char	dir[80];
	char	path[96];	/* fits sun_path */
	int	fd;
};

struct answer {
	char	head[4096];	/* the CGI headers, "\r\n" after each */
	char	body[8192];
	size_t	body_len;
};

/* What a test does with the request it receives. */
typedef void	(*answer_fn)(struct request *req, void *arg);

static struct server	srv;

static void
server_open(void)
{
	struct sockaddr_un	sun;
	const char		*tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	CHECK((size_t)snprintf(srv.dir, sizeof(srv.dir),
	    "%s/tally-test-response.XXXXXX", tmp) < sizeof(srv.dir));
	CHECK(mkdtemp(srv.dir) != NULL);
	snprintf(srv.path, sizeof(srv.path), "%s/sock", srv.dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", srv.path);
	srv.fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(srv.fd != -1);
	CHECK_INT(bind(srv.fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	CHECK_INT(listen(srv.fd, 4), 0);
	CHECK_INT(FCGX_Init(), 0);
}

static void
server_close(void)
{
	close(srv.fd);
	unlink(srv.path);
	rmdir(srv.dir);
}

static size_t
put_record(unsigned char *p, int type, const void *content, size_t len)
{
	FCGI_Header	h;

	CHECK(len < 65536);
	memset(&h, 0, sizeof(h));
	h.version = FCGI_VERSION_1;
	h.type = (unsigned char)type;
	h.requestIdB0 = 1;
	h.contentLengthB1 = (unsigned char)(len >> 8);
	h.contentLengthB0 = (unsigned char)len;
	memcpy(p, &h, sizeof(h));
	if (len > 0)
		memcpy(p + sizeof(h), content, len);
	return sizeof(h) + len;
}

/* Connects and sends a whole request, as lighttpd would: BEGIN_REQUEST,
 * the parameters ("NAME=value", short ones), an empty body. */
static int
client_send(const char *const *params)
{
	static unsigned char	 buf[16384];
	static unsigned char	 pairs[8192];
	unsigned char		*q = pairs;
	FCGI_BeginRequestBody	 begin;
	struct sockaddr_un	 sun;
	const char		*eq;
	size_t			 len = 0, nlen, vlen;
	int			 fd;

	for (; *params != NULL; params++) {
		eq = strchr(*params, '=');
		CHECK(eq != NULL);
		nlen = (size_t)(eq - *params);
		vlen = strlen(eq + 1);
		CHECK(nlen < 128 && vlen < 128);
		*q++ = (unsigned char)nlen;
		*q++ = (unsigned char)vlen;
		memcpy(q, *params, nlen);
		memcpy(q + nlen, eq + 1, vlen);
		q += nlen + vlen;
	}
	memset(&begin, 0, sizeof(begin));
	begin.roleB0 = FCGI_RESPONDER;
	len += put_record(buf + len, FCGI_BEGIN_REQUEST, &begin, sizeof(begin));
	len += put_record(buf + len, FCGI_PARAMS, pairs, (size_t)(q - pairs));
	len += put_record(buf + len, FCGI_PARAMS, NULL, 0);
	len += put_record(buf + len, FCGI_STDIN, NULL, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", srv.path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd != -1);
	CHECK_INT(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	CHECK_INT(write(fd, buf, len), len);
	/* All sent: libfcgi, closing, waits for this end to close. */
	CHECK_INT(shutdown(fd, SHUT_WR), 0);
	return fd;
}

/* Reads the STDOUT records up to END_REQUEST; splits headers from body. */
static void
client_receive(int fd, struct answer *a)
{
	static unsigned char	 raw[65536];
	static char		 all[sizeof(a->head) + sizeof(a->body)];
	unsigned char		*p, *next;
	size_t			 len = 0, content, out = 0;
	ssize_t			 n;
	char			*sep;
	int			 ended = 0;

	while ((n = read(fd, raw + len, sizeof(raw) - len)) > 0)
		len += (size_t)n;
	close(fd);
	for (p = raw; p + FCGI_HEADER_LEN <= raw + len; p = next) {
		CHECK_INT(p[0], FCGI_VERSION_1);
		CHECK(!ended);
		content = (size_t)p[4] << 8 | p[5];
		next = p + FCGI_HEADER_LEN + content + p[6];
		CHECK(next <= raw + len);
		if (p[1] == FCGI_END_REQUEST)
			ended = 1;
		if (p[1] != FCGI_STDOUT)
			continue;
		CHECK(out + content < sizeof(all));
		memcpy(all + out, p + FCGI_HEADER_LEN, content);
		out += content;
	}
	CHECK(p == raw + len);
	CHECK(ended);
	all[out] = '\0';

	sep = strstr(all, "\r\n\r\n");
	CHECK(sep != NULL);
	CHECK((size_t)(sep - all) + 2 < sizeof(a->head));
	memcpy(a->head, all, (size_t)(sep - all) + 2);
	a->head[sep - all + 2] = '\0';
	a->body_len = out - (size_t)(sep + 4 - all);
	memcpy(a->body, sep + 4, a->body_len);
	a->body[a->body_len] = '\0';
}

/* One request through libfcgi: accept, request_init, the test's answer,
 * finish. Returns the request as the responder saw it. */
static void
exchange(const char *const *params, answer_fn fn, void *arg,
    struct request *seen, struct answer *a)
{
	FCGX_Request	fcgx;
	struct request	req;
	int		fd = client_send(params);

	CHECK_INT(FCGX_InitRequest(&fcgx, srv.fd, 0), 0);
	CHECK_INT(FCGX_Accept_r(&fcgx), 0);
	request_init(&req, &fcgx);
	fn(&req, arg);
	*seen = req;
	FCGX_Finish_r(&fcgx);
	client_receive(fd, a);
}

/* The value of a header, or NULL; copied into buf. */
static const char *
header(const struct answer *a, const char *name, char *buf, size_t size)
{
	const char	*p = a->head, *end;
	size_t		 nlen = strlen(name);

	while (*p != '\0') {
		end = strstr(p, "\r\n");
		CHECK(end != NULL);
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':' &&
		    p[nlen + 1] == ' ') {
			snprintf(buf, size, "%.*s", (int)(end - p - nlen - 2),
			    p + nlen + 2);
			return buf;
		}
		p = end + 2;
	}
	return NULL;
}

/* The answer has the header, with that value; a failure names the header
 * and shows all of them. */
static void
expect_header(const struct answer *a, const char *name, const char *want)
{
	char		 buf[256];
	const char	*got = header(a, name, buf, sizeof(buf));

	check_case("%s; headers:\n%s", name, a->head);
	CHECK_STR(got, want);
	check_case_end();
}

/* What every answer carries. */
static void
expect_common(const struct answer *a, const char *status, size_t length)
{
	char	len[32];

	expect_header(a, "Status", status);
	expect_header(a, "Cache-Control", "no-store");
	expect_header(a, "X-Content-Type-Options", "nosniff");
	snprintf(len, sizeof(len), "%zu", length);
	expect_header(a, "Content-Length", len);
}

/* The body parses as one JSON object, with nothing after it. */
static struct json_object *
parse_body(const struct answer *a)
{
	struct json_tokener	*tok = json_tokener_new();
	struct json_object	*o;
	size_t			 i;

	CHECK(tok != NULL);
	for (i = 0; i < a->body_len; i++)
		CHECK((unsigned char)a->body[i] >= 0x20);
	o = json_tokener_parse_ex(tok, a->body, (int)a->body_len);
	CHECK(o != NULL);
	CHECK(json_object_is_type(o, json_type_object));
	CHECK_INT(json_tokener_get_error(tok), json_tokener_success);
	CHECK_INT(json_tokener_get_parse_end(tok), a->body_len);
	json_tokener_free(tok);
	return o;
}

static void
expect_error_body(const struct answer *a, const char *message)
{
	struct json_object	*o = parse_body(a), *e;

	CHECK_INT(json_object_object_length(o), 1);
	CHECK(json_object_object_get_ex(o, "error", &e));
	CHECK_STR(json_object_get_string(e), message);
	json_object_put(o);
}

static const char *const get_read[] = {
	"REQUEST_METHOD=GET", "SCRIPT_NAME=/read", "REMOTE_ADDR=127.0.0.1",
	NULL
};

static void
answer_counter(struct request *req, void *arg)
{
	struct json_object	*body = json_object_new_object();

	json_object_object_add(body, "counter",
	    json_object_new_int64(*(long long *)arg));
	CHECK_INT(response_json(req, 200, body, NULL), 0);
}

/* GET /read answers 200 counted so far. */
static uint64_t
reads_answered_200(void)
{
	static struct stats_segment	snap;

	stats_snapshot(&snap);
	return snap.requests[ROUTE_READ][METHOD_GET][SSTATUS_200];
}

static void
test_json_answer(void)
{
	struct request		 req;
	struct answer		 a;
	struct json_object	*o, *v;
	long long		 counter = 42;
	uint64_t		 before;

	before = reads_answered_200();
	exchange(get_read, answer_counter, &counter, &req, &a);
	CHECK_INT(req.method, METHOD_GET);
	CHECK_INT(req.route, ROUTE_READ);
	CHECK_INT(req.status, 200);
	expect_common(&a, "200 OK", strlen("{\"counter\":42}"));
	expect_header(&a, "Content-Type", "application/json");
	CHECK_STR(a.body, "{\"counter\":42}");
	o = parse_body(&a);
	CHECK(json_object_object_get_ex(o, "counter", &v));
	CHECK_INT(json_object_get_int64(v), 42);
	json_object_put(o);
	/* The answer is counted once, under its route, method and status. */
	CHECK_INT(reads_answered_200(), before + 1);
}

/* HEAD: the same headers, the GET body's length, no body. */
static void
test_head_has_no_body(void)
{
	static const char *const head_read[] = {
		"REQUEST_METHOD=HEAD", "SCRIPT_NAME=/read", NULL
	};
	struct request	req;
	struct answer	a;
	long long	counter = 7;

	exchange(head_read, answer_counter, &counter, &req, &a);
	CHECK_INT(req.method, METHOD_HEAD);
	expect_common(&a, "200 OK", strlen("{\"counter\":7}"));
	expect_header(&a, "Content-Type", "application/json");
	CHECK_INT(a.body_len, 0);
}

static void
answer_405(struct request *req, void *arg)
{
	CHECK_INT(response_method_not_allowed(req, *(unsigned int *)arg), 0);
}

/* The body of a 405: {"error":"method not allowed","allow":[...]}, the
 * methods of allow (a JSON array's text) in that order. */
static void
expect_405_body(const struct answer *a, const char *allow)
{
	struct json_object	*o = parse_body(a), *e;

	CHECK_INT(json_object_object_length(o), 2);
	CHECK(json_object_object_get_ex(o, "error", &e));
	CHECK_STR(json_object_get_string(e), "method not allowed");
	CHECK(json_object_object_get_ex(o, "allow", &e));
	CHECK_STR(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN),
	    allow);
	json_object_put(o);
}

static void
test_method_not_allowed(void)
{
	static const char *const patch_time[] = {
		"REQUEST_METHOD=PATCH", "SCRIPT_NAME=/time", NULL
	};
	static const struct {
		unsigned int	 methods;
		const char	*header, *body;
	} cases[] = {
		{ METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD),
		    "GET, HEAD", "[\"GET\",\"HEAD\"]" },
		{ METHOD_BIT(METHOD_POST), "POST", "[\"POST\"]" },
		{ METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD) |
		    METHOD_BIT(METHOD_POST),
		    "GET, HEAD, POST", "[\"GET\",\"HEAD\",\"POST\"]" },
	};
	struct request	req;
	struct answer	a;
	unsigned int	methods;
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		methods = cases[i].methods;
		exchange(patch_time, answer_405, &methods, &req, &a);
		CHECK_INT(req.method, METHOD_OTHER);
		CHECK_INT(req.route, ROUTE_TIME);
		CHECK_INT(req.status, 405);
		expect_common(&a, "405 Method Not Allowed", a.body_len);
		expect_header(&a, "Allow", cases[i].header);
		expect_header(&a, "Content-Type", "application/json");
		expect_405_body(&a, cases[i].body);
	}
}

static void
answer_503(struct request *req, void *arg)
{
	(void)arg;
	CHECK_INT(response_db_unavailable(req), 0);
}

static void
test_db_unavailable(void)
{
	static const char *const post_write[] = {
		"REQUEST_METHOD=POST", "SCRIPT_NAME=/write",
		"HTTP_X_REQUEST_ID=test-503", NULL
	};
	struct request	req;
	struct answer	a;

	exchange(post_write, answer_503, NULL, &req, &a);
	CHECK_INT(req.route, ROUTE_WRITE);
	CHECK_INT(req.method, METHOD_POST);
	CHECK(req.request_id != NULL);
	expect_common(&a, "503 Service Unavailable", a.body_len);
	expect_header(&a, "Retry-After", "1");
	expect_error_body(&a, "database unavailable");

	response_set_retry_after(30);
	exchange(get_read, answer_503, NULL, &req, &a);
	expect_header(&a, "Retry-After", "30");
	expect_error_body(&a, "database unavailable");
	response_set_retry_after(1);
}

static void
answer_400(struct request *req, void *arg)
{
	CHECK_INT(response_error(req, 400, arg, NULL), 0);
}

/* Whatever a message holds, the body is valid JSON that reads back as it. */
static void
test_error_escaping(void)
{
	static const char *const messages[] = {
		"quote \" backslash \\ slash /",
		"newline \n tab \t bell \a escape \x1b del \x7f",
		"</script><script>alert(1)</script>",
		"\xc3\xa9t\xc3\xa9 \xe2\x82\xac",
		"",
	};
	struct request	req;
	struct answer	a;
	size_t		i;

	for (i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
		exchange(get_read, answer_400, (void *)messages[i], &req, &a);
		expect_common(&a, "400 Bad Request", a.body_len);
		expect_error_body(&a, messages[i]);
	}
}

static void
answer_text(struct request *req, void *arg)
{
	CHECK_INT(response_text(req, 200, "text/plain; version=0.0.4", arg,
	    strlen(arg)), 0);
}

static void
test_text_answer(void)
{
	static const char *const get_metrics[] = {
		"REQUEST_METHOD=GET", "SCRIPT_NAME=/metrics", NULL
	};
	struct request	 req;
	struct answer	 a;
	const char	*text = "# TYPE x counter\nx 1\n";

	exchange(get_metrics, answer_text, (void *)text, &req, &a);
	CHECK_INT(req.route, ROUTE_METRICS);
	expect_common(&a, "200 OK", strlen(text));
	expect_header(&a, "Content-Type", "text/plain; version=0.0.4");
	CHECK_STR(a.body, text);
}

int
main(void)
{
	server_open();
	test_json_answer();
	test_head_has_no_body();
	test_method_not_allowed();
	test_db_unavailable();
	test_error_escaping();
	test_text_answer();
	server_close();
	return 0;
}
