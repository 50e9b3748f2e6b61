# Sensor Hub application image: web (gunicorn), Celery worker and Celery beat all run from it.
# docker-compose.yml chooses the process per service; the default command below starts the web server.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Requirements first, so a code change does not reinstall every package.
COPY requirements/base.txt requirements/base.txt
RUN pip install -r requirements/base.txt

RUN groupadd --system --gid 1000 sensorhub \
    && useradd --system --uid 1000 --gid sensorhub --create-home --home-dir /home/sensorhub sensorhub

# The code stays owned by root, so the running app cannot modify it; only var/ (STATIC_ROOT is var/static, which
# collectstatic fills at start-up) belongs to the app user.
COPY . .
RUN mkdir -p var/static && chown -R sensorhub:sensorhub var

USER sensorhub

EXPOSE 8000

# Gunicorn reads its worker count from WEB_CONCURRENCY (see .env.example).
CMD ["gunicorn", "sensorhub.wsgi", "--bind", "0.0.0.0:8000", "--no-control-socket"]
