"""Reports people look at: the audit as a self-contained HTML page and an SVG matrix.

Presentation only: it reads the audit's JSON document (`AuditReport.to_json`),
which is the same offline and through a coordinator, so both render the same.
"""
