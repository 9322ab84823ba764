-- The payment gateway's ledger: one row per idempotency key, written by the simulated gateway
-- (persistence/payment_ledger_pg.cpp) with INSERT … ON CONFLICT DO NOTHING, so the first answer
-- for a key is the only one and a retried charge is never recorded twice. `seq` orders entries
-- within one transaction, where recorded_at is the same for all of them.
CREATE TABLE payment_ledger (
  idempotency_key text COLLATE "C" PRIMARY KEY
                  CHECK (idempotency_key <> '' AND octet_length(idempotency_key) <= 1024),
  seq             bigint      GENERATED ALWAYS AS IDENTITY,
  operation       text        NOT NULL CHECK (operation IN ('charge', 'refund')),
  payment_id      text        NOT NULL,
  order_id        text        NOT NULL,
  amount          bigint      NOT NULL CHECK (amount >= 0),
  approved        boolean     NOT NULL,
  transaction_id  text        NOT NULL DEFAULT '',
  reason          text        NOT NULL DEFAULT '',
  recorded_at     timestamptz NOT NULL DEFAULT now()
);

-- Audits read an order's entries in order; orders_charged_twice groups by order.
CREATE INDEX payment_ledger_order_id_idx ON payment_ledger (order_id, seq);
