-- tally schema 001: the counter, one row.
CREATE TABLE IF NOT EXISTS tally_counter (
    id    smallint PRIMARY KEY CHECK (id = 1),
    value bigint   NOT NULL DEFAULT 0
);

INSERT INTO tally_counter (id, value) VALUES (1, 0)
    ON CONFLICT (id) DO NOTHING;
