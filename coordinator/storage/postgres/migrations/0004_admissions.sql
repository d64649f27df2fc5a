-- Which hosts (names or fnmatch patterns) an administrator admitted to which cluster.
CREATE TABLE admissions (
    cluster text NOT NULL,
    pattern text NOT NULL,
    admitted_at double precision NOT NULL,
    admitted_by text NOT NULL DEFAULT '',
    PRIMARY KEY (cluster, pattern)
)
