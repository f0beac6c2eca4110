"""Spans of time the app counts in, in seconds, written once.

Caps, key refusals, the door's hourly counts, the disk's age limit, the balance watch and the
price all count in hours and days; WaveSpeed's own week of keeping a prediction is a fact both
the studio (a run older than that cannot be fetched) and the offline backend (which keeps to it)
rely on.
"""

from __future__ import annotations

MINUTE_S = 60.0
HOUR_S = 3600.0
DAY_S = 86400.0
# WaveSpeed deletes a prediction and its outputs this long after it was made.
WAVESPEED_RETENTION_S = 7 * DAY_S
