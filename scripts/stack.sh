# shellcheck shell=bash
# tally - stack.sh: starts and stops tally's parts: a private PostgreSQL
# cluster, the schema step, the responders under spawn-fcgi and lighttpd.
# Sourced by ./dev, the integration tests, the benchmark and the container
# entrypoint, so all of them run the stack the same way. Sources lib.sh,
# which is installed beside it.
#
# Inputs (environment):
#   STACK_DIR        where the stack keeps its state (required)
#   TALLY_BIN_DIR    directory of the tally-* programs
#   TALLY_SQL_DIR    the schema files (sql/)
#   TALLY_WWW_DIR    the page (www/)
#   TALLY_CONF_DIR   lighttpd.conf (etc/)
#   TALLY_LISTEN, TALLY_PORT   where lighttpd listens (127.0.0.1, 8080)
#   STACK_LOG_DIR    if set, each part logs to a file there, else to stderr
#   TALLY_RESPONDER_WRAPPER  if set, a command line put before each
#                    responder, its program by absolute path (spawn-fcgi
#                    does not search PATH): "/usr/bin/valgrind -q"
# Layout under STACK_DIR:
#   pg/data, pg/socket   the private cluster (unix socket only)
#   auth/                0711: its roles' password files (see below)
#   run/                 0750: the responders' sockets (0660), stats, pids
#
# Each responder runs under a keeper loop (stack_keeper) that starts it
# again when it dies; the responder's own parent process in turn keeps its
# worker processes running (TALLY_PROCESSES, see the README).

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- who runs the stack ---------------------------------------------------

# Responders refuse root, and initdb does too. As root, everything runs
# as the system user "tally" (created when missing); otherwise as yourself.
stack_user_setup() {
	if [[ $(id -u) -eq 0 ]]; then
		STACK_USER=tally
		if ! id -u "$STACK_USER" >/dev/null 2>&1; then
			useradd --system --user-group --no-create-home \
				--home-dir /nonexistent --shell /usr/sbin/nologin "$STACK_USER"
		fi
	else
		STACK_USER=$(id -un)
	fi
	export STACK_USER
}

# Runs a command as STACK_USER, keeping the environment. setpriv execs
# in place, so signals sent to the pid reach the program itself.
stack_as_user() {
	if [[ $(id -u) -eq 0 ]]; then
		setpriv --reuid="$STACK_USER" --regid="$STACK_USER" --init-groups \
			-- "$@"
	else
		"$@"
	fi
}

# Replaces the shell with a command run as STACK_USER: started as
# "( stack_exec_as_user cmd ) &", $! is then the command's own pid.
stack_exec_as_user() {
	if [[ $(id -u) -eq 0 ]]; then
		exec setpriv --reuid="$STACK_USER" --regid="$STACK_USER" \
			--init-groups -- "$@"
	fi
	exec "$@"
}

# Makes a directory owned by STACK_USER with the given mode.
stack_mkdir() {
	local mode=$1 dir=$2
	mkdir -p "$dir"
	chmod "$mode" "$dir"
	if [[ $(id -u) -eq 0 ]]; then
		chown "$STACK_USER:" "$dir"
	fi
}

# Fails with a clear message when STACK_USER cannot reach a path.
stack_check_access() {
	local path
	for path in "$@"; do
		if ! stack_as_user test -r "$path"; then
			say "user $STACK_USER cannot read $path;" \
				"put the checkout where $STACK_USER can reach it"
			return 1
		fi
	done
}

# --- small helpers ---------------------------------------------------------

# Where a part's output goes: its log file, or stderr.
stack_log_target() {
	if [[ -n ${STACK_LOG_DIR:-} ]]; then
		[[ -d $STACK_LOG_DIR ]] || stack_mkdir 0750 "$STACK_LOG_DIR"
		echo "$STACK_LOG_DIR/$1.log"
	else
		echo /dev/stderr
	fi
}

stack_pidfile() {
	echo "$STACK_DIR/run/$1.pid"
}

# --- PostgreSQL --------------------------------------------------------------

stack_pg_data() { echo "$STACK_DIR/pg/data"; }
stack_pg_socket() { echo "$STACK_DIR/pg/socket"; }

