"""kadr's side of fal: the queue client, a user's photo to fal's storage, and the webhook (its
signature and its binding to a job)."""
