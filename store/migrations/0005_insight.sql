-- Insight: what the reports need beyond the call itself. Portable types only, as in 0001.

-- A caller turn's mood (neutral | frustrated | angry, from the words) and whether the bot had an
-- answer for it (1: the classifier's confidence was below the threshold, a knowledge gap; 0:
-- understood; NULL for the bot's turns and keypad input).
ALTER TABLE turns ADD COLUMN sentiment TEXT;
ALTER TABLE turns ADD COLUMN unanswered BIGINT;

-- Calls from one number, for caller history and the repeat-call rule of containment.
CREATE INDEX calls_caller ON calls (caller, started_at);

-- What people did with the records and the calls: sign-in (and failed sign-in), accepting a
-- call, listening to a recording, reading a call, exporting, purging. Written as it happens,
-- never updated.
CREATE TABLE audit_log (
    at TEXT NOT NULL,
    -- The agent or supervisor (or "system" for the purge job, "cli" for a command).
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    -- What it was done to: a call id, a follow-up id, an export's kind.
    target TEXT,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
