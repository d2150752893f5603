-- tally schema 006: the counter stops at its maximum.
--
-- The counter is a bigint: at 9223372036854775807 an increment would fail
-- with "bigint out of range", and a batch of increments crossing that
-- value would fail whole. tally_count_keyed counts what still fits, in
-- the order of its values, and refuses the rest without an error, so the
-- statement commits and the connection stays as it is. (The batches
-- without keys use a plain UPDATE guarded the same way: src/counter.c.)
--
-- tally_count_keyed(unkeyed, keys, retention_s) is tally_increment_keyed
-- of 004 with that limit. Its first row: key NULL, value the counter's
-- new value, counted how many of the `unkeyed` increments were counted
-- (the first ones: the values right after the counter's old value).
-- Then one row per key, in the order given: its value (NULL if refused)
-- and its outcome: 'counted' now, 'replayed' (counted within the
-- retention period: its value then) or 'maximum' (refused: the counter is
-- at its maximum). Keys are counted after the unkeyed increments and in
-- the order given.
--
-- tally_increment_keyed stays for the responders of the previous version
-- during an upgrade; it now runs tally_count_keyed, so that every keyed
-- increment goes through one function.

CREATE OR REPLACE FUNCTION tally_count_keyed(unkeyed bigint, keys text[],
                                             retention_s integer)
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
    room    bigint;     -- how far the counter is from its maximum
    old_v   bigint;
    v       bigint;
BEGIN
    SELECT c.value INTO old_v FROM tally_counter AS c WHERE c.id = 1
        FOR UPDATE;

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
    n_new := least(cardinality(fresh), room - n_unk);
    v := old_v + n_unk + n_new;

    INSERT INTO tally_idempotency_keys AS t (key, value)
    SELECT f.k, old_v + n_unk + f.i
      FROM unnest(fresh) WITH ORDINALITY AS f(k, i)
     WHERE f.i <= n_new
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, created_at = now()
        WHERE t.created_at < now() - make_interval(secs => retention_s);
    GET DIAGNOSTICS n_ins = ROW_COUNT;
    IF n_ins <> n_new THEN
        RAISE EXCEPTION 'tally_count_keyed: % of % new keys recorded',
            n_ins, n_new;
    END IF;

    UPDATE tally_counter SET value = v WHERE id = 1;

    RETURN QUERY SELECT NULL::text, v, NULL::text, n_unk;
    RETURN QUERY
        SELECT u.k,
               CASE WHEN kv.k IS NOT NULL THEN kv.val
                    WHEN f.i <= n_new THEN old_v + n_unk + f.i END,
               CASE WHEN kv.k IS NOT NULL THEN 'replayed'
                    WHEN f.i <= n_new THEN 'counted'
                    ELSE 'maximum' END,
               NULL::bigint
          FROM unnest(keys) WITH ORDINALITY AS u(k, ord)
          LEFT JOIN unnest(fresh) WITH ORDINALITY AS f(k, i) ON f.k = u.k
          LEFT JOIN unnest(known, kvals) AS kv(k, val) ON kv.k = u.k
         ORDER BY u.ord;
END
$$;

ALTER FUNCTION tally_count_keyed(bigint, text[], integer)
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
    FOR c IN SELECT * FROM tally_count_keyed(unkeyed, keys, retention_s) LOOP
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
