"""How a kadr process runs: configuration, the database engine, logs, metrics, what counts as
an outage and how long to wait, streamed downloads and which URLs they may reach, and the
library patches."""
