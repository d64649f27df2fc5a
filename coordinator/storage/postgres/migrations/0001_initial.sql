-- Hosts, their profile history and the event log (PostgreSQL's dialect of the SQLite file
-- with the same number: the same tables and columns; JSON kept as text, byte for byte).
CREATE TABLE hosts (
    host_id text PRIMARY KEY,
    cluster text NOT NULL,
    agent_address text NOT NULL DEFAULT '',
    agent_version text NOT NULL DEFAULT '',
    status text NOT NULL,
    replayed boolean NOT NULL,
    fingerprint text NOT NULL,
    agent_fingerprint text NOT NULL DEFAULT '',
    profile_version bigint NOT NULL,
    first_seen double precision NOT NULL,
    last_seen double precision NOT NULL,
    heartbeat_interval double precision NOT NULL
);
CREATE INDEX hosts_cluster ON hosts (cluster);
CREATE TABLE profiles (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host_id text NOT NULL,
    recorded_at double precision NOT NULL,
    fingerprint text NOT NULL,
    source text NOT NULL,
    raw bytea NOT NULL,
    features text NOT NULL,
    gained text NOT NULL,
    lost text NOT NULL,
    summary text NOT NULL
);
CREATE INDEX profiles_host ON profiles (host_id, id);
CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time double precision NOT NULL,
    cluster text NOT NULL,
    host_id text NOT NULL,
    kind text NOT NULL,
    message text NOT NULL,
    details text NOT NULL
);
CREATE INDEX events_cluster_time ON events (cluster, time);
