-- tally schema 003: plan tally_increment_keyed's statements on every call.
--
-- PL/pgSQL caches a generic plan for each statement of a function after
-- a few calls. Planned while tally_idempotency_keys is still nearly empty
-- and not yet analysed, those plans scan the whole table to find a key,
-- and they stay in use until an ANALYZE invalidates them. Measured on a
-- fresh cluster: keyed writes fell from 1.6k to 0.76k per second within
-- 15 s while the table grew to 16k rows. Custom plans see the table's
-- current size and look keys up through its primary key from the start
-- (3.1-3.5k per second on the same table), for a few microseconds of
-- planning per statement.

ALTER FUNCTION tally_increment_keyed(bigint, text[], integer)
    SET plan_cache_mode = force_custom_plan;
