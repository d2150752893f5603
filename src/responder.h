/* tally - responder: the program around every responder. It refuses to
 * run as root, loads the settings, checks that spawn-fcgi handed it a
 * listening socket, runs TALLY_PROCESSES worker processes (restarting any
 * that dies) of TALLY_THREADS threads each (by default the responder's
 * own number: many where requests wait for the database and share its
 * round trips, few where they only use the CPU), refuses wrong methods and
 * paths before the handler runs, bounds every read and write, and on
 * SIGTERM or SIGINT finishes the requests under way, then exits. */
#ifndef TALLY_RESPONDER_H
#define TALLY_RESPONDER_H

#include "log.h"
#include "request.h"
#include "settings.h"

/* The responders of src/responders.def. */
enum responder_id {
#define RESPONDER(name, methods, threads, db, meaning)	RESPONDER_ID_##name,
#include "responders.def"
	RESPONDER__COUNT
};

/* Each one's methods and threads: RESPONDER_METHODS_time, ... */
#define M(m)	METHOD_BIT(METHOD_##m)
enum {
#define RESPONDER(name, methods, threads, db, meaning)			\
	RESPONDER_METHODS_##name = (methods),				\
	RESPONDER_THREADS_##name = (threads),
#include "responders.def"
};
#undef M

/* The fields of struct responder that src/responders.def declares for
 * the responder tally-N. */
#define RESPONDER_DECLARED(n)						\
	.id = RESPONDER_ID_##n,						\
	.name = "tally-" #n,						\
	.methods = RESPONDER_METHODS_##n,				\
	.threads = RESPONDER_THREADS_##n

/* A responder: RESPONDER_DECLARED(name), and its handler. */
struct responder {
	enum responder_id id;		/* answers the routes declared so */
	const char	*name;		/* program name, for logs and libpq */
	unsigned int	 methods;	/* METHOD_BIT()s it accepts, and
					 * what a 405 names */
	unsigned int	 threads;	/* per worker, unless TALLY_THREADS */
	/* 1: handle reads the request body (FCGX_GetStr on req->fcgx->in,
	 * at most 16 KiB, each read bounded by TALLY_IO_TIMEOUT) before it
	 * answers; it must not hand such a request over. What it leaves is
	 * read after it returns. 0: the body is read and dropped before
	 * handle runs. */
	int		 reads_body;
	/* Once in each worker process before serving: returns the
	 * handler's state (what handle and stop receive as ctx), or NULL
	 * to exit. s outlives the process's requests; name is the
	 * responder's own. */
	void		*(*start)(const struct settings *s, const char *name);
	/* Or NULL. Once in the parent process, before it starts the
	 * workers (what it maps shared, every worker shares): returns 0,
	 * or -1 to exit. */
	int		 (*prepare)(const struct settings *s);
	/* Answers one request; the method and route are already checked.
	 * Called from many threads at once. */
	void		 (*handle)(struct request *req, void *ctx);
	/* Optional: the methods req's route takes, when they are not
	 * the same on every route of the responder (methods is then their
	 * union); a method outside them gets 405 with these in Allow
	 * before handle runs. */
	unsigned int	 (*route_methods)(const struct request *req,
			    void *ctx);
	/* After the last request: ends those handed over, frees ctx. */
	void		 (*stop)(void *ctx);
	/* Instead of start, handle and stop (and the threads that accept
	 * and read requests): a responder with a loop of its own
	 * (src/stream.c). The worker process runs it, with the statistics
	 * mapped; it must call responder_beat() at least every second
	 * while it serves, and return the exit status on SIGTERM. The
	 * parent restarts it, kills it when it stops beating and keeps
	 * the alive file as for any responder. */
	int		 (*run)(const struct settings *s, const char *name);
};

/* The heartbeat of a responder with its own loop (run above). */
void	 responder_beat(void);


/*
 * Handing a request over: a handler that calls responder_defer(req)
 * returns at once without answering, and its thread accepts the next
 * request; whoever answers req later (from any thread) then calls
 * responder_done(req), which ends it. req and its scratch space (state
 * for the handler, RESPONDER_SCRATCH bytes, suitably aligned) stay valid
 * until then.
 */
#define RESPONDER_SCRATCH	256
void	*responder_scratch(struct request *req);
void	 responder_defer(struct request *req);
void	 responder_done(struct request *req);

/* The request's log context: entered while its handler runs; whoever
 * answers a request handed over enters it meanwhile (log.h). It lives
 * as long as req. */
const struct log_ctx *responder_log(struct request *req);

/* Answers a request that r does not serve as it is: another route's
 * (404), a method r does not accept (405 with Allow), a header sent
 * under two names (400). Returns 1 if it answered, else 0. What every
 * responder checks before its handler runs; a responder with a loop of
 * its own (src/stream.c) calls it too. */
int	 responder_refuse(const struct responder *r, struct request *req,
	    void *ctx);

/* Opens (creating it) the alive file run_dir/NAME.alive, which the
 * parent touches every second while its workers serve (the probes read
 * it: scripts/lib.sh, responder_alive); -1 after logging why. */
int	 responder_alive_open(const char *run_dir, const char *name);

/* Runs the responder; returns the process's exit status. */
int	responder_main(const struct responder *r, int argc, char **argv);

#endif
