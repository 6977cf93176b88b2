"""The worker process and its tasks: submit, deliver, cancel, sweep, broadcast."""
