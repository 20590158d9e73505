# kestra-ops image: the backup CronJob's runtime (charts/kestra/templates/backup-cronjob.yaml).
# postgresql-client major must equal the server's (postgres.image.tag in values: 15.x);
# Debian bookworm ships postgresql-client-15, so no PGDG repository is needed.
FROM python:3.11-slim-bookworm

ARG PG_MAJOR=15

RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-${PG_MAJOR} ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/kestra-ops
COPY constraints.txt pyproject.toml setup.py README.md ./
COPY kestra_ops ./kestra_ops
# shipped inside the package (setup.py copies them into kestra_ops/_bundle)
COPY charts ./charts
COPY values ./values
RUN pip install --no-cache-dir --constraint constraints.txt . \
    && pg_dump --version | grep -q " ${PG_MAJOR}\."

# uid/gid 10001: the CronJob's securityContext (runAsUser/runAsGroup) expects it
RUN groupadd --gid 10001 kestra-ops \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kestra-ops
USER 10001:10001
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

ENTRYPOINT ["kestra-ops"]
CMD ["--help"]
