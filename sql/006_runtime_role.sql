-- tally schema 006: the runtime role's privileges, in one place.
--
-- The owner role (it runs tally-migrate and owns every table and
-- function) is not the role the responders log in as. After applying the
-- migrations, tally-migrate --grant-to ROLE (or TALLY_RUNTIME_ROLE) calls
-- tally_grant_runtime(ROLE), which gives that role exactly what the
-- responders' statements need (src/counter.c, src/idempotency.c) and
-- takes back anything else it or PUBLIC held on tally's objects: no
-- DDL, no TRUNCATE, no other function, no temporary objects. A migration
-- that adds an object the responders use changes this function with it.
-- Running it again changes nothing.

-- Nobody but the owner and the roles granted below calls tally's
-- functions (PUBLIC may execute any new function by default).
REVOKE ALL ON FUNCTION tally_increment_keyed(bigint, text[], integer)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION tally_count_keyed(bigint, text[], integer, bigint)
    FROM PUBLIC;

CREATE OR REPLACE FUNCTION tally_grant_runtime(runtime name)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r   record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = runtime) THEN
        RAISE EXCEPTION 'runtime role "%" does not exist', runtime;
    END IF;
    IF pg_has_role(runtime, current_user, 'USAGE') THEN
        RAISE EXCEPTION 'runtime role "%" is, or uses the privileges of, '
            'the owner "%": create a role of its own', runtime, current_user;
    END IF;
    IF (SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls
          FROM pg_roles WHERE rolname = runtime) THEN
        RAISE EXCEPTION 'runtime role "%" is a superuser or may create '
            'roles or databases or bypass row security', runtime;
    END IF;

    -- Everything taken back from PUBLIC and the runtime role...
    FOR r IN SELECT c.oid::regclass AS obj, c.relkind
               FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace
                AND c.relowner = current_user::regrole
                AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') LOOP
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC, %I',
            CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
            r.obj, runtime);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS obj
               FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace
                AND p.proowner = current_user::regrole LOOP
        EXECUTE format('REVOKE ALL ON ROUTINE %s FROM PUBLIC, %I',
            r.obj, runtime);
    END LOOP;
    EXECUTE format('REVOKE CREATE ON SCHEMA public FROM %I', runtime);
    IF pg_has_role((SELECT nspowner FROM pg_namespace
                     WHERE nspname = 'public'), 'USAGE') THEN
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    END IF;
    EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM %I',
        current_database(), runtime);
    IF pg_has_role((SELECT datdba FROM pg_database
                     WHERE datname = current_database()), 'USAGE') THEN
        EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC',
            current_database());
    END IF;

    -- ...then what the responders' statements use.
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I',
        current_database(), runtime);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', runtime);
    -- tally_read, tally_increment; the keyed function locks the row
    EXECUTE format('GRANT SELECT, UPDATE ON tally_counter TO %I', runtime);
    -- the keyed function's lookup and insert; tally_expire_keys
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE '
        'ON tally_idempotency_keys TO %I', runtime);
    -- the key cap (schema 005): writers read the number of keys removed,
    -- the delete trigger, running as the deleter, adds to it
    EXECUTE format('GRANT SELECT, UPDATE ON tally_idempotency_removed '
        'TO %I', runtime);
    -- the responders call tally_count_keyed; tally_increment_keyed stays
    -- for a responder of the version before during a rolling upgrade
    EXECUTE format('GRANT EXECUTE ON FUNCTION '
        'tally_count_keyed(bigint, text[], integer, bigint) TO %I', runtime);
    EXECUTE format('GRANT EXECUTE ON FUNCTION '
        'tally_increment_keyed(bigint, text[], integer) TO %I', runtime);

    -- What no grant elsewhere may have left: the checks the tests make.
    IF has_schema_privilege(runtime, 'public', 'CREATE') OR
       has_database_privilege(runtime, current_database(), 'CREATE') THEN
        RAISE EXCEPTION 'runtime role "%" may still create objects: the '
            'owner of schema public or of the database must revoke CREATE '
            'from PUBLIC (README, "Deploy")', runtime;
    END IF;
    IF has_database_privilege(runtime, current_database(), 'TEMPORARY') THEN
        RAISE WARNING 'runtime role "%" may still create temporary tables: '
            'the owner of the database should revoke TEMPORARY from PUBLIC',
            runtime;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION tally_grant_runtime(name) FROM PUBLIC;
