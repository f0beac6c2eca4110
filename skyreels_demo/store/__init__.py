"""SQLite records (runs, films, shares) and the disk budget that prunes every file the app writes."""
