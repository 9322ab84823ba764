-- The event journal: one row per event, ordered globally by `position`. Appending
-- transactions hold the journal advisory lock (see journal_check) while positions are drawn, so
-- positions are handed out in commit order and a reader that only advances its checkpoint never
-- skips an event. Hence: append only through journal_check's transaction, and keep CACHE 1.
CREATE TABLE events (
  position       bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
  stream_id      text COLLATE "C" NOT NULL CHECK (stream_id <> '' AND octet_length(stream_id) <= 512),
  stream_type    text        NOT NULL CHECK (stream_type <> '' AND octet_length(stream_type) <= 128),
  version        bigint      NOT NULL CHECK (version > 0),
  event_id       uuid        NOT NULL,
  event_type     text        NOT NULL CHECK (event_type <> '' AND octet_length(event_type) <= 128),
  schema_version integer     NOT NULL CHECK (schema_version > 0),
  payload        jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  metadata       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  recorded_at    timestamptz NOT NULL DEFAULT now(),
  -- The optimistic-concurrency fence: two writers of the same version cannot both commit.
  CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
  -- Appends are idempotent by event id.
  CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- Latest state of a stream, so recovery replays only the events after it.
CREATE TABLE snapshots (
  stream_id      text COLLATE "C" PRIMARY KEY CHECK (stream_id <> ''),
  stream_type    text        NOT NULL CHECK (stream_type <> ''),
  version        bigint      NOT NULL CHECK (version > 0),
  schema_version integer     NOT NULL CHECK (schema_version > 0),
  payload        jsonb       NOT NULL,
  taken_at       timestamptz NOT NULL DEFAULT now()
);
