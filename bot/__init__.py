"""The conversation: aiogram routers and handlers, keyboards, texts, middlewares."""
