# syntax=docker/dockerfile:1
# intake in a container: docker build -t intake . (docs/deploy.md, "Containers"; compose.yaml runs
# the whole local stack). One image for every process; deploy/docker-entrypoint.sh chooses which.
ARG PYTHON_VERSION=3.13

# --- build: the virtual environment from the hashed lock, and the compiled catalogues ----------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /venv
COPY requirements.lock /tmp/requirements.lock
RUN /venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock
WORKDIR /app
COPY . .
# The .mo files the app refuses to start without (they are not in git).
RUN /venv/bin/pybabel compile -d intake/translations \
 && rm -rf tests bench .ci .github compose.yaml Dockerfile

# --- run: slim Python, the environment and the code, a user without privileges ------------------
FROM python:${PYTHON_VERSION}-slim-bookworm
# WeasyPrint's libraries and a font, for letters as PDF files (docs/deploy.md; without them HTML only).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 intake \
 && useradd --system --uid 10001 --gid intake --home-dir /var/lib/intake --shell /usr/sbin/nologin intake \
 && install -d -o intake -g intake -m 0700 /var/lib/intake
COPY --from=build /venv /venv
# The code stays root's: the app cannot change itself.
COPY --from=build /app /app
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INTAKE_CONFIG=production \
    INTAKE_INSTANCE_PATH=/var/lib/intake \
    PROMETHEUS_MULTIPROC_DIR=/tmp/intake-metrics \
    LOG_FORMAT=json \
    GUNICORN_BIND=0.0.0.0:8000
WORKDIR /app
USER intake
EXPOSE 8000
# Liveness; orchestrators ask /readyz before sending traffic.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
CMD ["app"]
