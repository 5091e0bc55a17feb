"""SQLite storage (through sqlite-utils): question log, feedback, sessions, subscribers."""
