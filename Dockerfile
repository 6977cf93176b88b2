# One image for every kadr process; the command picks the kind (api, worker, migrate).
# Two stages: uv and the build live only in the first; the image gets the locked runtime
# dependencies (no dev tools, no stand-ins: .dockerignore leaves out sandbox/ and tests/) and
# runs as an unprivileged user.
FROM python:3.11-slim AS build
ENV PYTHONDONTWRITEBYTECODE=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
# The version scripts/env.sh pins.
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
# Editable, as in a checkout: core/infra/db.py finds migrations/ beside the packages in /app.
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH="/app/.venv/bin:$PATH"
RUN useradd --system --uid 10001 --home-dir /app kadr
WORKDIR /app
COPY --from=build /app /app
RUN mkdir -p /app/data && chown kadr /app/data
USER kadr
EXPOSE 8000 9101
CMD ["kadr", "api", "--host", "0.0.0.0", "--port", "8000"]
