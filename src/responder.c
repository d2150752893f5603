/* tally - responder: the program around every responder. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "log.h"
#include "responder.h"
#include "response.h"
#include "stats.h"
#include "timestamp.h"
#include "turn.h"
#include "util.h"

#define THREAD_STACK	(256 * 1024)
#define WAKE_SIGNAL	SIGUSR1
/* A worker that dies sooner than this after its start is restarted only
 * after RESTART_DELAY_MS, so a crash loop does not spin. */
#define QUICK_DEATH_S	1
#define RESTART_DELAY_MS 1000
#define MAX_PROCESSES	64
/* The watchdog: a worker's heartbeat thread beats every BEAT_MS; the
 * parent touches its alive file (ALIVE_SUFFIX, for probes) every
 * ALIVE_MS while every worker's beat is younger than FRESH_MS. */
#define BEAT_MS		250
#define FRESH_MS	2000
#define ALIVE_MS	1000
#define ALIVE_SUFFIX	".alive"

/* What the threads of one worker process share: the responder, its
 * handler's state, and the bound on a peer's reads and writes. */
struct serving {
	const struct responder	*r;
	void			*ctx;
	unsigned int		 io_timeout_s;
};

struct worker {
	pthread_t		 thread;
	const struct serving	*sv;
	int			 finished;	/* atomic */
};

/* One request from its accept to its end, and its handler's state. */
struct job {
	FCGX_Request	 fcgx;
	struct request	 req;
	struct log_ctx	 log;		/* req's, for its log lines */
	_Alignas(max_align_t) unsigned char scratch[RESPONDER_SCRATCH];
	struct job	*next_free;
};

static volatile sig_atomic_t	 stopping;

/* Requests alive in this process (accepted and not yet ended), at most
 * jobs_max: a handler that hands its request to another thread lets its
 * own thread accept the next one, so this bounds the memory instead. */
static pthread_mutex_t		 jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 jobs_room = PTHREAD_COND_INITIALIZER;
static struct job		*jobs_free;
static unsigned int		 jobs_alive, jobs_max;
static __thread int		 deferred_here;

/*
 * The watchdog. The parent maps beats, one per worker slot, shared with
 * its workers. A worker's heartbeat thread stores the time in its own
 * entry every BEAT_MS, or, while requests are in service (busy), the
 * last time one was read or ended (progress_ms). So a beat stops when
 * the process is stopped or its heartbeat thread cannot run, and also
 * when its requests stop moving (a thread spinning, or waiting on a lock
 * that is never released). The parent kills a worker whose beat is
 * older than TALLY_WATCHDOG_TIMEOUT and starts another.
 */
static int64_t			*beats;		/* MAX_PROCESSES, atomic */
static unsigned int		 beat_slot;	/* this worker's entry */
static unsigned int		 busy;		/* atomic */
static int64_t			 progress_ms;	/* atomic */
static int			 beating = 1;	/* atomic */

static void
work_began(void)
{
	__atomic_store_n(&progress_ms, monotonic_ms(), __ATOMIC_RELAXED);
	__atomic_add_fetch(&busy, 1, __ATOMIC_RELAXED);
}

static void
work_ended(void)
{
	__atomic_store_n(&progress_ms, monotonic_ms(), __ATOMIC_RELAXED);
	__atomic_sub_fetch(&busy, 1, __ATOMIC_RELAXED);
}

void
responder_beat(void)
{
	__atomic_store_n(&beats[beat_slot], monotonic_ms(), __ATOMIC_RELEASE);
}

