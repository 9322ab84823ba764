-- Accounts for the HTTP API (persistence/user_store.cpp). E-mails are stored lower-cased (ASCII
-- letters; the store folds them before every insert and lookup), so the UNIQUE index makes them
-- case-insensitively unique; translate() rather than lower() keeps the check independent of the
-- database's locale. password_hash is an argon2id PHC string, never a plain password.
CREATE TABLE users (
  user_id       text COLLATE "C" PRIMARY KEY CHECK (user_id <> '' AND octet_length(user_id) <= 128),
  email         text COLLATE "C" NOT NULL UNIQUE
                CHECK (email <> '' AND octet_length(email) <= 1024
                       AND email = translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                                                    'abcdefghijklmnopqrstuvwxyz')),
  name          text        NOT NULL CHECK (octet_length(name) <= 1024),
  password_hash text        NOT NULL CHECK (password_hash <> ''),
  role          text        NOT NULL CHECK (role IN ('customer', 'admin')),
  created_at    timestamptz NOT NULL DEFAULT now()
);
