/* tally - responder: the program around every responder. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#define THREAD_STACK	(256 * 1024)
#define WAKE_SIGNAL	SIGUSR1
/* A worker that dies sooner than this after its start is restarted only
 * after RESTART_DELAY_MS, so a crash loop does not spin. */
#define QUICK_DEATH_S	1
#define RESTART_DELAY_MS 1000
#define MAX_PROCESSES	64

struct worker {
	pthread_t	 thread;
	int		 finished;	/* atomic */
};

static const struct responder	*me;
static const struct settings	*cfg;
static volatile sig_atomic_t	 stopping;

static void
on_wake(int sig)
{
	(void)sig;	/* only interrupts a blocking call */
}

static void
set_io_timeouts(int fd, unsigned int seconds)
{
	struct timeval	tv = { .tv_sec = (time_t)seconds, .tv_usec = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * A thread blocked in FCGX_Accept_r may be reading a peer's first records:
 * a peer that stops half way would hold it for ever. This timer sends the
 * thread WAKE_SIGNAL every io_timeout seconds while it accepts, which ends
 * such a read (libfcgi then drops that connection and accepts the next).
 */
static int
accept_timer_create(timer_t *t)
{
	struct sigevent	sev;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = WAKE_SIGNAL;
	sev._sigev_un._tid = (pid_t)gettid();	/* glibc 2.36 lacks the POSIX name */
	return timer_create(CLOCK_MONOTONIC, &sev, t);
}

static void
accept_timer_set(timer_t t, unsigned int seconds)
{
	struct itimerspec	its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)seconds;
	its.it_interval.tv_sec = (time_t)seconds;
	(void)timer_settime(t, 0, &its, NULL);
}

static void
serve(FCGX_Request *fcgx)
{
	struct request	req;

	request_init(&req, fcgx);
	log_set_request_id(req.request_id);
	log_set_trace(req.trace_id, req.span_id);
	if ((me->routes & ROUTE_BIT(req.route)) == 0)
		response_error(&req, 404, "not found", NULL);
	else if ((me->methods & (1u << req.method)) == 0)
		response_method_not_allowed(&req, me->allow);
	else
		me->handle(&req);
	log_set_request_id(NULL);
	log_set_trace(NULL, NULL);
}

static void *
worker_run(void *arg)
{
	struct worker	*w = arg;
	FCGX_Request	 fcgx;
	timer_t		 timer;
	sigset_t	 wake;
	int		 have_timer;

	sigemptyset(&wake);
	sigaddset(&wake, WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	have_timer = accept_timer_create(&timer) == 0;
	if (FCGX_InitRequest(&fcgx, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
		log_fatal("cannot initialise a FastCGI request", NULL);
	while (!stopping) {
		if (have_timer)
			accept_timer_set(timer, cfg->io_timeout_s);
		if (FCGX_Accept_r(&fcgx) < 0) {
			if (errno != EINTR && errno != EAGAIN && !stopping) {
				log_error("accept failed", "error",
				    strerror(errno), NULL);
				sleep(1);
			}
			continue;
		}
		if (have_timer)
			accept_timer_set(timer, 0);
		set_io_timeouts(fcgx.ipcFd, cfg->io_timeout_s);
		serve(&fcgx);
		FCGX_Finish_r(&fcgx);
	}
	FCGX_Free(&fcgx, 1);
	if (have_timer)
		timer_delete(timer);
	__atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
	return NULL;
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
run_workers(void)
{
	struct worker	*w;
	pthread_attr_t	 attr;
	struct timespec	 pause = { 0, 50 * 1000 * 1000 };
	unsigned int	 i, n = cfg->threads, alive;

	/* Mapped here, not inherited: each new worker checks the file and
	 * repairs a truncated one. */
	stats_open(cfg->run_dir);
	if (me->start != NULL && me->start(cfg) != 0)
		return 1;
	if ((w = calloc(n, sizeof(*w))) == NULL)
		log_fatal("out of memory", NULL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (i = 0; i < n; i++)
		if (pthread_create(&w[i].thread, &attr, worker_run, &w[i]) != 0)
			log_fatal("cannot start a thread", NULL);
	pthread_attr_destroy(&attr);

	(void)wait_for_stop_signal();
	stopping = 1;
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
	if (me->stop != NULL)
		me->stop();
	return 0;
}

static pid_t
spawn_worker(void)
{
	pid_t	parent = getpid(), pid = fork();

	if (pid != 0)
		return pid;
	/* The child stops with its parent, whatever kills the parent (the
	 * parent may be pid 1, in a container: compare with its own pid). */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
		_exit(1);
	_exit(run_workers());
}

/*
 * The parent process: keeps cfg->processes workers running on the shared
 * listening socket. A worker that dies is started again on the parent's
 * next tick (100 ms), or RESTART_DELAY_MS later when it died within
 * QUICK_DEATH_S of its start; the socket stays open meanwhile, so new
 * requests wait in its backlog instead of failing.
 */
struct slot {
	pid_t		pid;		/* -1: not running */
	int64_t		started_ms;
	int64_t		restart_ms;	/* start again at this time */
};

static void
slot_start(struct slot *sl)
{
	sl->pid = spawn_worker();
	sl->started_ms = monotonic_ms();
	sl->restart_ms = 0;
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
restart_workers(struct slot *slots, unsigned int n)
{
	unsigned int	i;

	for (i = 0; i < n; i++)
		if (slots[i].pid == -1 && monotonic_ms() >= slots[i].restart_ms)
			slot_start(&slots[i]);
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
supervise(void)
{
	struct slot	 slots[MAX_PROCESSES];
	unsigned int	 i, n = cfg->processes;
	sigset_t	 set;
	struct timespec	 tick = { 0, 100 * 1000 * 1000 };
	int		 sig;

	for (i = 0; i < n; i++)
		slot_start(&slots[i]);
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
		restart_workers(slots, n);
	}
	stop_workers(slots, n);
	return 0;
}

/* --version, --help, or usage on stderr: the exit status, or -1 to run. */
static int
arguments(int argc, char **argv)
{
	if (argc == 1)
		return -1;
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("%s %s\n", me->name, PACKAGE_VERSION);
		return 0;
	}
	fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
	    "usage: %s [--help | --version]\n"
	    "A tally FastCGI responder. It serves the listening socket on its "
	    "standard input,\nas spawn-fcgi hands it over. Its TALLY_* "
	    "settings: README.md, section \"Configuration\".\n", me->name);
	return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
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

	me = r;
	log_init(r->name);
	if ((status = arguments(argc, argv)) >= 0)
		return status;
	if (geteuid() == 0 || getegid() == 0)
		log_fatal("refusing to run as root: start it through "
		    "spawn-fcgi -u USER -g GROUP", NULL);
	if (settings_load(&settings, err, sizeof(err)) != 0)
		log_fatal("bad configuration", "error", err, NULL);
	if (settings.threads == 0)
		settings.threads = r->threads > 0 ? r->threads : 1;
	cfg = &settings;
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
	if (settings.processes == 1)
		return run_workers();
	return supervise();
}
