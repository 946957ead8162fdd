# Kokyaku API image: dependencies built in one stage, a slim non-root runtime in the other.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
# Install the dependencies into a venv; the application itself runs from /srv as source.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall --yes kokyaku

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/srv \
    KOKYAKU_HOST=0.0.0.0 \
    KOKYAKU_DATABASE_URL=sqlite+aiosqlite:////var/lib/kokyaku/kokyaku.db
RUN useradd --system --uid 10001 --home-dir /var/lib/kokyaku --create-home kokyaku
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
USER kokyaku
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["sh", "-c", "python -m app migrate && exec python -m app serve"]
