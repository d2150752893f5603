"""tally bench - the service users run today: Flask + psycopg2.

The same three endpoints as tally, written the usual way, served by
gunicorn with sync workers ("gunicorn -w 4 flask_app:app"). Each worker
keeps a small pool of PostgreSQL connections (DATABASE_URL, a libpq
conninfo or URI). Statements run in autocommit mode: one round trip
each, and with synchronous_commit on an answered POST /write is durable.
A database error answers 503, as tally does.
"""

import datetime
import os

import psycopg2
import psycopg2.pool
from flask import Flask, jsonify, request

app = Flask(__name__)
_pool = None


def pool():
    """The worker's own pool, made on first use (after gunicorn forked)."""
    global _pool
    if _pool is None:
        _pool = psycopg2.pool.SimpleConnectionPool(
            1, 2, os.environ["DATABASE_URL"])
    return _pool


def one_value(sql):
    """Runs a statement that returns one value; None if the database failed."""
    conn = pool().getconn()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            value = cur.fetchone()[0]
    except psycopg2.Error:
        pool().putconn(conn, close=True)
        return None
    pool().putconn(conn)
    return value


def counter_answer(value):
    if value is None:
        answer = jsonify(error="database unavailable")
        answer.status_code = 503
        answer.headers["Retry-After"] = "1"
        return answer
    return jsonify(counter=value)


@app.get("/time")
def time():
    now = datetime.datetime.now(datetime.timezone.utc)
    forwarded = request.headers.get("X-Forwarded-For", "")
    chain = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return jsonify(timestamp=now.isoformat(timespec="milliseconds"),
                   user_ip=request.remote_addr, proxy_chain=chain)


@app.get("/read")
def read():
    return counter_answer(
        one_value("SELECT value FROM tally_counter WHERE id = 1"))


@app.post("/write")
def write():
    return counter_answer(one_value(
        "UPDATE tally_counter SET value = value + 1 WHERE id = 1 "
        "RETURNING value"))
