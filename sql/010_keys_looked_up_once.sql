-- tally schema 010: tally_count_named looks each key up once.
--
-- 008's tally_count_named answers as before (its comment there says
-- what, and 005's what the outcomes mean); this version does the same
-- work with fewer statements and index descents, so a keyed batch holds
-- the default counter's row for less time, and the batches queued
-- behind it wait less (docs/performance.md, "The keyed tail").
--
-- 008 looked every new key up in tally_idempotency_keys three times:
-- once to find whether it was held, then twice in its INSERT ... ON
-- CONFLICT (the conflict check, then the insert's own unique check);
-- and it ran about fifteen statements a batch, two of them updating the
-- default counter's row. Here:
--   - when a batch has keys, the default counter's row is locked first
--     (as before), then every key is looked up once, in one statement:
--     under that lock nobody else records keys (every statement that
--     does is this function, and takes that lock first), so what the
--     look-up finds stays true until this transaction ends, except that
--     the expiry job may delete keys held longer than the retention
--     period;
--   - a key no row holds is inserted by a plain INSERT (one descent of
--     the primary key, its unique check included); a key whose row is
--     older than the retention period is taken over by INSERT ... ON
--     CONFLICT DO UPDATE as before, which also inserts it if the expiry
--     job deleted it meanwhile;
--   - which counters to create, the keys' outcomes and values are worked
--     out from that look-up in PL/pgSQL, without more statements; a key
--     counted on one counter of the batch answers 'other' on the next
--     one, as when each counter looked its keys up again;
--   - the new values of the counters written to, and the default
--     counter's keys_added and counters, are written by one UPDATE (008
--     ran one per counter, and a second one of the default counter's
--     row).
-- Locks are taken in the same order as 008's: the default counter's row
-- first when the batch creates counters or holds keys, then every row
-- written to in the order of their ids.

CREATE OR REPLACE FUNCTION tally_count_named(names text[], adds bigint[],
                                             keys text[], key_names text[],
                                             retention_s integer,
                                             max_keys bigint,
                                             max_counters bigint)
