-- Read models (persistence/read_models.cpp): projections fold the journal into the *_view tables
-- and store how far they got in projection_checkpoints, in the same transaction, so a view never
-- holds an event twice or misses one. Views are keyed by journal stream (one row per aggregate or
-- saga instance); `version` is the stream version last applied and `position` its journal
-- position. Domain timestamps (created_at, updated_at, started_at) are ms since the Unix epoch,
-- exactly as the events carry them. Rows are updated in place often, so the view tables leave
-- room in each page (fillfactor) for HOT updates, which skip index maintenance when no indexed
-- column changes.

CREATE TABLE projection_checkpoints (
  name       text COLLATE "C" PRIMARY KEY CHECK (name <> '' AND octet_length(name) <= 128),
  -- Every event with a position <= this one has been applied (journal positions are commit-
  -- ordered, see 0001_journal.sql, so nothing can appear below it later).
  position   bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- `state` is the domain encoding of the order state (domain/aggregate_codec.hpp, idempotency
-- map left out): the next event is applied to it, and queries decode it. The other columns are
-- copies for filtering and sorting.
CREATE TABLE orders_view (
  stream_id      text COLLATE "C" PRIMARY KEY,
  order_id       text COLLATE "C" NOT NULL,
  customer_id    text COLLATE "C" NOT NULL,
  status         text        NOT NULL,
  total          bigint      NOT NULL,
  correlation_id text COLLATE "C" NOT NULL,
  saga_id        text COLLATE "C" NOT NULL,
  created_at     bigint      NOT NULL,
  updated_at     bigint      NOT NULL,
  version        bigint      NOT NULL CHECK (version > 0),
  position       bigint      NOT NULL,
  state          jsonb       NOT NULL
) WITH (fillfactor = 85);
CREATE INDEX orders_view_order_id_idx ON orders_view (order_id);
-- GET /orders: a customer's orders, newest first.
CREATE INDEX orders_view_customer_idx ON orders_view (customer_id, created_at DESC, order_id DESC);

CREATE TABLE payments_view (
  stream_id             text COLLATE "C" PRIMARY KEY,
  payment_id            text COLLATE "C" NOT NULL,
  order_id              text COLLATE "C" NOT NULL,
  customer_id           text COLLATE "C" NOT NULL,
  amount                bigint      NOT NULL,
  status                text        NOT NULL,
  transaction_id        text        NOT NULL,
  failure_reason        text        NOT NULL,
  refund_transaction_id text        NOT NULL,
  refund_reason         text        NOT NULL,
  correlation_id        text COLLATE "C" NOT NULL,
  created_at            bigint      NOT NULL,
  updated_at            bigint      NOT NULL,
  version               bigint      NOT NULL CHECK (version > 0),
  position              bigint      NOT NULL
) WITH (fillfactor = 85);
CREATE INDEX payments_view_payment_id_idx ON payments_view (payment_id);
CREATE INDEX payments_view_order_id_idx ON payments_view (order_id);

CREATE TABLE inventory_view (
  stream_id  text COLLATE "C" PRIMARY KEY,
  product_id text COLLATE "C" NOT NULL,
  name       text        NOT NULL,
  price      bigint      NOT NULL,
  available  bigint      NOT NULL,
  reserved   bigint      NOT NULL,
  updated_at bigint      NOT NULL,
  version    bigint      NOT NULL CHECK (version > 0),
  position   bigint      NOT NULL
) WITH (fillfactor = 85);
CREATE INDEX inventory_view_product_id_idx ON inventory_view (product_id);

-- `state` is the domain encoding of the saga state (domain/saga_codec.hpp); every saga event is
-- applied to it with the domain's evolve.
CREATE TABLE sagas_view (
  stream_id      text COLLATE "C" PRIMARY KEY,
  saga_id        text COLLATE "C" NOT NULL,
  saga_type      text        NOT NULL,
  correlation_id text COLLATE "C" NOT NULL,
  order_id       text COLLATE "C" NOT NULL,
  status         text        NOT NULL,
  started_at     bigint      NOT NULL,
  updated_at     bigint      NOT NULL,
  version        bigint      NOT NULL CHECK (version > 0),
  position       bigint      NOT NULL,
  state          jsonb       NOT NULL
) WITH (fillfactor = 85);
CREATE INDEX sagas_view_saga_id_idx ON sagas_view (saga_id);
CREATE INDEX sagas_view_correlation_id_idx ON sagas_view (correlation_id, started_at DESC);
-- GET /saga/active and the FAILED list: small subsets of a large table.
CREATE INDEX sagas_view_open_idx ON sagas_view (status, started_at, saga_id)
  WHERE status IN ('RUNNING', 'COMPENSATING', 'FAILED');

-- Traces (GET /trace/correlation/:id) read a correlation's events from the journal itself.
-- Empty metadata fields are left out of the JSON, so events without one are not indexed.
CREATE INDEX events_correlation_id_idx ON events ((metadata ->> 'correlation_id'), position)
  WHERE (metadata ->> 'correlation_id') IS NOT NULL;

-- Wakes projections (LISTEN saga_journal) when events commit: NOTIFY is delivered at commit and
-- identical notifications of one transaction are coalesced, so a batch costs one notification.
-- The payload is empty: listeners read the journal from their checkpoint anyway.
CREATE FUNCTION journal_notify() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
AS $$
BEGIN
  PERFORM pg_notify('saga_journal', '');
  RETURN NULL;
END
$$;

CREATE TRIGGER events_journal_notify
  AFTER INSERT ON events
  FOR EACH STATEMENT EXECUTE FUNCTION journal_notify();
