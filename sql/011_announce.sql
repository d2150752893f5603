-- tally schema 011: every committed change of a counter's value is
-- announced, for the live streams (tally-stream, docs/api.md "/stream").
--
-- After each statement that creates counters or changes their values,
-- a trigger sends one NOTIFY on the channel tally_counter per counter
-- whose value the statement changed (or created), with the payload
--
--     {"name": "NAME", "value": VALUE}
--
-- (a JSON object; the default counter's name is ""). PostgreSQL delivers
-- notifications only when the transaction commits, in commit order, and
-- never those of a transaction rolled back: a listener hears committed
-- values only. Statements that change nothing but the default row's
-- bookkeeping (keys_added, counters) announce nothing. The triggers
-- fire for every writer, tally_count_named's statements included, and
-- need no privilege of the runtime role's: NOTIFY and pg_notify are
-- PUBLIC's, and a trigger's function is not checked at run time.

CREATE OR REPLACE FUNCTION tally_announce()
RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r   record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        FOR r IN SELECT n.name, n.value FROM tally_announce_new AS n
                  ORDER BY n.id LOOP
            PERFORM pg_notify('tally_counter',
                json_build_object('name', r.name, 'value', r.value)::text);
        END LOOP;
    ELSE
        FOR r IN SELECT n.name, n.value
                   FROM tally_announce_new AS n
                   JOIN tally_announce_old AS o ON o.id = n.id
                  WHERE n.value IS DISTINCT FROM o.value
                  ORDER BY n.id LOOP
            PERFORM pg_notify('tally_counter',
                json_build_object('name', r.name, 'value', r.value)::text);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tally_announce() FROM PUBLIC;

-- A trigger with transition tables takes one event: one each.
DROP TRIGGER IF EXISTS tally_announce_update ON tally_counter;
CREATE TRIGGER tally_announce_update
    AFTER UPDATE ON tally_counter
    REFERENCING OLD TABLE AS tally_announce_old
                NEW TABLE AS tally_announce_new
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce();
DROP TRIGGER IF EXISTS tally_announce_insert ON tally_counter;
CREATE TRIGGER tally_announce_insert
    AFTER INSERT ON tally_counter
    REFERENCING NEW TABLE AS tally_announce_new
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce();
