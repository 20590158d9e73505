# kestra-ops image: the backup CronJob's runtime (charts/kestra/templates/backup-cronjob.yaml).
#
# Two stages: the first builds kestra-ops's wheel and the wheels of its pinned dependencies
# (constraints.txt); the second installs those wheels only (no compiler, no source tree, no pip
# cache) on the same base, with the PostgreSQL client. postgresql-client's major must equal the
# server's (postgres.image.tag in values: 15.x); Debian bookworm ships postgresql-client-15, so
# no PGDG repository is needed (tests/unit/test_dockerfile.py checks both stay in step).
#
# The base is pinned by digest (a tag moves). To move it: docker buildx imagetools inspect
# python:3.11-slim-bookworm, and replace the digest in both FROM lines (the same in both).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY constraints.txt pyproject.toml setup.py README.md ./
COPY kestra_ops ./kestra_ops
# shipped inside the package (setup.py copies them into kestra_ops/_bundle)
COPY charts ./charts
COPY values ./values
RUN pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG PG_MAJOR=15
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels kestra-ops \
    && rm -rf /wheels \
    && pg_dump --version | grep -q " ${PG_MAJOR}\."

# uid/gid 10001: the CronJob's securityContext (runAsUser/runAsGroup) expects it
RUN groupadd --gid 10001 kestra-ops \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kestra-ops
USER 10001:10001
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

ENTRYPOINT ["kestra-ops"]
CMD ["--help"]
