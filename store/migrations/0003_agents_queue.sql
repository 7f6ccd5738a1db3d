-- Human agents, the queue's log, the callers waiting in it, and the follow-ups (callbacks and
-- voicemails) agents work through. Portable types only, as in 0001.

-- People who take calls (and supervisors). The password is kept as an argon2id PHC string; a
-- phone registers with SIP digest, which needs the HA1 hashes of the same password for the realm
-- they were made for (a realm change means setting the password again).
CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    -- agent | supervisor
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    -- Comma-separated, lower case: languages and topics (en, zh, orders, returns, billing).
    skills TEXT NOT NULL,
    -- The SIP user the agent's phone registers as (none: console only).
    extension TEXT UNIQUE,
    sip_realm TEXT,
    sip_ha1_md5 TEXT,
    sip_ha1_sha256 TEXT,
    -- signed_out | available | on_break: kept over restarts.
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Everything that happens in the queue, in the manner of Asterisk's queue_log: entered, offered,
-- no_answer, declined, connect, complete, abandon, exit_with_key, exit_with_timeout, status.
CREATE TABLE queue_events (
    at TEXT NOT NULL,
    server TEXT NOT NULL,
    call_id TEXT,
    agent TEXT,
    event TEXT NOT NULL,
    -- The event's fields (position, wait, hold and talk times, key) as JSON.
    detail TEXT
);
CREATE INDEX queue_events_at ON queue_events (at);
CREATE INDEX queue_events_call ON queue_events (call_id);

-- Callers in the queue now (a row leaves when the caller does): what a restarted server finds
-- here was queued when its predecessor died, and is logged as abandoned.
CREATE TABLE queue_entries (
    call_id TEXT PRIMARY KEY,
    server TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    priority BIGINT NOT NULL,
    entry_position BIGINT NOT NULL
);

-- Work left for agents: a callback a caller asked for, or a voicemail they left.
CREATE TABLE follow_ups (
    id TEXT PRIMARY KEY,
    -- callback | voicemail
    kind TEXT NOT NULL,
    call_id TEXT,
    -- The number to call back (confirmed by caller ID or keyed in).
    number TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- queue_key | wait_over | after_hours | no_agents
    reason TEXT NOT NULL,
    -- The voicemail's recording (a WAV path), its transcript and summary.
    audio TEXT,
    transcript TEXT,
    summary TEXT,
    -- open | done
    status TEXT NOT NULL,
    done_by TEXT,
    done_at TEXT
);
CREATE INDEX follow_ups_status ON follow_ups (status, created_at);
