-- The example application's own schema: the tables the example models watch.
-- dawdle's SQL (cargo run --bin dawdle-sql) goes on top of it.

CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    settings    jsonb NOT NULL DEFAULT '{}',
    inserted_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    location    point,
    password    text NOT NULL DEFAULT ''  -- not in the model: never leaves the database
);

CREATE SCHEMA shop;

CREATE TYPE shop.order_status AS ENUM ('pending', 'paid', 'shipped');

CREATE TABLE shop.orders (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id   uuid NOT NULL REFERENCES users (id),
    total     numeric(12, 2) NOT NULL DEFAULT 0,
    status    shop.order_status NOT NULL DEFAULT 'pending',
    placed_at timestamptz NOT NULL DEFAULT now()
);
