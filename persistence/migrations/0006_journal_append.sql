-- Cheaper appends (persistence/pg_event_store.cpp), measured on the group-commit writer's path.
--
-- 1. events.correlation_id: a plain column the writer fills from the event's metadata (NULL
--    when it has none), indexed for traces (GET /trace/correlation/:id). The expression index of
--    0004 evaluated `metadata ->> 'correlation_id'` twice per inserted row (predicate and key);
--    this costs one text value. `metadata` still holds the id too: readers decode it from there.
--    The backfill rewrites the table once (ALTER … TYPE … USING) rather than UPDATE every row,
--    which would leave a dead copy of each row and of its index entries behind.
ALTER TABLE events ADD COLUMN correlation_id text COLLATE "C";
ALTER TABLE events ALTER COLUMN correlation_id TYPE text COLLATE "C"
  USING metadata ->> 'correlation_id';
DROP INDEX events_correlation_id_idx;
CREATE INDEX events_correlation_idx ON events (correlation_id, position)
  WHERE correlation_id IS NOT NULL;

-- 2. journal_append: inserts a batch of approved events, given as one JSON array, in array
--    order; the caller has checked (journal_check) or vouches for every expected version, and
--    the unique indexes stop anything else. Each element is an array (cheaper to read than an
--    object, whose keys jsonb would sort and search):
--      [stream_id, stream_type, version, event_id, event_type, schema_version,
--       payload object, metadata object, correlation id or null]
--    Under the journal lock (taken here too, so no caller can forget it; it is re-entrant)
--    positions are drawn contiguously in array order. It replaces a COPY, which needs round
--    trips of its own (start, data): a call shares one simple-protocol query string, so one
--    round trip, with BEGIN and COMMIT, and its plan is cached per session. Measured on the
--    group-commit writer (batches of 40 events): about 10% less server CPU per event than COPY
--    with its four round trips, and 20-25% less time per batch. (Objects as elements cost as
--    much as COPY: jsonb sorts and searches their keys.)
CREATE FUNCTION journal_append(p_events jsonb) RETURNS void
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  PERFORM journal_lock();
  INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version,
                      payload, metadata, correlation_id)
  SELECT x.e ->> 0, x.e ->> 1, (x.e ->> 2)::bigint, (x.e ->> 3)::uuid, x.e ->> 4,
         (x.e ->> 5)::integer, x.e -> 6, x.e -> 7, x.e ->> 8
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, k)
   ORDER BY x.k;
END
$$;
