"""The use cases, knowing no screen: a run's request, recorder and finisher; the line and
pacing; who pays and caps; variations, prompts, films, takes, sweeps."""