# The private cluster trusts nobody: every role gives its password
# (scram-sha-256, over the unix socket only). Its roles:
#   postgres     the superuser: makes the other roles and the database
#   tally_owner  owns the database "tally" and its schema; tally-migrate
#                runs as it
#   tally_app    what the responders log in as: only what their statements
#                use (granted by tally-migrate --grant-to, see
#                sql/005_runtime_role.sql); no DDL, no TRUNCATE, no COPY
#                TO PROGRAM
# Each password is made at random once and kept in a libpq password file
# (mode 0600) in $STACK_DIR/auth (0711: no listing, nothing to swap):
# tally_app's is the responders' (owned by STACK_USER), the others are
# of whoever runs the stack. Connection strings name the file
# (passfile=), never the password, which goes to PostgreSQL on a pipe.
STACK_PG_OWNER=tally_owner
STACK_PG_RUNTIME=tally_app

stack_pg_auth() { echo "$STACK_DIR/auth"; }

# The password file of a role of the private cluster.
stack_pg_passfile() {
	echo "$(stack_pg_auth)/$1.pgpass"
}

# stack_pg_url_as ROLE [DATABASE]: a connection string of the private
# cluster as ROLE (its password from its file), to DATABASE (tally).
stack_pg_url_as() {
	echo "postgresql://$1@/${2:-tally}?host=$(stack_pg_socket)&passfile=$(stack_pg_passfile "$1")"
}

# The connection string the responders use: the runtime role's.
stack_pg_url() {
	stack_pg_url_as "$STACK_PG_RUNTIME"
}

# The owner's, for the schema step, and the superuser's, for the stack's
# own setup and for tests (DATABASE: tally by default).
stack_pg_owner_url() { stack_pg_url_as "$STACK_PG_OWNER"; }
stack_pg_admin_url() { stack_pg_url_as postgres "${1:-tally}"; }

# The password in a role's password file (made at random when there is
# none): on stdout, for a pipe.
stack_pg_password() {
	local file
	file=$(stack_pg_passfile "$1")
	if [[ ! -s $file ]]; then
		(
			umask 077
			printf '*:*:*:%s:%s\n' "$1" \
				"$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >"$file.new"
			if [[ $(id -u) -eq 0 && $1 == "$STACK_PG_RUNTIME" ]]; then
				chown "$STACK_USER:" "$file.new"
			fi
			mv -f "$file.new" "$file"
		)
	fi
	sed -n '1s/^[^:]*:[^:]*:[^:]*:[^:]*://p' "$file"
}

# Makes the password files' directory, 0711, of whoever runs the stack;
# one that is a link or someone else's is refused, not used.
stack_pg_auth_dir() {
	local dir
	dir=$(stack_pg_auth)
	[[ -L $dir ]] || mkdir -p "$dir"
	if [[ -L $dir || ! -d $dir || $(stat -c %u "$dir") != "$(id -u)" ]]; then
		say "$dir is not a directory of $(id -un): not keeping passwords there"
		return 1
	fi
	chmod 0711 "$dir"
}

# Creates the cluster on first use (kept between runs). One made by an
# older tally (trust authentication, no password files) is made anew.
stack_pg_init() {
	local data
	data=$(stack_pg_data)
	stack_mkdir 0700 "$STACK_DIR/pg"
	stack_mkdir 0700 "$(stack_pg_socket)"
	stack_pg_auth_dir || return 1
	if [[ -f $data/PG_VERSION && ! -s $(stack_pg_passfile postgres) ]]; then
		say "$data trusts every local user (made by an older tally): making it anew"
		stack_pg_stop immediate
		rm -rf "$data"
	fi
	if [[ ! -f $data/PG_VERSION ]]; then
		# initdb reads the password from a pipe its own user made
		# shellcheck disable=SC2016
		stack_pg_password postgres | stack_as_user bash -c \
			'exec initdb --pwfile=<(exec cat) "$@"' initdb \
			--pgdata="$data" --username=postgres \
			--auth-local=scram-sha-256 --auth-host=scram-sha-256 \
			--encoding=UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
	fi
}

