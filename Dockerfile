# forge-app: slim image, non-root, SQLite in a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    FORGE_APP_DATABASE=/data/forge-app.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY forge_app ./forge_app
COPY storage ./storage
RUN pip install --no-compile . \
    && useradd --create-home --uid 10001 forge \
    && mkdir -p /data && chown forge:forge /data

USER forge
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["forge-app", "serve", "--host", "0.0.0.0", "--port", "8000"]
