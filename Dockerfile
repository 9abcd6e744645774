# The service's image: one image, one process per container (api, processor, banksim, migrate,
# topics are subcommands of `payment-service`). Used by docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
# Dependencies first (pinned by requirements.lock) so code changes reuse this layer.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/deps.txt \
    && pip install -c requirements.lock -r /tmp/deps.txt
COPY . .
RUN pip install --no-deps -c requirements.lock . \
    && useradd --system --uid 10001 --home-dir /app app \
    && mkdir -p /card-keys/private /card-keys/public \
    && chown -R app /card-keys && chmod 700 /card-keys/private
USER app

ENTRYPOINT ["payment-service"]
CMD ["api"]
