# The service's image: one image, one process per container (api, processor, banksim, migrate,
# topics are subcommands of `payment-service`). Used by docker-compose.yml.
#
# Two stages. The builder installs the runtime dependencies from requirements-prod.lock (hash
# pinned, wheels only: no compiler is needed or present) and the project's own wheel into a
# virtual environment at /opt/venv. The runtime stage is a clean python:3.12-slim with that venv
# copied in: no pip cache, no build tools, no tests/, bench/, docs/, .stack/ or state/ (only
# pyproject.toml, README.md, LICENSE, the locks and src/ ever enter the builder).
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
# Dependencies first, so that a code change reuses this layer. The venv has no pip of its own:
# the base image's pip installs into it (--python).
COPY requirements-prod.lock ./
RUN python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --require-hashes --only-binary :all: \
        --no-deps -r requirements-prod.lock
# The project's own wheel (its build backend, setuptools, is fetched by pip for this step only).
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /build/wheels . \
    && pip --python /opt/venv/bin/python install --no-deps /build/wheels/payment_service-*.whl \
    && pip --python /opt/venv/bin/python check

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
# A system user without a shell; its home is the working directory, the one place it may write.
# Quix Streams creates its state folder ("state/", relative) there, and the settings' optional
# .env files would be read from there: never from the code's folder, which stays read-only.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/payment-service \
        --create-home --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0750 /var/lib/payment-service/state \
    && install -d -o app -g app -m 0755 /card-keys /card-keys/public \
    && install -d -o app -g app -m 0700 /card-keys/private \
    && install -d -o app -g app -m 0755 /signing-keys /signing-keys/public \
    && install -d -o app -g app -m 0700 /signing-keys/init /signing-keys/api /signing-keys/processor
COPY --from=builder /opt/venv /opt/venv
WORKDIR /var/lib/payment-service
USER 10001:10001

# The API's health (GET /health = 200, on API_PORT) as the image's default check: the default
# command is the API. docker-compose.yml sets the bank simulator's own check and disables it for
# the processor and the one-shot init, which have no port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('API_PORT', '8000'), timeout=3)"]

ENTRYPOINT ["payment-service"]
CMD ["api"]
