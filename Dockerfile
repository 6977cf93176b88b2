# One image for every kadr process; the command picks the kind (api, worker, migrate).
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev && useradd --system --uid 10001 kadr && mkdir -p /app/data \
    && chown kadr /app/data
USER kadr
ENV PATH="/app/.venv/bin:$PATH"
EXPOSE 8000 9101
CMD ["kadr", "api", "--host", "0.0.0.0", "--port", "8000"]
