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
#   TALLY_INTERNAL_PORT  the internal listener's port on 127.0.0.1
#                    (TALLY_PORT + 1): /livez, /healthz, /metrics
#   STACK_LOG_DIR    if set, each part logs to a file there, else to stderr
#   STACK_ACCESS_LOG if set, lighttpd's access log goes to this file (at
#                    10 MB it becomes FILE.1 and FILE starts again) and a
#                    one-line summary of each 10 s of traffic to stderr;
#                    else to TALLY_ACCESS_LOG (default /dev/stderr: with
#                    lighttpd's own messages)
#   STACK_DIR_SETTING  the caller's name for STACK_DIR, in messages
#   TALLY_RESPONDER_WRAPPER  if set, a command line put before each
#                    responder, its program by absolute path (spawn-fcgi
#                    does not search PATH): "/usr/bin/valgrind -q"
# Layout under STACK_DIR (which belongs to whoever runs the stack, and is
# locked while a stack uses it: see stack_claim):
#   pid/                 the parts' pid files, and log/ the logs the stack
#                        opens: both belong to whoever runs the stack, so
#                        that root never opens or trusts a file the
#                        service users may write or swap
#   pg/data, pg/socket   the private cluster (unix socket only), owned by
#                        STACK_PG_USER; the socket's directory lets
#                        STACK_USER's group in
#   auth/                0711, of whoever runs the stack: the cluster's
#                        roles' password files (see stack_pg_passfile)
#   run/                 0750, STACK_USER's: the responders' sockets
#                        (0660) and stats
#
# Each responder runs under a keeper loop (stack_keeper) that starts it
# again when it dies; the responder's own parent process in turn keeps its
# worker processes running (TALLY_PROCESSES, see docs/architecture.md).

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# stack_rate_limits_off: turns off each per-client rate limit of the
# responders (the TALLY_RATE_LIMIT_* settings that 0 turns off) that the
# caller did not set, for a stack whose load stands for many clients
# behind one address: the test suite's stacks and the benchmark's.
stack_rate_limits_off() {
	local name def min max
	for name in "${!TALLY_SETTING_BOUNDS[@]}"; do
		read -r def min max <<<"${TALLY_SETTING_BOUNDS[$name]}"
		if [[ $name == TALLY_RATE_LIMIT_* && $min == 0 && -z ${!name:-} ]]; then
			export "$name=0"
		fi
	done
}

# --- who runs the stack ---------------------------------------------------

# Responders refuse root, and initdb does too. As root, lighttpd and the
# responders run as the system user "tally" and PostgreSQL as the system
# user "tally-pg" (both created when missing): the internet-facing
# processes cannot signal the database's or write its files. Otherwise
# everything runs as yourself. Every stack run as root on a machine
# shares these two users (see SECURITY.md).
stack_user_setup() {
	if [[ $(id -u) -eq 0 ]]; then
		STACK_USER=tally STACK_PG_USER=tally-pg
		stack_system_user "$STACK_USER" || return 1
		stack_system_user "$STACK_PG_USER" || return 1
	else
		STACK_USER=$(id -un)
		STACK_PG_USER=$STACK_USER
	fi
	export STACK_USER STACK_PG_USER
}

# Creates a system user (and its group) that cannot log in, if missing;
# another stack starting meanwhile may be creating it too.
stack_system_user() {
	local try
	for try in 1 2 3 4 5 6 7 8 9 10; do
		id -u "$1" >/dev/null 2>&1 && return 0
		useradd --system --user-group --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin "$1" 2>/dev/null && return 0
		sleep "0.$try"
	done
	say "could not create the system user $1"
	return 1
}

# stack_as USER COMMAND...: runs a command as USER, keeping the
# environment but not the state directory's lock (stack_claim: a process
# that shares it could unlock it). setpriv execs in place, so signals
# sent to the pid reach the program itself.
stack_as() {
	local user=$1
	shift
	if [[ $(id -u) -eq 0 ]]; then
		stack_unlocked setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
	else
		stack_unlocked "$@"
	fi
}

