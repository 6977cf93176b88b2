"""What kadr sells and to whom: the database models, the catalog and its prices, credits,
users and their preferences, payments, bans and broadcasts."""
