"""WaveSpeed's REST API and nothing else: transport and its one retry policy, the client,
uploads, tasks, when to poll, webhook signatures."""