# Makes the roles and the database, and sets each role's password from
# its file; again at every start, so the files are what counts. The
# statements go on stdin; none is logged, not even when it fails.
stack_pg_roles() {
	local role
	{
		echo "SET log_statement = none; SET log_min_error_statement = panic;"
		echo "SET client_min_messages = warning;"
		for role in "$STACK_PG_OWNER" "$STACK_PG_RUNTIME"; do
			echo "SELECT 'CREATE ROLE $role' WHERE NOT EXISTS
				(SELECT FROM pg_roles WHERE rolname = '$role') \\gexec"
			echo "ALTER ROLE $role LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
				NOREPLICATION NOBYPASSRLS PASSWORD '$(stack_pg_password "$role")';"
		done
		echo "SELECT 'CREATE DATABASE tally OWNER $STACK_PG_OWNER' WHERE NOT EXISTS
			(SELECT FROM pg_database WHERE datname = 'tally') \\gexec"
		echo "ALTER DATABASE tally OWNER TO $STACK_PG_OWNER;"
		echo "REVOKE CREATE, TEMPORARY ON DATABASE tally FROM PUBLIC;"
	} | psql -X -q -w -v ON_ERROR_STOP=1 -d "$(stack_pg_admin_url postgres)" >/dev/null
}

# Starts the cluster: unix socket only, in a private directory; durable
# commits (fsync and synchronous_commit stay on).
stack_pg_start() {
	local log
	log=$(stack_log_target postgres)
	[[ $log == /dev/stderr ]] && log="$STACK_DIR/pg/postgres.log"
	# A cluster left running by an interrupted run is ours: use it.
	if ! stack_as_user pg_ctl --pgdata="$(stack_pg_data)" status >/dev/null 2>&1; then
		stack_as_user pg_ctl --pgdata="$(stack_pg_data)" --log="$log" --wait \
		--timeout=60 --silent \
		-o "-c listen_addresses='' -c unix_socket_directories='$(stack_pg_socket)' -c max_connections=200" \
		start 3>&-
	fi
	stack_pg_roles
}

# Stops the cluster; $1 is pg_ctl's mode (fast by default).
stack_pg_stop() {
	local mode=${1:-fast}
	if [[ -f $(stack_pg_data)/postmaster.pid ]]; then
		stack_as_user pg_ctl --pgdata="$(stack_pg_data)" --mode="$mode" \
			--wait --timeout=60 --silent stop || true
	fi
}

# Applies the schema to DATABASE_URL (or the PG* variables), granting
# TALLY_RUNTIME_ROLE (if set) its privileges. On the private cluster
# (DATABASE_URL is its runtime role's), as the owner, granting tally_app,
# run by whoever runs the stack (the owner's password file is theirs).
# shellcheck disable=SC2153 # TALLY_BIN_DIR is an input (see the top)
stack_migrate() {
	if [[ ${DATABASE_URL:-} == "$(stack_pg_url)" ]]; then
		DATABASE_URL=$(stack_pg_owner_url) TALLY_RUNTIME_ROLE=$STACK_PG_RUNTIME \
			"$TALLY_BIN_DIR/tally-migrate" --dir "$TALLY_SQL_DIR"
	else
		stack_as_user "$TALLY_BIN_DIR/tally-migrate" --dir "$TALLY_SQL_DIR"
	fi
}

# --- responders --------------------------------------------------------------

# The keeper loop: keeps one responder running under spawn-fcgi in the
# foreground (spawn-fcgi -n execs the responder in its place, so the
# loop's child is the responder's parent process). A responder that dies
# or fails is started again after 0.2 s; one that exits 0 has stopped
# because it was told to (SIGTERM or SIGINT, from whoever sent it) and is
# not. TERM, INT or HUP to the loop stop the responder and the loop.
stack_keeper() {
	local name=$1 sock=$2 child=0 stopping=0 rc
	trap 'stopping=1; [[ $child -gt 0 ]] && kill -TERM "$child" 2>/dev/null' TERM INT HUP
	while ((stopping == 0)); do
		# shellcheck disable=SC2086 # the wrapper is a command line
		(stack_exec_as_user spawn-fcgi -n -s "$sock" -M 0660 -- \
			${TALLY_RESPONDER_WRAPPER:-} "$TALLY_BIN_DIR/tally-$name") &
		child=$!
		wait_child "$child" && rc=0 || rc=$?
		child=0
		if ((rc == 0 && stopping == 0)); then
			say "tally-$name exited 0, as it does when told to stop; not starting it again"
		fi
		((rc == 0)) && break
		((stopping == 0)) && sleep 0.2
	done
}

