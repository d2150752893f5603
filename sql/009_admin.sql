-- tally schema 009: what the admin API (tally-admin, docs/api.md,
-- "Admin API") needs beyond what the runtime role may already do.
--
-- Listing: the counters by name in byte order (COLLATE "C", whatever
-- the database's collation), a page at a time from where the last page
-- ended (keyset pagination): this index lets a page of a prefix be read
-- from the index alone, without sorting or skipping rows.
--
-- Setting a counter is a plain UPDATE of its row, which the runtime role
-- may do already. Deleting a named counter is not: the runtime role may
-- not DELETE from tally_counter (tests/integration/privileges.bats), so
-- tally_admin_delete(name) does it as this migration's owner (SECURITY
-- DEFINER, with a fixed search_path), and only that: it deletes the
-- named counter's row and keeps the number of named counters
-- (tally_counter.counters of the default counter, against which
-- TALLY_MAX_COUNTERS is checked) right. It locks the default counter's
-- row first, then the named one, the order tally_count_named (008) locks
-- them in, so the two cannot deadlock. It answers the deleted counter's
-- id and last value, or no row when no named counter has the name (the
-- default counter, '', is never deleted). The counter's Idempotency-Keys
-- are deleted afterwards by a statement of their own (the runtime role
-- may delete keys: src/admin.c), so that the default counter's row is
-- not held while the keys' table is searched; a key recorded for the
-- counter meanwhile cannot be (its row is gone), and one left by a
-- failure of that statement expires as every key does.

CREATE INDEX IF NOT EXISTS tally_counter_name_c
    ON tally_counter (name COLLATE "C");

CREATE OR REPLACE FUNCTION tally_admin_delete(counter_name text)
RETURNS TABLE (id bigint, value bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
#variable_conflict use_column
DECLARE
    cid bigint;
    v   bigint;
BEGIN
    IF counter_name IS NULL OR counter_name = '' THEN
        RETURN;
    END IF;
    PERFORM FROM public.tally_counter AS c WHERE c.id = 1 FOR UPDATE;
    DELETE FROM public.tally_counter AS c
     WHERE c.name = counter_name AND c.id <> 1
    RETURNING c.id, c.value INTO cid, v;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE public.tally_counter AS c SET counters = greatest(c.counters - 1, 0)
     WHERE c.id = 1;
    RETURN QUERY SELECT cid, v;
END
$$;
REVOKE ALL ON FUNCTION tally_admin_delete(text) FROM PUBLIC;

-- The runtime role may also delete a named counter, through the function
-- above: tally_grant_runtime is 008's, with that.
ALTER FUNCTION tally_grant_runtime(name) RENAME TO tally_grant_runtime_008;
CREATE FUNCTION tally_grant_runtime(runtime name)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_grant_runtime_008(runtime);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tally_admin_delete(text) '
        'TO %I', runtime);
END
$$;
REVOKE ALL ON FUNCTION tally_grant_runtime(name) FROM PUBLIC;
