-- The append protocol (persistence/pg_event_store.cpp): one transaction per batch that first
-- takes the journal lock (journal_lock, or journal_check which takes it too), then COPYs the
-- approved events into `events`, then commits.
--
-- The journal advisory lock is held until the transaction ends, so appending transactions take
-- turns: positions (the identity default, drawn by the COPY) are handed out in commit order and
-- contiguously within a transaction, and a version checked under the lock stays true until
-- COMMIT. 1397311306 = 'SAGJ'; the second key scopes the lock to this schema's journal.
CREATE FUNCTION journal_lock() RETURNS void
  LANGUAGE sql
  SET search_path FROM CURRENT
AS $$
  SELECT pg_advisory_xact_lock(1397311306, 'events'::regclass::oid::integer);
$$;

-- journal_check: takes the journal lock and classifies requests whose expected version the
-- writer cannot vouch for (see pg_event_store: a request for a new stream, or at the version
-- the writer itself last committed, needs no check — the unique index catches the rest).
--
-- Input, one entry per request: p_stream_ids, p_expected (expected version), p_counts (events
-- in the request); no stream appears twice. p_event_ids: every event id, grouped by request in
-- request order; no id appears twice.
--
-- Output, one row per request: outcome 'ok' (the caller may COPY its events with versions
-- expected + 1, expected + 2, …), 'duplicate' (every event id is already stored in that stream:
-- an idempotent replay; stream_version/last_position are those of the stored events),
-- 'conflict' (the stream is not at the expected version; stream_version is the actual one) or
-- 'invalid' (an event id is already used by another stream).
--
-- Stored event ids are looked up only for stale requests (a replay after a lost acknowledgement
-- carries a stale expected version) or, with p_probe_all, for every request: the caller retries
-- with it when its COPY hits the unique index (a fresh request that reuses a stored id). The
-- plan is generic and cached per session: planning this for every batch would cost more than
-- running it.
CREATE FUNCTION journal_check(
    p_probe_all  boolean,
    p_stream_ids text[],
    p_expected   bigint[],
    p_counts     integer[],
    p_event_ids  uuid[])
  RETURNS TABLE (request integer, outcome text, stream_version bigint, last_position bigint)
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  PERFORM journal_lock();
  RETURN QUERY
  WITH r AS (
    SELECT x.idx::integer AS idx, x.stream_id, x.expected, x.n,
           (sum(x.n) OVER (ORDER BY x.idx) - x.n)::integer AS first_event,
           coalesce((SELECT max(e.version) FROM events e WHERE e.stream_id = x.stream_id), 0)
             AS actual
      FROM unnest(p_stream_ids, p_expected, p_counts)
             WITH ORDINALITY AS x(stream_id, expected, n, idx))
  SELECT r.idx,
         CASE WHEN s.n_seen = 0 THEN
                CASE WHEN r.expected = r.actual THEN 'ok' ELSE 'conflict' END
              WHEN s.n_seen = r.n AND s.n_same = r.n THEN 'duplicate'
              WHEN s.n_same < s.n_seen THEN 'invalid'
              ELSE 'conflict' END,
         CASE WHEN s.n_seen = r.n AND s.n_same = r.n THEN s.seen_version
              WHEN s.n_seen = 0 AND r.expected = r.actual THEN r.expected + r.n
              ELSE r.actual END,
         CASE WHEN s.n_seen = r.n AND s.n_same = r.n THEN s.seen_position END
    FROM r
    CROSS JOIN LATERAL (
      SELECT count(*) AS n_seen, count(*) FILTER (WHERE e.stream_id = r.stream_id) AS n_same,
             max(e.version) AS seen_version, max(e.position) AS seen_position
        FROM unnest(p_event_ids[r.first_event + 1 : r.first_event + r.n]) AS id
        JOIN events e ON e.event_id = id
       WHERE p_probe_all OR r.expected <> r.actual) s
   ORDER BY r.idx;
END
$$;
