# irbot: the Slack incident-response bot, served on port 3000.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATABASE_URL=sqlite:////data/irbot.db

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin irbot \
    && mkdir -p /data && chown irbot /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY playbooks ./playbooks
COPY aws ./aws
COPY storage ./storage
RUN pip install ".[postgres]"

USER irbot
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"
CMD ["irbot", "serve", "--host", "0.0.0.0", "--port", "3000"]
