-- tally schema 002: Idempotency-Key records for POST /write.
--
-- A key is recorded in the same transaction as the increment it caused,
-- with the value that increment produced, so a retry after a lost answer,
-- a restart or a failover finds it. Keys older than the retention period
-- count as unseen; tally-write deletes them in the background.

CREATE TABLE IF NOT EXISTS tally_idempotency_keys (
    key        text        PRIMARY KEY,
    value      bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS tally_idempotency_keys_created_at
    ON tally_idempotency_keys (created_at);

-- Adds `unkeyed` plus one per key of `keys` not seen within `retention_s`
-- seconds, in one statement and so one transaction. Returns first the
-- counter's new value (key NULL), then one row per key in the order given:
-- its value and whether it was already known (a replay). The caller passes
-- distinct keys in sorted order, so concurrent calls lock keys in the same
-- order and cannot deadlock; a call that meets a key another transaction
-- has just claimed waits for it to commit, then replays its value.
CREATE OR REPLACE FUNCTION tally_increment_keyed(unkeyed bigint, keys text[],
                                                 retention_s integer)
RETURNS TABLE (key text, value bigint, replayed boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    claimed text[];
    n_new   bigint;
    v       bigint;
BEGIN
    WITH c AS (
        INSERT INTO tally_idempotency_keys AS t (key, value)
        SELECT u.k, 0 FROM unnest(keys) WITH ORDINALITY AS u(k, ord)
        ORDER BY u.ord
        ON CONFLICT (key) DO UPDATE SET value = 0, created_at = now()
            WHERE t.created_at < now() - make_interval(secs => retention_s)
        RETURNING t.key
    )
    SELECT coalesce(array_agg(c.key), '{}') INTO claimed FROM c;
    n_new := cardinality(claimed);

    UPDATE tally_counter SET value = tally_counter.value + unkeyed + n_new
        WHERE id = 1 RETURNING tally_counter.value INTO v;

    UPDATE tally_idempotency_keys AS t SET value = a.val
        FROM (SELECT u.k, v - n_new + row_number() OVER (ORDER BY u.ord) AS val
                FROM unnest(keys) WITH ORDINALITY AS u(k, ord)
               WHERE u.k = ANY (claimed)) AS a
        WHERE t.key = a.k;

    RETURN QUERY SELECT NULL::text, v, false;
    RETURN QUERY
        SELECT u.k, t.value, NOT (u.k = ANY (claimed))
          FROM unnest(keys) WITH ORDINALITY AS u(k, ord)
          JOIN tally_idempotency_keys AS t ON t.key = u.k
         ORDER BY u.ord;
END
$$;
