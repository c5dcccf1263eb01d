# One image for every cobrador process: `cobrador web` (granian) by default, `cobrador worker`, or a one-off
# `cobrador manage migrate`. Build: docker build -t cobrador .   (see the README's deployment section)
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    COBRADOR_DATA_DIR=/var/lib/cobrador

# psycopg[binary] and granian ship wheels: no compiler or system library is needed.
WORKDIR /opt/cobrador
COPY pyproject.toml README.md ./
COPY tools ./tools
COPY src ./src
RUN pip install . && rm -rf /opt/cobrador/src /opt/cobrador/tools

# A user without a login or a home of its own; the data dir (generated keys, static files, SQLite if no
# COBRADOR_DATABASE_URL is given) is the only place it writes.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cobrador \
    && mkdir -p /var/lib/cobrador && chown cobrador:cobrador /var/lib/cobrador
USER cobrador
VOLUME ["/var/lib/cobrador"]
EXPOSE 8000

ENTRYPOINT ["cobrador"]
CMD ["web", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
