"""A job from the user's request to its end: the repository, its states and allowed moves,
the lifecycle that writes them, start, cancel, recording fal's result, the result's shape,
failure codes, queues and stats."""
