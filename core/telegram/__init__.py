"""kadr's side of Telegram beyond aiogram: the durable inbox of updates, the shared send
limits, the outbox every Bot API call passes through, the result sender and its receipts."""