static void *
heartbeat_run(void *arg)
{
	struct timespec	pause = { 0, BEAT_MS * 1000 * 1000 };
	int64_t		beat, progress;

	(void)arg;
	while (__atomic_load_n(&beating, __ATOMIC_RELAXED)) {
		beat = monotonic_ms();
		if (__atomic_load_n(&busy, __ATOMIC_RELAXED) > 0) {
			progress = __atomic_load_n(&progress_ms,
			    __ATOMIC_RELAXED);
			if (progress < beat)
				beat = progress;
		}
		__atomic_store_n(&beats[beat_slot], beat, __ATOMIC_RELEASE);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static void
on_wake(int sig)
{
	(void)sig;	/* only interrupts a blocking call */
}

/*
 * Accepts the next connection on the listening socket (standard input).
 * tally accepts itself, not libfcgi, so that the bound on a peer that
 * stops reading or writing starts when its connection arrives: the new
 * socket gets SO_RCVTIMEO and SO_SNDTIMEO of io_timeout seconds before
 * libfcgi reads its first record (accepted unix sockets do not inherit
 * them from the listener). Returns the connection, or -1 with errno set
 * (EINTR: woken to stop).
 */
static int
accept_connection(unsigned int io_timeout_s)
{
	struct timeval	tv = { .tv_sec = (time_t)io_timeout_s, .tv_usec = 0 };
	int		fd;

	if ((fd = accept4(0, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Errors of accept that only concern one connection (or a wake-up). */
static int
accept_error_passes(int err)
{
	return err == EINTR || err == EAGAIN || err == ECONNABORTED ||
	    err == EPROTO || err == ECONNRESET;
}

/* Reads the request body to its end: no responder but one that reads
 * it itself (struct responder, reads_body) uses it, and what that one
 * leaves goes too (a body is at most 16 KiB: lighttpd refuses larger
 * ones). */
static void
skip_body(FCGX_Request *fcgx)
{
	char	trash[4096];

	while (FCGX_GetStr(trash, (int)sizeof(trash), fcgx->in) > 0)
		;
}

/*
 * Ends a request: libfcgi sends the end of the answer, then would shut
 * the connection down and wait until the peer closes it, so that input
 * still unread cannot make the peer's TCP stack discard the answer. When
 * the input was read to its end (skip_body) there is nothing to wait for:
 * the connection is closed at once, which spares a sleep and a wake-up
 * per request.
 */
static void
responder_finish(FCGX_Request *fcgx)
{
	if (fcgx->in != NULL && fcgx->in->isClosed &&
	    FCGX_GetError(fcgx->in) == 0)
		fcgx->detached = 1;
	FCGX_Finish_r(fcgx);
}

/*
 * Reads the next request into fcgx: on the connection it still holds
 * (a peer that asked to keep it), or on a new one. Returns 0, or -1 if
 * there is none (a wake-up, or a peer that sent garbage or stopped half
 * way: libfcgi has closed that connection).
 */
static int
next_request(FCGX_Request *fcgx, unsigned int io_timeout_s, int keep_body)
{
	int	fd;

	if (fcgx->ipcFd < 0) {
		if ((fd = accept_connection(io_timeout_s)) < 0) {
			if (!accept_error_passes(errno) && !stopping) {
				log_error("accept failed", "error",
				    strerror(errno), NULL);
				sleep(1);
			}
			return -1;
		}
		fcgx->ipcFd = fd;
	}
	/* FCGX_Accept_r first finishes the previous request: told to keep
	 * the connection, it leaves this new one open and reads from it.
	 * Its listening socket is -1, so it never accepts by itself. */
	fcgx->keepConnection = 1;
	if (FCGX_Accept_r(fcgx) < 0)
		return -1;
	if (!keep_body)
		skip_body(fcgx);
	return 0;
}

/* A free job, once fewer than jobs_max are alive; NULL when stopping. */
static struct job *
job_get(void)
{
	struct job	*j = NULL;

	pthread_mutex_lock(&jobs_mu);
	while (jobs_alive >= jobs_max && !stopping)
		pthread_cond_wait(&jobs_room, &jobs_mu);
	if (!stopping) {
		if ((j = jobs_free) != NULL)
			jobs_free = j->next_free;
		else if ((j = calloc(1, sizeof(*j))) == NULL)
			log_fatal("out of memory", NULL);
		jobs_alive++;
	}
	pthread_mutex_unlock(&jobs_mu);
	if (j != NULL &&
	    FCGX_InitRequest(&j->fcgx, -1, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
		log_fatal("cannot initialise a FastCGI request", NULL);
	return j;
}

static void
job_put(struct job *j)
{
	pthread_mutex_lock(&jobs_mu);
	j->next_free = jobs_free;
	jobs_free = j;
	jobs_alive--;
	pthread_cond_signal(&jobs_room);
	pthread_mutex_unlock(&jobs_mu);
}

static struct job *
job_of(struct request *req)
{
	return container_of(req, struct job, req);
}

const struct log_ctx *
responder_log(struct request *req)
{
	return &job_of(req)->log;
}

void *
responder_scratch(struct request *req)
{
	return job_of(req)->scratch;
}

void
responder_defer(struct request *req)
{
	(void)req;
	deferred_here = 1;
}

void
responder_done(struct request *req)
{
	struct job	*j = job_of(req);

	responder_finish(&j->fcgx);
	if (j->fcgx.ipcFd >= 0) {	/* a peer that asked to keep it */
		close(j->fcgx.ipcFd);
		j->fcgx.ipcFd = -1;
	}
	job_put(j);
	work_ended();
}

/* The responder of each route (src/responders.def); none for the rest. */
static const enum responder_id route_responder[ROUTE__COUNT] = {
#define ROUTE(e, path, match, responder, listener)	\
	[ROUTE_##e] = RESPONDER_ID_##responder,
#include "responders.def"
	[ROUTE_OTHER] = RESPONDER__COUNT,
};

int
responder_refuse(const struct responder *r, struct request *req, void *ctx)
{
	unsigned int	methods;

	if (route_responder[req->route] != r->id)
		response_error(req, 404, "not found", NULL);
	else if (((methods = r->route_methods != NULL ?
	    r->route_methods(req, ctx) : r->methods) &
	    METHOD_BIT(req->method)) == 0)
		response_method_not_allowed(req, methods);
	else if (params_header_count(req->fcgx->envp) > REQUEST_HEADERS_MAX)
		response_error(req, 431, "too many request headers: send at "
		    "most " STR(REQUEST_HEADERS_MAX), NULL);
	else if (params_repeated_header(req->fcgx->envp) != NULL)
		response_error(req, 400, "two header names stand for one "
		    "header here (such as X-Forwarded-For and X_Forwarded_For): "
		    "send it once, spelled with '-'", NULL);
	else
		return 0;
	return 1;
}

/* Serves the job's request; returns 1 if the handler deferred it (the
 * job then belongs to whoever ends it), else 0. */
static int
serve(struct job *j, const struct serving *sv)
{
	struct request		*req = &j->req;
	const struct log_ctx	*outer;

	deferred_here = 0;
	request_init(req, &j->fcgx);
	j->log.request_id = req->request_id;
	j->log.trace_id = req->trace_id;
	j->log.span_id = req->span_id;
	outer = log_enter(&j->log);
	if (!responder_refuse(sv->r, req, sv->ctx))
		sv->r->handle(req, sv->ctx);
	/* only the address: a request handed over may be ended already */
	log_leave(&j->log, outer);
	return deferred_here;
}

static void *
worker_run(void *arg)
{
	struct worker	*w = arg;
	struct job	*j = NULL;
	sigset_t	 wake;

	sigemptyset(&wake);
	sigaddset(&wake, WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	while (!stopping) {
		if (j == NULL && (j = job_get()) == NULL)
			break;
		if (next_request(&j->fcgx, w->sv->io_timeout_s,
		    w->sv->r->reads_body) != 0)
			continue;
		work_began();
		if (serve(j, w->sv))
			j = NULL;	/* work_ended() in responder_done */
		else {
			if (w->sv->r->reads_body)
				skip_body(&j->fcgx);	/* what it left */
			responder_finish(&j->fcgx);
			work_ended();
		}
	}
	if (j != NULL) {
		FCGX_Free(&j->fcgx, 1);
		job_put(j);
	}
	__atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
jobs_free_all(void)
{
	struct job	*j;

	while ((j = jobs_free) != NULL) {
		jobs_free = j->next_free;
		free(j);
	}
}

static int
wait_for_stop_signal(void)
{
	sigset_t	set;
	int		sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	while (sigwait(&set, &sig) != 0)
		;
	return sig;
}

/* One worker process: threads that accept and serve until a stop signal. */
static int
run_workers(const struct responder *r, const struct settings *cfg)
{
	struct serving	 sv = { r, NULL, cfg->io_timeout_s };
	struct worker	*w;
	pthread_attr_t	 attr;
	pthread_t	 heartbeat;
	struct timespec	 pause = { 0, 50 * 1000 * 1000 };
	unsigned int	 i, n = cfg->threads, alive;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	if (pthread_create(&heartbeat, &attr, heartbeat_run, NULL) != 0)
		log_fatal("cannot start a thread", NULL);
	/* Mapped here, not inherited: each new worker checks the file and
	 * repairs a truncated one. */
	stats_open(cfg->run_dir);
	jobs_max = cfg->threads + cfg->batch_max;
	if ((sv.ctx = r->start(cfg, r->name)) == NULL) {
		log_error("the responder could not start; see above", NULL);
		return 1;
	}
	if ((w = calloc(n, sizeof(*w))) == NULL)
		log_fatal("out of memory", NULL);
	for (i = 0; i < n; i++) {
		w[i].sv = &sv;
		if (pthread_create(&w[i].thread, &attr, worker_run, &w[i]) != 0)
			log_fatal("cannot start a thread", NULL);
	}
	pthread_attr_destroy(&attr);

	(void)wait_for_stop_signal();
	pthread_mutex_lock(&jobs_mu);
	stopping = 1;
	pthread_cond_broadcast(&jobs_room);
	pthread_mutex_unlock(&jobs_mu);
	/* Wake the threads that wait in accept until every one has seen
	 * the flag; those serving a request finish it first. */
	do {
		alive = 0;
		for (i = 0; i < n; i++)
			if (!__atomic_load_n(&w[i].finished, __ATOMIC_ACQUIRE)) {
				alive++;
				pthread_kill(w[i].thread, WAKE_SIGNAL);
			}
		if (alive > 0)
			nanosleep(&pause, NULL);
	} while (alive > 0);
	for (i = 0; i < n; i++)
		pthread_join(w[i].thread, NULL);
	free(w);
	r->stop(sv.ctx);	/* ends the requests handed over */
	__atomic_store_n(&beating, 0, __ATOMIC_RELAXED);
	pthread_join(heartbeat, NULL);
	jobs_free_all();
	return 0;
}

static pid_t
spawn_worker(const struct responder *r, const struct settings *cfg,
    unsigned int slot)
{
	pid_t	parent = getpid(), pid;

	/* A new worker is not fresh (the alive file waits) until its first
	 * beat, for which it has TALLY_WATCHDOG_TIMEOUT less FRESH_MS. */
	__atomic_store_n(&beats[slot], monotonic_ms() - FRESH_MS,
	    __ATOMIC_RELEASE);
	if ((pid = fork()) != 0)
		return pid;
	beat_slot = slot;
	/* The child stops with its parent, whatever kills the parent (the
	 * parent may be pid 1, in a container: compare with its own pid). */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
		_exit(1);
	if (r->run != NULL) {	/* a loop of its own, which beats */
		stats_open(cfg->run_dir);
		_exit(r->run(cfg, r->name));
	}
	_exit(run_workers(r, cfg));
}

/*
 * The parent process: keeps cfg->processes workers running on the shared
 * listening socket (one by default, so that a responder's database
 * statements form one stream; turn.h for several). A worker that dies is
 * started again on the parent's next tick (100 ms), or RESTART_DELAY_MS
 * later when it died within QUICK_DEATH_S of its start; the socket stays
 * open meanwhile, so new requests wait in its backlog instead of failing.
 */
struct slot {
	pid_t		pid;		/* -1: not running */
	int		killed;		/* by the watchdog */
	int64_t		started_ms;
	int64_t		restart_ms;	/* start again at this time */
};

static void
slot_start(struct slot *slots, unsigned int i, const struct responder *r,
    const struct settings *cfg)
{
	slots[i].pid = spawn_worker(r, cfg, i);
	slots[i].started_ms = monotonic_ms();
	slots[i].restart_ms = 0;
	slots[i].killed = 0;
}

/* Logs a worker's death and schedules its restart. */
static void
slot_died(struct slot *sl, int status)
{
	char	pidbuf[16], statbuf[32];
	int64_t	now = monotonic_ms();

	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)sl->pid);
	if (WIFSIGNALED(status))
		snprintf(statbuf, sizeof(statbuf), "signal %d",
		    WTERMSIG(status));
	else
		snprintf(statbuf, sizeof(statbuf), "exit %d",
		    WEXITSTATUS(status));
	log_error("worker process died; starting another", "pid", pidbuf,
	    "status", statbuf, NULL);
	sl->pid = -1;
	sl->restart_ms = now - sl->started_ms < QUICK_DEATH_S * 1000 ?
	    now + RESTART_DELAY_MS : 0;
}

/* Reaps every worker that has exited. */
static void
reap_workers(struct slot *slots, unsigned int n)
{
	unsigned int	i;
	int		status;
	pid_t		pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (i = 0; i < n; i++)
			if (slots[i].pid == pid)
				slot_died(&slots[i], status);
}

/* Starts the workers whose restart is due. */
static void
restart_workers(struct slot *slots, unsigned int n,
    const struct responder *r, const struct settings *cfg)
{
	unsigned int	i;

	for (i = 0; i < n; i++)
		if (slots[i].pid == -1 && monotonic_ms() >= slots[i].restart_ms)
			slot_start(slots, i, r, cfg);
}

/*
 * Kills every worker whose beat is older than the watchdog's timeout
 * (it is then reaped and started again like any that died), and touches
 * the alive file while every worker beats: a probe that finds the file
 * older than a few seconds knows this responder is not serving, or that
 * this parent process itself has stopped. Returns the time of the last
 * touch.
 */
static int64_t
watch_workers(struct slot *slots, unsigned int n, unsigned int timeout_s,
    int alive_fd, int64_t touched_ms)
{
	char		pidbuf[16], agebuf[32];
	int64_t		now = monotonic_ms(), age;
	unsigned int	i;
	int		fresh = 1;

	for (i = 0; i < n; i++) {
		if (slots[i].pid <= 0) {
			fresh = 0;
			continue;
		}
		age = now - __atomic_load_n(&beats[i], __ATOMIC_ACQUIRE);
		if (age > FRESH_MS)
			fresh = 0;
		if (age > (int64_t)timeout_s * 1000 && !slots[i].killed) {
			snprintf(pidbuf, sizeof(pidbuf), "%d", (int)slots[i].pid);
			snprintf(agebuf, sizeof(agebuf), "%.1f",
			    (double)age / 1000.0);
			log_error("worker process stopped serving; killing it "
			    "to start another", "pid", pidbuf, "seconds",
			    agebuf, NULL);
			kill(slots[i].pid, SIGKILL);
			slots[i].killed = 1;
		}
	}
	if (fresh && alive_fd >= 0 && now - touched_ms >= ALIVE_MS) {
		(void)futimens(alive_fd, NULL);
		touched_ms = now;
	}
	return touched_ms;
}

int
responder_alive_open(const char *run_dir, const char *name)
{
	char	path[4096];
	int	fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s%s", run_dir, name,
	    ALIVE_SUFFIX) >= sizeof(path)) {
		log_error("the run directory's name is too long", NULL);
		return -1;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0640)) < 0)
		log_error("cannot open the alive file", "path", path,
		    "error", strerror(errno), NULL);
	return fd;
}

/* Sends SIGTERM to every worker and waits until all have exited (each
 * finishes the requests under way first). */
static void
stop_workers(struct slot *slots, unsigned int n)
{
	unsigned int	i;
	int		status;

	for (i = 0; i < n; i++)
		if (slots[i].pid > 0)
			kill(slots[i].pid, SIGTERM);
	for (i = 0; i < n; i++)
		while (slots[i].pid > 0 &&
		    waitpid(slots[i].pid, &status, 0) != slots[i].pid &&
		    errno != ECHILD)
			;
}

static int
run_parent(const struct responder *r, const struct settings *cfg)
{
	struct slot	 slots[MAX_PROCESSES];
	unsigned int	 i, n = cfg->processes;
	sigset_t	 set;
	struct timespec	 tick = { 0, 100 * 1000 * 1000 };
	int		 sig, alive_fd;
	int64_t		 touched_ms = 0;

	/* Several workers take turns at the database (turn.h); the turn
	 * is shared by every worker, also by those started again later. */
	if (n > 1)
		(void)turn_init();
	if (r->prepare != NULL && r->prepare(cfg) != 0) {
		log_error("the responder could not start; see above", NULL);
		return 1;
	}
	/* anonymous: the descriptor -1 is what mmap(2) asks for */
	beats = mmap(NULL, MAX_PROCESSES * sizeof(*beats),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    /* cppcheck-suppress invalidFunctionArg */
	    -1, 0);
	if (beats == MAP_FAILED)
		log_fatal("cannot map the workers' heartbeats", "error",
		    strerror(errno), NULL);
	alive_fd = responder_alive_open(cfg->run_dir, r->name);
	for (i = 0; i < n; i++)
		slot_start(slots, i, r, cfg);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	while (!stopping) {
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			stopping = 1;
			break;
		}
		reap_workers(slots, n);
		restart_workers(slots, n, r, cfg);
		touched_ms = watch_workers(slots, n, cfg->watchdog_s, alive_fd,
		    touched_ms);
	}
	stop_workers(slots, n);
	if (alive_fd >= 0)
		close(alive_fd);
	munmap(beats, MAX_PROCESSES * sizeof(*beats));
	return 0;
}

static void
usage(FILE *f, const char *name)
{
	fprintf(f, "usage: %s [--help | --version]\n"
	    "A tally FastCGI responder. It serves the listening socket on its "
	    "standard input,\nas spawn-fcgi hands it over. Its TALLY_* "
	    "settings: tally-responder(8).\n", name);
}

/* --version, --help (each alone), or usage on stderr: the exit status,
 * or -1 to run. */
static int
arguments(const char *name, int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int				 ch;

	ch = getopt_long(argc, argv, "", longopts, NULL);
	if (ch == -1 && optind == argc)
		return -1;
	if (ch == 'V' && argc == 2) {
		printf("%s %s\n", name, PACKAGE_VERSION);
		return 0;
	}
	if (ch == 'h' && argc == 2) {
		usage(stdout, name);
		return 0;
	}
	usage(stderr, name);
	return 2;
}

int
responder_main(const struct responder *r, int argc, char **argv)
{
	static struct settings	 settings;
	struct sigaction	 sa;
	struct stat		 st;
	sigset_t		 set;
	char			 err[256];
	struct json_object	*fields;
	int			 status;

	log_init(r->name);
	if ((status = arguments(r->name, argc, argv)) >= 0)
		return status;
	if (geteuid() == 0 || getegid() == 0)
		log_fatal("refusing to run as root: start it through "
		    "spawn-fcgi -u USER -g GROUP", NULL);
	if (settings_load(&settings, err, sizeof(err)) != 0)
		log_fatal("bad configuration", "error", err, NULL);
	if (settings.threads == 0)
		settings.threads = r->threads > 0 ? r->threads : 1;
	if (fstat(0, &st) != 0 || !S_ISSOCK(st.st_mode))
		log_fatal("standard input is not a socket: run it under "
		    "spawn-fcgi", NULL);
	response_set_retry_after(settings.retry_after_s);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_wake;	/* no SA_RESTART: calls see EINTR */
	sigaction(WAKE_SIGNAL, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, WAKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (FCGX_Init() != 0)
		log_fatal("cannot initialise libfcgi", NULL);

	fields = json_object_new_object();
	json_object_object_add(fields, "processes",
	    json_object_new_int((int)settings.processes));
	json_object_object_add(fields, "threads",
	    json_object_new_int((int)settings.threads));
	log_event(LOG_LEVEL_INFO, "started", fields);
	return run_parent(r, &settings);
}