# Runs a command without the lock's descriptor.
stack_unlocked() {
	if [[ -n ${STACK_LOCK_FD:-} ]]; then
		"$@" {STACK_LOCK_FD}<&-
	else
		"$@"
	fi
}

# Runs a command as STACK_USER (lighttpd's and the responders' user).
stack_as_user() { stack_as "$STACK_USER" "$@"; }

# Runs a command as STACK_PG_USER (the private cluster's user).
stack_as_pg_user() { stack_as "$STACK_PG_USER" "$@"; }

# Replaces the shell with a command run as STACK_USER: started as
# "( stack_exec_as_user cmd ) &", $! is then the command's own pid.
stack_exec_as_user() {
	[[ -z ${STACK_LOCK_FD:-} ]] || exec {STACK_LOCK_FD}<&-
	if [[ $(id -u) -eq 0 ]]; then
		exec setpriv --reuid="$STACK_USER" --regid="$STACK_USER" \
			--init-groups -- "$@"
	fi
	exec "$@"
}

# stack_mkdir_for OWNER MODE DIR: makes a directory (not through a
# symbolic link) with that mode, owned by OWNER ("user:group", as chown
# takes it) when run as root.
stack_mkdir_for() {
	local owner=$1 mode=$2 dir=$3
	if [[ -L $dir ]]; then
		say "$dir is a symbolic link: refused"
		return 1
	fi
	mkdir -p "$dir"
	chmod "$mode" "$dir"
	if [[ $(id -u) -eq 0 ]]; then
		chown "$owner" "$dir"
	fi
}

# Makes a directory owned by STACK_USER with the given mode.
stack_mkdir() { stack_mkdir_for "$STACK_USER:" "$@"; }

