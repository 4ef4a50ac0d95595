"""Background jobs: support mail, the scheduled month close, low-stock warnings, clean-up.

See ``docs/dev/jobs.md``: procrastinate queues the jobs on PostgreSQL; the embedded SQLite
default runs the same job functions in an in-process runner.
"""
