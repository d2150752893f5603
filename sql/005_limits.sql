-- tally schema 005: the counter stops at its maximum, and the number of
-- Idempotency-Keys held is capped.
--
-- The counter is a bigint: at 9223372036854775807 an increment would fail
-- with "bigint out of range", and a batch of increments crossing that
-- value would fail whole. tally_count_keyed counts what still fits, in
-- the order of its values, and refuses the rest without an error, so the
-- statement commits and the connection stays as it is. (The batches
-- without keys use a plain UPDATE guarded the same way: src/counter.c.)
--
-- Every new key holds about 900 bytes for the retention period, and any
-- client may send new keys. At most max_keys are held: beyond that, new
-- keys are refused (not counted, not recorded) until expired ones are
-- deleted; keys already held are never dropped to make room, and replay
-- as before. Counting the table's rows on every call would cost a scan,
-- so the number held is kept as two running totals: keys_added in the
-- counter's row (which every increment locks and updates anyway, so this
-- adds no lock and no row version), and removed in a row of its own,
-- which a trigger adds to for every DELETE of keys (the expiry threads,
-- or anyone's), so writers never wait for deletes nor deletes for
-- writers. A writer reads `removed` as last committed: a delete that is
-- not yet committed only makes it count more keys than there are, never
-- fewer. A key taken over after it expired, but before it was deleted,
-- adds no row and is not added.
--
-- tally_count_keyed(unkeyed, keys, retention_s, max_keys) is
-- tally_increment_keyed of 004 with these limits (max_keys NULL: no cap).
-- Its first row: key NULL, value the counter's new value, counted how
-- many of the `unkeyed` increments were counted (the first ones: the
-- values right after the counter's old value). Then one row per key, in
-- the order given: its value (NULL if refused) and its outcome: 'counted'
-- now, 'replayed' (counted within the retention period: its value then),
-- 'maximum' (refused: the counter is at its maximum) or 'full' (refused:
-- max_keys are held). Keys are counted after the unkeyed increments and
-- in the order given.
--
-- tally_increment_keyed stays for the responders of the previous version
-- during an upgrade; it now runs tally_count_keyed (without a cap), so
-- that every new key is added to keys_added.

ALTER TABLE tally_counter
    ADD COLUMN IF NOT EXISTS keys_added bigint NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS tally_idempotency_removed (
    id      smallint PRIMARY KEY CHECK (id = 1),
    removed bigint   NOT NULL DEFAULT 0
);

INSERT INTO tally_idempotency_removed (id, removed) VALUES (1, 0)
    ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION tally_idempotency_keys_deleted()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM gone;
    IF n > 0 THEN
        UPDATE tally_idempotency_removed SET removed = removed + n
            WHERE id = 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tally_idempotency_keys_truncated()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tally_idempotency_removed SET removed = 0 WHERE id = 1;
    UPDATE tally_counter SET keys_added = 0 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER tally_idempotency_keys_deleted
    AFTER DELETE ON tally_idempotency_keys
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION tally_idempotency_keys_deleted();
CREATE TRIGGER tally_idempotency_keys_truncated
    AFTER TRUNCATE ON tally_idempotency_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tally_idempotency_keys_truncated();

-- The totals start from the keys held now. The ALTER TABLE above locked
-- the counter's row's table, and the triggers the keys' table, until
-- this migration commits: no key comes or goes meanwhile.
UPDATE tally_counter
   SET keys_added = (SELECT count(*) FROM tally_idempotency_keys)
 WHERE id = 1;
UPDATE tally_idempotency_removed SET removed = 0 WHERE id = 1;

CREATE OR REPLACE FUNCTION tally_count_keyed(unkeyed bigint, keys text[],
                                             retention_s integer,
                                             max_keys bigint)
RETURNS TABLE (key text, value bigint, outcome text, counted bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    known   text[];     -- keys counted within the retention period
    kvals   bigint[];   -- their values
    fresh   text[];     -- the others, in the order given
    n_unk   bigint;     -- unkeyed increments counted
    n_new   bigint;     -- fresh keys counted: the first n_new of fresh
    n_ins   bigint;
    n_rows  bigint;     -- of those, rows inserted (not expired ones reused)
    room    bigint;     -- how far the counter is from its maximum
    k_room  bigint;     -- how many more keys may be held
    added   bigint;
    gone    bigint;
    old_v   bigint;
    v       bigint;
BEGIN
    SELECT c.value, c.keys_added INTO old_v, added
      FROM tally_counter AS c WHERE c.id = 1 FOR UPDATE;
    SELECT r.removed INTO gone FROM tally_idempotency_removed AS r
     WHERE r.id = 1;

    SELECT coalesce(array_agg(t.key), '{}'), coalesce(array_agg(t.value), '{}')
      INTO known, kvals
      FROM tally_idempotency_keys AS t
     WHERE t.key = ANY (keys)
       AND t.created_at >= now() - make_interval(secs => retention_s);
    SELECT coalesce(array_agg(u.k ORDER BY u.ord), '{}') INTO fresh
      FROM unnest(keys) WITH ORDINALITY AS u(k, ord)
     WHERE NOT (u.k = ANY (known));

    room := 9223372036854775807 - old_v;
    n_unk := least(unkeyed, room);
    room := room - n_unk;
    k_room := CASE WHEN max_keys IS NULL THEN cardinality(fresh)
                   ELSE greatest(max_keys - (added - coalesce(gone, 0)), 0) END;
    n_new := least(cardinality(fresh), room, k_room);
    v := old_v + n_unk + n_new;

    WITH ins AS (
        INSERT INTO tally_idempotency_keys AS t (key, value)
        SELECT f.k, old_v + n_unk + f.i
          FROM unnest(fresh) WITH ORDINALITY AS f(k, i)
         WHERE f.i <= n_new
            ON CONFLICT (key) DO UPDATE
               SET value = EXCLUDED.value, created_at = now()
             WHERE t.created_at < now() - make_interval(secs => retention_s)
        RETURNING t.xmax = 0 AS inserted
    )
    SELECT count(*), count(*) FILTER (WHERE ins.inserted) INTO n_ins, n_rows
      FROM ins;
    IF n_ins <> n_new THEN
        RAISE EXCEPTION 'tally_count_keyed: % of % new keys recorded',
            n_ins, n_new;
    END IF;

    UPDATE tally_counter SET value = v, keys_added = keys_added + n_rows
     WHERE id = 1;

    RETURN QUERY SELECT NULL::text, v, NULL::text, n_unk;
    RETURN QUERY
        SELECT u.k,
               CASE WHEN kv.k IS NOT NULL THEN kv.val
                    WHEN f.i <= n_new THEN old_v + n_unk + f.i END,
               CASE WHEN kv.k IS NOT NULL THEN 'replayed'
                    WHEN f.i <= n_new THEN 'counted'
                    WHEN f.i > room THEN 'maximum'
                    ELSE 'full' END,
               NULL::bigint
          FROM unnest(keys) WITH ORDINALITY AS u(k, ord)
          LEFT JOIN unnest(fresh) WITH ORDINALITY AS f(k, i) ON f.k = u.k
          LEFT JOIN unnest(known, kvals) AS kv(k, val) ON kv.k = u.k
         ORDER BY u.ord;
END
$$;

ALTER FUNCTION tally_count_keyed(bigint, text[], integer, bigint)
    SET enable_seqscan = off;

-- The previous version's calls: a batch that does not fit below the
-- maximum fails whole, as it did before (that version would acknowledge
-- every increment of the batch).
CREATE OR REPLACE FUNCTION tally_increment_keyed(unkeyed bigint, keys text[],
                                                 retention_s integer)
RETURNS TABLE (key text, value bigint, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM tally_count_keyed(unkeyed, keys, retention_s, NULL)
    LOOP
        IF c.outcome = 'maximum' OR c.counted < unkeyed THEN
            RAISE EXCEPTION 'tally_increment_keyed: the counter is at its maximum'
                USING ERRCODE = 'numeric_value_out_of_range';
        END IF;
        key := c.key;
        value := c.value;
        replayed := c.outcome = 'replayed';
        RETURN NEXT;
    END LOOP;
END
$$;

ALTER FUNCTION tally_increment_keyed(bigint, text[], integer)
    RESET enable_seqscan;

-- Whoever was granted rights on the keys or the keyed function (database
-- roles of an earlier migration, or an operator's) gets the same use of
-- what this migration adds: writers read tally_idempotency_removed,
-- whoever deletes keys adds to it (the trigger runs as them), and the
-- responders call tally_count_keyed. Without explicit grants (everything
-- runs as the owner) there is nothing to do.
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee::regrole AS role
               FROM pg_class AS c, aclexplode(c.relacl) AS a
              WHERE c.oid = 'tally_idempotency_keys'::regclass
                AND a.grantee <> 0 AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT SELECT, UPDATE ON tally_idempotency_removed TO %s',
                       g.role);
    END LOOP;
    FOR g IN SELECT DISTINCT a.grantee::regrole AS role
               FROM pg_proc AS p, aclexplode(p.proacl) AS a
              WHERE p.oid = 'tally_increment_keyed(bigint, text[], integer)'::regprocedure
                AND a.grantee <> 0 AND a.grantee <> p.proowner
                AND a.privilege_type = 'EXECUTE'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION '
                       'tally_count_keyed(bigint, text[], integer, bigint) TO %s',
                       g.role);
    END LOOP;
END
$$;
