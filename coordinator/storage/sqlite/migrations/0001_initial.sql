-- Hosts, their profile history and the event log.
CREATE TABLE hosts (
    host_id TEXT PRIMARY KEY,
    cluster TEXT NOT NULL,
    agent_address TEXT NOT NULL DEFAULT '',
    agent_version TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    replayed INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    agent_fingerprint TEXT NOT NULL DEFAULT '',
    profile_version INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    heartbeat_interval REAL NOT NULL
);
CREATE INDEX hosts_cluster ON hosts (cluster);
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    fingerprint TEXT NOT NULL,
    source TEXT NOT NULL,
    raw BLOB NOT NULL,
    features TEXT NOT NULL,
    gained TEXT NOT NULL,
    lost TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX profiles_host ON profiles (host_id, id);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    cluster TEXT NOT NULL,
    host_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX events_cluster_time ON events (cluster, time);
