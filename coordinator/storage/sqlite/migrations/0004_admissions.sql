-- Which hosts (names or fnmatch patterns) an administrator admitted to which cluster.
CREATE TABLE admissions (
    cluster TEXT NOT NULL,
    pattern TEXT NOT NULL,
    admitted_at REAL NOT NULL,
    admitted_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (cluster, pattern)
)