RETURNS TABLE (name text, key text, value bigint, outcome text,
               counted bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    nk      integer := coalesce(cardinality(keys), 0);
    cutoff  timestamptz := now() - make_interval(secs => retention_s);
    -- each key's row, as looked up under the lock (NULLs: no row)
    k_cid   bigint[];   -- its counter
    k_val   bigint[];   -- its value
    k_live  boolean[];  -- held within the retention period
    written text[];     -- the counters written to
    missing text[];     -- of those, the ones to create
    locked  boolean := false;   -- the default counter's row is locked
    added   bigint;     -- its keys_added
    n_cnt   bigint;     -- its counters
    gone    bigint;
    n_keys  bigint := 0;    -- keys added by this call
    n_made  bigint := 0;    -- counters created by this call
    w_name  text[];     -- the written counters that exist, locked...
    w_id    bigint[];   -- ...their ids
    w_val   bigint[];   -- ...and values
    u_id    bigint[] := '{}';   -- the counters whose row changes...
    u_val   bigint[] := '{}';   -- ...and their new values (NULL: as is)
    ci      integer;
    ki      integer;
    j       integer;
    cid     bigint;
    old_v   bigint;
    v       bigint;
    room    bigint;
    k_room  bigint;
    n_unk   bigint;
    n_fresh bigint;
    n_new   bigint;
    f       bigint;
    new_k   text[];     -- keys no row holds: INSERT
    new_v   bigint[];
    old_k   text[];     -- keys held beyond the retention: taken over
    old_val bigint[];
    n_ins   bigint;
    n_rows  bigint;
BEGIN
    SELECT coalesce(array_agg(DISTINCT w.n), '{}') INTO written
      FROM (SELECT u.n FROM unnest(names, adds) AS u(n, a) WHERE u.a > 0
            UNION ALL SELECT kn FROM unnest(key_names) AS kn) AS w;

    IF nk > 0 THEN
        SELECT c.keys_added, c.counters,
               (SELECT r.removed FROM tally_idempotency_removed AS r
                 WHERE r.id = 1)
          INTO added, n_cnt, gone
          FROM tally_counter AS c WHERE c.id = 1 FOR UPDATE;
        locked := true;
        SELECT array_agg(t.counter_id ORDER BY k.o),
               array_agg(t.value ORDER BY k.o),
               array_agg(t.created_at >= cutoff ORDER BY k.o)
          INTO k_cid, k_val, k_live
          FROM unnest(keys) WITH ORDINALITY AS k(k, o)
          LEFT JOIN tally_idempotency_keys AS t ON t.key = k.k;
    END IF;

    -- A counter is created for an unkeyed increment, or for a key that
    -- no counter holds: not for keys of other counters alone (refused).
    -- Without keys, the default counter's row is locked only if some
    -- counter is to be created, and then they are looked for again.
    LOOP
        SELECT coalesce(array_agg(m.n ORDER BY m.o), '{}') INTO missing
          FROM unnest(written) WITH ORDINALITY AS m(n, o)
         WHERE NOT EXISTS (SELECT FROM tally_counter AS c
                            WHERE c.name = m.n)
           AND (EXISTS (SELECT FROM unnest(names, adds) AS u(n, a)
                         WHERE u.n = m.n AND u.a > 0)
                OR EXISTS (SELECT FROM unnest(key_names, k_live) AS k(n, l)
                            WHERE k.n = m.n AND k.l IS NOT TRUE));
        EXIT WHEN locked OR cardinality(missing) = 0;
        SELECT c.keys_added, c.counters,
               (SELECT r.removed FROM tally_idempotency_removed AS r
                 WHERE r.id = 1)
          INTO added, n_cnt, gone
          FROM tally_counter AS c WHERE c.id = 1 FOR UPDATE;
        locked := true;
    END LOOP;
    IF cardinality(missing) > 0 THEN
        INSERT INTO tally_counter (name, value)
        SELECT m.n, 0 FROM unnest(missing) WITH ORDINALITY AS m(n, o)
         WHERE m.o <= greatest(max_counters - n_cnt, 0)
         ORDER BY m.o;
        GET DIAGNOSTICS n_made = ROW_COUNT;
    END IF;

    SELECT coalesce(array_agg(s.name), '{}'), coalesce(array_agg(s.id), '{}'),
           coalesce(array_agg(s.value), '{}')
      INTO w_name, w_id, w_val
      FROM (SELECT c.name, c.id, c.value FROM tally_counter AS c
             WHERE c.name = ANY (written) ORDER BY c.id FOR UPDATE) AS s;

    FOR ci IN 1 .. coalesce(cardinality(names), 0) LOOP
        j := array_position(w_name, names[ci]);
        IF j IS NOT NULL THEN
            cid := w_id[j];
            old_v := w_val[j];
        ELSE
            -- only read, or not created
            SELECT c.id, c.value INTO cid, old_v
              FROM tally_counter AS c WHERE c.name = names[ci];
        END IF;
        name := names[ci];
        IF cid IS NULL THEN
            -- Not created: at the cap, or only keys of other counters.
            key := NULL;
            value := NULL;
            outcome := CASE WHEN adds[ci] > 0 THEN 'cap' ELSE 'absent' END;
            counted := 0;
            RETURN NEXT;
            counted := NULL;
            FOR ki IN 1 .. nk LOOP
                CONTINUE WHEN key_names[ki] IS DISTINCT FROM names[ci];
                key := keys[ki];
                outcome := CASE WHEN k_live[ki] THEN 'other' ELSE 'cap' END;
                RETURN NEXT;
            END LOOP;
            CONTINUE;
        END IF;

        n_fresh := 0;
        FOR ki IN 1 .. nk LOOP
            IF key_names[ki] = names[ci] AND k_live[ki] IS NOT TRUE THEN
                n_fresh := n_fresh + 1;
            END IF;
        END LOOP;
        room := 9223372036854775807 - old_v;
        n_unk := least(adds[ci], room);
        room := room - n_unk;
        k_room := CASE WHEN max_keys IS NULL THEN n_fresh
                       ELSE greatest(max_keys -
                            (added + n_keys - coalesce(gone, 0)), 0) END;
        n_new := least(n_fresh, room, k_room);
        v := old_v + n_unk + n_new;

        key := NULL;
        value := v;
        outcome := NULL;
        counted := n_unk;
        RETURN NEXT;
        counted := NULL;
        new_k := '{}';
        new_v := '{}';
        old_k := '{}';
        old_val := '{}';
        f := 0;
        FOR ki IN 1 .. nk LOOP
            CONTINUE WHEN key_names[ki] IS DISTINCT FROM names[ci];
            key := keys[ki];
            IF k_live[ki] THEN
                IF k_cid[ki] = cid THEN
                    value := k_val[ki];
                    outcome := 'replayed';
                ELSE
                    value := NULL;
                    outcome := 'other';
                END IF;
            ELSE
                f := f + 1;
                IF f <= n_new THEN
                    value := old_v + n_unk + f;
                    outcome := 'counted';
                    IF k_live[ki] IS NULL THEN
                        new_k := new_k || keys[ki];
                        new_v := new_v || value;
                    ELSE
                        old_k := old_k || keys[ki];
                        old_val := old_val || value;
                    END IF;
                    -- held now: by this counter, for the batch's others
                    j := array_position(keys, keys[ki]);
                    WHILE j IS NOT NULL LOOP
                        k_live[j] := true;
                        k_cid[j] := cid;
                        k_val[j] := value;
                        j := array_position(keys, keys[ki], j + 1);
                    END LOOP;
                ELSE
                    value := NULL;
                    outcome := CASE WHEN f > room THEN 'maximum'
                                    ELSE 'full' END;
                END IF;
            END IF;
            RETURN NEXT;
        END LOOP;

        IF cardinality(new_k) > 0 THEN
            INSERT INTO tally_idempotency_keys (key, value, counter_id)
            SELECT u.k, u.v, cid FROM unnest(new_k, new_v) AS u(k, v);
            GET DIAGNOSTICS n_rows = ROW_COUNT;
            n_keys := n_keys + n_rows;
        END IF;
        IF cardinality(old_k) > 0 THEN
            WITH ins AS (
                INSERT INTO tally_idempotency_keys AS t
                       (key, value, counter_id)
                SELECT u.k, u.v, cid FROM unnest(old_k, old_val) AS u(k, v)
                    ON CONFLICT (key) DO UPDATE
                       SET value = EXCLUDED.value, created_at = now(),
                           counter_id = EXCLUDED.counter_id
                     WHERE t.created_at < cutoff
                RETURNING t.xmax = 0 AS inserted
            )
            SELECT count(*), count(*) FILTER (WHERE ins.inserted)
              INTO n_ins, n_rows FROM ins;
            IF n_ins <> cardinality(old_k) THEN
                RAISE EXCEPTION 'tally_count_named: % of % expired keys recorded',
                    n_ins, cardinality(old_k);
            END IF;
            n_keys := n_keys + n_rows;
        END IF;
        IF v <> old_v THEN
            u_id := u_id || cid;
            u_val := u_val || v;
        END IF;
    END LOOP;

    IF (n_keys > 0 OR n_made > 0) AND NOT (1 = ANY (u_id)) THEN
        u_id := u_id || 1::bigint;
        u_val := u_val || NULL::bigint;
    END IF;
    IF cardinality(u_id) > 0 THEN
        UPDATE tally_counter AS c
           SET value = coalesce(u.v, c.value),
               keys_added = c.keys_added +
                   CASE WHEN c.id = 1 THEN n_keys ELSE 0 END,
               counters = c.counters +
                   CASE WHEN c.id = 1 THEN n_made ELSE 0 END
          FROM unnest(u_id, u_val) AS u(id, v)
         WHERE c.id = u.id;
    END IF;
END
$$;

ALTER FUNCTION tally_count_named(text[], bigint[], text[], text[], integer,
                                 bigint, bigint)
    SET enable_seqscan = off;