# stack_mkdir_own MODE DIR: makes a directory of whoever runs the stack,
# for the files it opens itself (pid files, logs). Refuses a symbolic
# link, or one that belongs to someone else (an earlier version made
# some as STACK_USER, who may have left links in them).
stack_mkdir_own() {
	local mode=$1 dir=$2
	if [[ -L $dir ]] || { [[ -e $dir ]] && [[ ! -d $dir || $(stat -c %u "$dir") != "$(id -u)" ]]; }; then
		say "$dir is not a directory of $(id -un)'s (it belongs to" \
			"$(stat -c %U "$dir"), or is a link): refused; remove it (rm -rf $dir)"
		return 1
	fi
	mkdir -p "$dir"
	chmod "$mode" "$dir"
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

# --- one stack per state directory and port ----------------------------------

# stack_claim: takes STACK_DIR for this shell, and checks that TALLY_PORT
# is free, before anything is started or changed. When another stack uses
# either, it is left alone: this fails, naming the other process and what
# to do. The lock is flock(2) on STACK_DIR itself, through a descriptor
# that this shell and the processes it forks as itself hold (the keeper
# loops, the access log's writer), not the service users' processes: it
# lasts until the last of them exits. Claiming the directory this shell
# holds already is a no-op.
stack_claim() {
	local setting=${STACK_DIR_SETTING:-STACK_DIR} users
	export TALLY_LISTEN=${TALLY_LISTEN:-127.0.0.1} TALLY_PORT=${TALLY_PORT:-8080}
	if ! stack_claimed; then
		[[ -L $STACK_DIR ]] || mkdir -p "$STACK_DIR"
		exec {STACK_LOCK_FD}<"$STACK_DIR"
		if ! flock -n "$STACK_LOCK_FD"; then
			stack_release
			say "$STACK_DIR is in use by $(stack_dir_users)"
			say "stop that one first, or give this one its own directory: $setting=/another/dir"
			return 1
		fi
		stack_own_dir || { stack_release; return 1; }
		stack_mkdir_own 0755 "$STACK_DIR/pid" || { stack_release; return 1; }
		stack_pid_save owner "$BASHPID"
	fi
	if users=$(stack_port_users "$TALLY_PORT"); then
		say "port $TALLY_PORT is in use by $users"
		say "stop that one first, or choose another port: TALLY_PORT=$(free_port) (free now)"
		stack_release
		return 1
	fi
}

# Does this shell hold STACK_DIR's lock?
stack_claimed() {
	[[ -n ${STACK_LOCK_FD:-} ]] &&
		[[ $(readlink "/proc/$BASHPID/fd/$STACK_LOCK_FD" 2>/dev/null) == "$(realpath -m "$STACK_DIR")" ]]
}

# Lets go of STACK_DIR (the parts started since hold it until they exit).
stack_release() {
	[[ -n ${STACK_LOCK_FD:-} ]] || return 0
	exec {STACK_LOCK_FD}<&-
	STACK_LOCK_FD=
}

# STACK_DIR belongs to whoever runs the stack: root takes back one that an
# earlier version gave to STACK_USER.
stack_own_dir() {
	if [[ $(stat -c %u "$STACK_DIR") != "$(id -u)" ]]; then
		if [[ $(id -u) -ne 0 ]]; then
			say "$STACK_DIR belongs to $(stat -c %U "$STACK_DIR"), not to you: choose another directory"
			return 1
		fi
		chown 0: "$STACK_DIR"
	fi
	# the service users go through it, and cannot change it
	chmod 0755 "$STACK_DIR"
}

# What holds STACK_DIR: the process that claimed it, else every process
# with it open (parts of a stack whose starter is gone).
stack_dir_users() {
	local pid fd pids=()
	if pid=$(stack_pid owner); then
		stack_describe "$pid"
		return 0
	fi
	while read -r fd; do
		fd=${fd#/proc/}
		pids+=("${fd%%/*}")
	done < <(find /proc/[0-9]*/fd -maxdepth 1 -lname "$(realpath -m "$STACK_DIR")" 2>/dev/null)
	if ((${#pids[@]} == 0)); then
		echo "a process this user may not see"
		return 0
	fi
	echo "processes left by an earlier run:"
	for pid in $(printf '%s\n' "${pids[@]}" | sort -un); do
		echo "  $(stack_describe "$pid")"
	done
}

# "PID N (user U: COMMAND LINE)" of a process.
stack_describe() {
	local user args
	if user=$(ps -o user= -p "$1" 2>/dev/null) && args=$(ps -o args= -p "$1" 2>/dev/null); then
		echo "PID $1 (user $user: $args)"
	else
		echo "PID $1 (gone now)"
	fi
}

# stack_port_inodes PORT: the socket inodes listening on the TCP port, one
# a line (IPv4 and IPv6, every address).
stack_port_inodes() {
	local hex
	printf -v hex '%04X' "$1"
	awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# stack_port_users PORT: describes the processes listening on the TCP port
# (those this user may see); fails when none does.
stack_port_users() {
	local inode fd pids=() pid out=()
	while read -r inode; do
		while read -r fd; do
			fd=${fd#/proc/}
			pids+=("${fd%%/*}")
		done < <(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$inode\]" 2>/dev/null)
		((${#pids[@]} > 0)) || out+=("a process this user may not see")
	done < <(stack_port_inodes "$1")
	for pid in $(printf '%s\n' "${pids[@]}" | sort -un); do
		out+=("$(stack_describe "$pid")")
	done
	((${#out[@]} > 0)) || return 1
	printf '%s\n' "${out[@]}" | sort -u | paste -sd ';' | sed 's/;/; /g'
}

# stack_listens PID PORT: is the process listening on the TCP port?
stack_listens() {
	local inode
	while read -r inode; do
		[[ -n $(find "/proc/$1/fd" -maxdepth 1 -lname "socket:\[$inode\]" -print -quit 2>/dev/null) ]] &&
			return 0
	done < <(stack_port_inodes "$2")
	return 1
}

# --- pid files -----------------------------------------------------------------
# Each part's pid file holds "PID START": START, the process's start time
# (field 22 of /proc/PID/stat), tells it from a later process that got the
# same PID. They live in STACK_DIR/pid, which only whoever runs the stack
# may write.

stack_pidfile() {
	echo "$STACK_DIR/pid/$1.pid"
}

# Prints a process's start time; fails when it is gone.
stack_proc_start() {
	local stat fields
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	read -ra fields <<<"${stat##*) }"
	echo "${fields[19]}"
}

# stack_pid_save NAME PID: records a process this shell started.
stack_pid_save() {
	local file start
	file=$(stack_pidfile "$1")
	[[ -d ${file%/*} ]] || stack_mkdir_own 0755 "${file%/*}"
	if start=$(stack_proc_start "$2"); then
		echo "$2 $start" >"$file"
	else
		rm -f "$file"
	fi
}

# stack_pid NAME: prints the PID of the part when it still runs: the
# process its pid file names, with the start time recorded there. Fails
# otherwise (no file, a malformed one, a process that is gone or is
# another one now).
stack_pid() {
	local file pid start
	file=$(stack_pidfile "$1")
	[[ -f $file && ! -L $file ]] || return 1
	read -r pid start <"$file" || return 1
	[[ $pid =~ ^[1-9][0-9]*$ && $pid -gt 1 && $start =~ ^[0-9]+$ ]] || return 1
	[[ $(stack_proc_start "$pid") == "$start" ]] || return 1
	echo "$pid"
}

# --- small helpers ---------------------------------------------------------

# Where a part's output goes: its log file, or stderr.
stack_log_target() {
	if [[ -n ${STACK_LOG_DIR:-} ]]; then
		stack_mkdir_own 0750 "$STACK_LOG_DIR" || return 1
		echo "$STACK_LOG_DIR/$1.log"
	else
		echo /dev/stderr
	fi
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
#                sql/006_runtime_role.sql); no DDL, no TRUNCATE, no COPY
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

# The cluster's directories: STACK_PG_USER's; STACK_USER's group may
# reach the socket (as root: when not, both are yours, 0700).
stack_pg_dirs() {
	local dir mode=0700 owner
	[[ $(id -u) -eq 0 ]] && mode=0750
	for dir in "$STACK_DIR/pg" "$(stack_pg_socket)"; do
		if [[ -d $dir ]] && owner=$(stat -c %U "$dir") && [[ $owner != "$STACK_PG_USER" ]]; then
			say "$dir belongs to $owner, but PostgreSQL runs as $STACK_PG_USER now;" \
				"give it to $STACK_PG_USER (chown -R $STACK_PG_USER: $STACK_DIR/pg)" \
				"or remove it (rm -rf $STACK_DIR/pg: the counter starts again)"
			return 1
		fi
		stack_mkdir_for "$STACK_PG_USER:$(id -gn "$STACK_USER")" "$mode" "$dir" || return 1
	done
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

# Creates the cluster on first use (kept between runs), as STACK_PG_USER.
# One made by an older tally (trust authentication, no password files) is
# made anew.
stack_pg_init() {
	local data
	data=$(stack_pg_data)
	stack_pg_dirs || return 1
	stack_pg_auth_dir || return 1
	if [[ -f $data/PG_VERSION && ! -s $(stack_pg_passfile postgres) ]]; then
		say "$data trusts every local user (made by an older tally): making it anew"
		stack_pg_stop immediate
		stack_as_pg_user rm -rf "$data"
	fi
	if [[ ! -f $data/PG_VERSION ]]; then
		# initdb reads the password from a pipe its own user made
		# shellcheck disable=SC2016
		stack_pg_password postgres | stack_as_pg_user bash -c \
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
# commits (fsync and synchronous_commit stay on). Its log (a file this
# shell opens) is postgres.log in STACK_LOG_DIR or STACK_DIR/log.
stack_pg_start() {
	local log
	log=$(stack_log_target postgres) || return 1
	if [[ $log == /dev/stderr ]]; then
		stack_mkdir_own 0755 "$STACK_DIR/log" || return 1
		log="$STACK_DIR/log/postgres.log"
	fi
	# A cluster left running by an interrupted run is ours: use it.
	if ! stack_as_pg_user pg_ctl --pgdata="$(stack_pg_data)" status >/dev/null 2>&1; then
		stack_as_pg_user pg_ctl --pgdata="$(stack_pg_data)" --wait \
		--timeout=60 --silent \
		-o "-c listen_addresses='' -c unix_socket_directories='$(stack_pg_socket)' -c max_connections=200" \
		start >>"$log" 2>&1 </dev/null 3>&- || {
			say "PostgreSQL did not start; the end of its log ($log):"
			tail -n 5 "$log" >&2
			return 1
		}
	fi
	stack_pg_roles
}

# Stops the cluster; $1 is pg_ctl's mode (fast by default).
stack_pg_stop() {
	local mode=${1:-fast}
	if [[ -f $(stack_pg_data)/postmaster.pid ]]; then
		stack_as_pg_user pg_ctl --pgdata="$(stack_pg_data)" --mode="$mode" \
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
		(stack_exec_as_user spawn-fcgi -n -s "$sock" -M 0660 \
			-b "$TALLY_FCGI_BACKLOG" -- \
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
	log=$(stack_log_target "$name") || return 1
	stack_as_user rm -f "$STACK_DIR/run/$name.sock"
	# fd 3 closed: bats waits for whoever holds it open.
	stack_keeper "$name" "$STACK_DIR/run/$name.sock" \
		>>"$log" 2>&1 </dev/null 3>&- &
	stack_pid_save "$name" "$!"
}

stack_responders_start() {
	local name
	stack_mkdir 0750 "$STACK_DIR/run" || return 1
	tally_conn_limits || return 1
	export TALLY_RUN_DIR="$STACK_DIR/run" TALLY_SOCKET_DIR="$STACK_DIR/run"
	stack_as_user rm -f "$STACK_DIR/run/stats"
	for name in "${TALLY_RESPONDERS[@]}"; do
		stack_responder_start "$name" || return 1
	done
	for name in "${TALLY_RESPONDERS[@]}"; do
		wait_until 10 test -S "$STACK_DIR/run/$name.sock" ||
			{ say "$STACK_DIR/run/$name.sock did not appear within 10s"; return 1; }
	done
}

# --- lighttpd ----------------------------------------------------------------

# The environment lighttpd gets, as NAME=VALUE words: PATH and the TALLY_*
# settings its configuration ($1, lighttpd.conf by default) reads,
# nothing else (no DATABASE_URL, no PGPASSWORD: it faces the internet).
stack_lighttpd_env() {
	local name
	echo "PATH=$PATH"
	while read -r name; do
		name=${name#env.}
		[[ -v $name ]] && echo "$name=${!name}"
	done < <(grep -o 'env\.TALLY_[A-Z0-9_]*' "$TALLY_CONF_DIR/${1:-lighttpd.conf}" | sort -u)
}

# stack_access_log_writer FILE: appends the access log on stdin to FILE
# (at STACK_ACCESS_LOG_MAX bytes, 10 MB by default, it becomes FILE.1 and
# FILE starts again), line by line, and prints on stderr one line per 10
# s of traffic (by the log's own times): requests, per second, 5xx.
stack_access_log_writer() {
	local size opts=()
	size=$(stat -c %s "$1" 2>/dev/null) || size=0
	# mawk (Debian's awk) reads a pipe a block at a time unless told
	awk -W version 2>/dev/null | grep -q '^mawk' && opts=(-W interactive)
	STACK_ACCESS_FILE=$1 exec awk "${opts[@]}" -v max="${STACK_ACCESS_LOG_MAX:-10485760}" \
		-v size="$size" -v me="$LIB_NAME" '
		function summary() {
			if (n > 0)
				printf "%s: %s0 +10 s: %d requests (%.1f/s), %d errors (5xx)\n",
					me, substr(slot, 12), n, n / 10, e > "/dev/stderr"
			n = 0; e = 0
		}
		BEGIN { f = ENVIRON["STACK_ACCESS_FILE"] }
		{
			if (size > 0 && size + length($0) + 1 > max) {
				close(f)
				system("mv -f -- \"$STACK_ACCESS_FILE\" \"$STACK_ACCESS_FILE.1\"")
				size = 0
			}
			print >>f
			fflush(f)
			size += length($0) + 1
			t = ""
			if (match($0, /"time":"[^"]*"/)) t = substr($0, RSTART + 8, 18)
			if (t != slot) { summary(); slot = t }
			n++
			if ($0 ~ /"status":5[0-9][0-9],/) e++
		}
		END { summary() }'
}

# Starts the internal listener (lighttpd-internal.conf: /livez, /healthz,
# /metrics) on 127.0.0.1, port tally_internal_port, and waits until it
# listens there and answers: the health checks use it, so a client that
# exhausts the public listener does not blind them.
stack_lighttpd_internal_start() {
	local log pid env=() port
	port=$(tally_internal_port)
	# shellcheck disable=SC2034 # read by stack_lighttpd_env
	local TALLY_INTERNAL_LISTEN=127.0.0.1 TALLY_INTERNAL_PORT=$port
	log=$(stack_log_target lighttpd-internal) || return 1
	mapfile -t env < <(stack_lighttpd_env lighttpd-internal.conf)
	# shellcheck disable=SC2016
	(stack_exec_as_user env -i "${env[@]}" bash -c \
		'exec lighttpd -D -f "$1" 2> >(exec cat >&2)' \
		lighttpd "$TALLY_CONF_DIR/lighttpd-internal.conf") >>"$log" 2>&1 </dev/null 3>&- &
	pid=$!
	stack_pid_save lighttpd-internal "$pid"
	if ! wait_until 15 stack_listens "$pid" "$TALLY_INTERNAL_PORT" ||
		! wait_until 15 http_answers "http://127.0.0.1:$TALLY_INTERNAL_PORT/livez"; then
		say "the internal listener (PID $pid, its messages in $log) does not answer on port $TALLY_INTERNAL_PORT;" \
			"the port is in use by $(stack_port_users "$TALLY_INTERNAL_PORT" || echo nobody)"
		return 1
	fi
}

# Starts lighttpd, and waits until it is the one that listens on
# TALLY_PORT and answers there: another server's answer is not its.
# The internal listener first (stack_lighttpd_internal_start).
stack_lighttpd_start() {
	local log pid env=() TALLY_ACCESS_LOG=${TALLY_ACCESS_LOG:-/dev/stderr}
	export TALLY_LISTEN=${TALLY_LISTEN:-127.0.0.1} TALLY_PORT=${TALLY_PORT:-8080}
	export TALLY_SOCKET_DIR="$STACK_DIR/run"
	tally_conn_limits || return 1
	tally_cors_origins || return 1
	stack_lighttpd_internal_start || return 1
	log=$(stack_log_target lighttpd) || return 1
	stack_mkdir_own 0755 "$STACK_DIR/pid" || return 1
	if [[ -n ${STACK_ACCESS_LOG:-} ]]; then
		stack_mkdir_own 0755 "${STACK_ACCESS_LOG%/*}" || return 1
		TALLY_ACCESS_LOG=/dev/fd/3
	fi
	mapfile -t env < <(stack_lighttpd_env)
	# lighttpd opens its logs by name (/dev/stderr, /dev/fd/3): give it
	# pipes that its own user made, which it may open whoever owns the
	# other ends (fd 4: the access log's writer).
	# shellcheck disable=SC2016
	if [[ -n ${STACK_ACCESS_LOG:-} ]]; then
		(stack_exec_as_user env -i "${env[@]}" bash -c \
			'exec lighttpd -D -f "$1" 2> >(exec cat >&2) 3> >(exec cat >&4) 4>&-' \
			lighttpd "$TALLY_CONF_DIR/lighttpd.conf") >>"$log" 2>&1 </dev/null 3>&- \
			4> >(stack_access_log_writer "$STACK_ACCESS_LOG") &
	else
		(stack_exec_as_user env -i "${env[@]}" bash -c \
			'exec lighttpd -D -f "$1" 2> >(exec cat >&2)' \
			lighttpd "$TALLY_CONF_DIR/lighttpd.conf") >>"$log" 2>&1 </dev/null 3>&- &
	fi
	pid=$!
	stack_pid_save lighttpd "$pid"
	wait_until 15 stack_lighttpd_settled "$pid" || true
	if pid_gone "$pid"; then
		say "lighttpd exited at start (its messages are in $log);" \
			"port $TALLY_PORT: $(stack_port_users "$TALLY_PORT" || echo free)"
		return 1
	fi
	if ! stack_listens "$pid" "$TALLY_PORT"; then
		say "lighttpd (PID $pid) does not listen on port $TALLY_PORT after 15 s;" \
			"the port is in use by $(stack_port_users "$TALLY_PORT" || echo nobody)"
		return 1
	fi
	http_answers "http://$TALLY_LISTEN:$TALLY_PORT/livez" ||
		{ say "http://$TALLY_LISTEN:$TALLY_PORT/livez did not answer within 15s"; return 1; }
}

# Has lighttpd (PID) either exited, or bound TALLY_PORT and answered?
stack_lighttpd_settled() {
	pid_gone "$1" && return 0
	stack_listens "$1" "$TALLY_PORT" && http_answers "http://$TALLY_LISTEN:$TALLY_PORT/livez"
}

# --- the whole stack -----------------------------------------------------------

# Claims STACK_DIR and TALLY_PORT (stack_claim), then starts the private
# cluster unless DATABASE_URL or PGHOST names another, the schema step,
# the responders and lighttpd.
stack_start() {
	stack_claim || return 1
	stack_user_setup || return 1
	stack_check_access "$TALLY_BIN_DIR/tally-time" "$TALLY_WWW_DIR/index.html" \
		"$TALLY_CONF_DIR/lighttpd.conf" "$TALLY_SQL_DIR" "$STACK_DIR" || return 1
	if [[ -z ${DATABASE_URL:-} && -z ${PGHOST:-} ]]; then
		# the private cluster's roles log in with their password files;
		# a PGPASSWORD meant for another database would override them
		unset PGPASSWORD
		stack_pg_init || return 1
		stack_pg_start || return 1
		DATABASE_URL=$(stack_pg_url)
		export DATABASE_URL
	fi
	stack_migrate || return 1
	stack_responders_start || return 1
	stack_lighttpd_start
}

# Returns when lighttpd has exited. The caller's traps run meanwhile: the
# pause between checks is a child, STACK_IDLE_PID, for them to stop.
stack_idle() {
	while stack_pid lighttpd >/dev/null; do
		sleep 1 &
		STACK_IDLE_PID=$!
		wait "$STACK_IDLE_PID" || true
	done
	STACK_IDLE_PID=
}

# Sends a signal to a part started by this file and waits for it: only to
# the process its pid file names, and only while it is still that one
# (stack_pid).
stack_stop_part() {
	local name=$1 sig=$2 seconds=$3 pid
	if pid=$(stack_pid "$name"); then
		if kill -"$sig" "$pid" 2>/dev/null && ! wait_until "$seconds" pid_gone "$pid"; then
			say "$name did not stop in ${seconds}s; killing it"
			if stack_pid "$name" >/dev/null; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
	fi
	rm -f "$(stack_pidfile "$name")"
}

# Stops everything in order: lighttpd first, gracefully (SIGINT: it
# finishes the requests under way), then the responders, then PostgreSQL.
stack_stop() {
	local name pids=()
	stack_stop_part lighttpd INT 15
	stack_stop_part lighttpd-internal INT 15
	for name in "${TALLY_RESPONDERS[@]}"; do
		stack_stop_part "$name" TERM 15 &
		pids+=($!)
	done
	# only these jobs: the caller may have other children (another stack)
	wait "${pids[@]}"
	stack_pg_stop fast
	rm -f "$(stack_pidfile owner)"
	stack_release
}
