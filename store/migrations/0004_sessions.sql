-- Signed-in sessions of the agents' console. The cookie carries a random token; only its SHA-256
-- is kept, so a copy of the database signs nobody in. Each session has its own CSRF token, which
-- every state-changing request must echo in a header.
CREATE TABLE agent_sessions (
    token_hash TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent);