# Starts the keeper loop of one responder (its socket made anew); its pid
# goes to the responder's pid file.
stack_responder_start() {
	local name=$1 log
	rm -f "$STACK_DIR/run/$name.sock"
	log=$(stack_log_target "$name")
	# fd 3 closed: bats waits for whoever holds it open.
	stack_keeper "$name" "$STACK_DIR/run/$name.sock" \
		>>"$log" 2>&1 </dev/null 3>&- &
	echo $! >"$(stack_pidfile "$name")"
}

stack_responders_start() {
	local name
	stack_mkdir 0750 "$STACK_DIR/run"
	export TALLY_RUN_DIR="$STACK_DIR/run" TALLY_SOCKET_DIR="$STACK_DIR/run"
	rm -f "$STACK_DIR/run/stats"
	for name in "${TALLY_RESPONDERS[@]}"; do
		stack_responder_start "$name"
	done
	for name in "${TALLY_RESPONDERS[@]}"; do
		wait_until 10 test -S "$STACK_DIR/run/$name.sock" ||
			{ say "$STACK_DIR/run/$name.sock did not appear within 10s"; return 1; }
	done
}

# --- lighttpd ----------------------------------------------------------------

stack_lighttpd_start() {
	local log
	export TALLY_LISTEN=${TALLY_LISTEN:-127.0.0.1} TALLY_PORT=${TALLY_PORT:-8080}
	export TALLY_SOCKET_DIR="$STACK_DIR/run"
	log=$(stack_log_target lighttpd)
	# lighttpd opens /dev/stderr for its access log: give it a pipe that
	# its own user made, which it may open whoever owns the terminal.
	# shellcheck disable=SC2016
	(stack_exec_as_user bash -c 'exec lighttpd -D -f "$1" 2> >(exec cat >&2)' \
		lighttpd "$TALLY_CONF_DIR/lighttpd.conf") >>"$log" 2>&1 </dev/null 3>&- &
	echo $! >"$(stack_pidfile lighttpd)"
	wait_until 15 http_answers "http://$TALLY_LISTEN:$TALLY_PORT/livez" ||
		{ say "http://$TALLY_LISTEN:$TALLY_PORT/livez did not answer within 15s"; return 1; }
}

# --- the whole stack -----------------------------------------------------------

# Starts the private cluster unless DATABASE_URL or PGHOST names another.
stack_start() {
	stack_user_setup
	stack_mkdir 0755 "$STACK_DIR"
	stack_check_access "$TALLY_BIN_DIR/tally-time" "$TALLY_WWW_DIR/index.html" \
		"$TALLY_CONF_DIR/lighttpd.conf" "$TALLY_SQL_DIR"
	if [[ -z ${DATABASE_URL:-} && -z ${PGHOST:-} ]]; then
		stack_pg_init
		stack_pg_start
		DATABASE_URL=$(stack_pg_url)
		export DATABASE_URL
	fi
	stack_migrate
	stack_responders_start
	stack_lighttpd_start
}

# Returns when lighttpd has exited. The caller's traps run meanwhile: the
# pause between checks is a child, STACK_IDLE_PID, for them to stop.
stack_idle() {
	while ! pid_gone "$(<"$(stack_pidfile lighttpd)")"; do
		sleep 1 &
		STACK_IDLE_PID=$!
		wait "$STACK_IDLE_PID" || true
	done
	STACK_IDLE_PID=
}

# Sends a signal to a part started by this file and waits for it.
stack_stop_part() {
	local name=$1 sig=$2 seconds=$3 pidfile pid
	pidfile=$(stack_pidfile "$name")
	[[ -f $pidfile ]] || return 0
	pid=$(<"$pidfile")
	if kill -"$sig" "$pid" 2>/dev/null && ! wait_until "$seconds" pid_gone "$pid"; then
		say "$name did not stop in ${seconds}s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

# Stops everything in order: lighttpd first, gracefully (SIGINT: it
# finishes the requests under way), then the responders, then PostgreSQL.
stack_stop() {
	local name pids=()
	stack_stop_part lighttpd INT 15
	for name in "${TALLY_RESPONDERS[@]}"; do
		stack_stop_part "$name" TERM 15 &
		pids+=($!)
	done
	# only these jobs: the caller may have other children (another stack)
	wait "${pids[@]}"
	stack_pg_stop fast
}
