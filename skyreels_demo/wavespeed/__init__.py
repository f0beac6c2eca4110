"""WaveSpeed's REST API and nothing else: transport and its one retry policy (retries), the
client, uploads, tasks, when to poll (schedule, from what tasks usually take: expectation),
following a task to its end (follow), webhook signatures."""
