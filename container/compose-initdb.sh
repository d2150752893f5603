#!/usr/bin/env bash
# tally - compose-initdb.sh: run once by the postgres image of
# container/compose.yaml (docker-entrypoint-initdb.d) when its volume is
# new: the two roles and the database, as step 1 of docs/operations.md
# ("Install the chart against an external PostgreSQL") makes them. The passwords come from the environment and reach psql on stdin.
set -euo pipefail

psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<-SQL
	CREATE ROLE tally_owner LOGIN PASSWORD '${TALLY_DB_OWNER_PASSWORD//\'/\'\'}';
	CREATE ROLE tally_app LOGIN PASSWORD '${TALLY_DB_PASSWORD//\'/\'\'}';
	CREATE DATABASE tally OWNER tally_owner;
SQL
