/* tally bench - floor: the least a FastCGI responder can do. It answers
 * every request with the same small JSON body and tally's API headers,
 * so lighttpd -> floor is the fastest any responder of tally's
 * architecture can be. Run under spawn-fcgi, which hands it the listening
 * socket on fd 0 (spawn-fcgi -F 4 runs four of them). Exits 1 if libfcgi
 * cannot start, 0 when the socket closes. */
#include <fcgiapp.h>

static const char answer[] =
    "Status: 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Cache-Control: no-store\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "\r\n"
    "{\"counter\":0}\n";

int
main(void)
{
	FCGX_Request	req;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&req) >= 0)
		FCGX_PutStr(answer, (int)sizeof(answer) - 1, req.out);
	return 0;
}
