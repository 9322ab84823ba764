-- journal_append returns the last position it drew, so that a batch the writer can vouch for
-- entirely is one prepared statement in its own (implicit) transaction: one round trip with no
-- BEGIN or COMMIT statements, no SQL text to lex around the JSON, and no currval query after it
-- (persistence/pg_event_store.cpp). Positions are still drawn contiguously under the journal
-- lock, in array order, so the last one tells them all.
--
-- The lock is taken inline, with journal_lock's key: journal_lock is an SQL function, whose plan
-- PL/pgSQL cannot keep, so calling it planned it again for every batch (about 3% of the
-- writer's time in PostgreSQL). Otherwise as in 0006.
DROP FUNCTION journal_append(jsonb);
CREATE FUNCTION journal_append(p_events jsonb) RETURNS bigint
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(1397311306, 'events'::regclass::oid::integer);  -- journal_lock
  INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version,
                      payload, metadata, correlation_id)
  SELECT x.e ->> 0, x.e ->> 1, (x.e ->> 2)::bigint, (x.e ->> 3)::uuid, x.e ->> 4,
         (x.e ->> 5)::integer, x.e -> 6, x.e -> 7, x.e ->> 8
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, k)
   ORDER BY x.k;
  RETURN currval(pg_get_serial_sequence('events', 'position'));
END
$$;
