# camwatch service image: `camwatch run` (default), `camwatch simulate`, `camwatch report`.
#   docker build -t camwatch .
#   docker run --rm -p 9745:9745 -v $PWD/inventory:/inventory:ro \
#       -e CAMWATCH_NVR_PASSWORD=... camwatch run --inventory /inventory
# docker-compose.yml runs it with Prometheus, Alertmanager and Grafana.
FROM python:3.11-slim-bookworm

# fonts-noto-cjk: the Traditional Chinese font embedded in the monthly sheet (PDF).
# libglib2.0-0: needed by opencv-python-headless.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY camwatch ./camwatch
COPY inventory ./inventory
COPY probes ./probes
COPY exporters ./exporters
COPY reports ./reports
COPY simulator ./simulator
COPY alembic.ini ./
RUN pip install --no-cache-dir . \
 && useradd --system --home-dir /var/lib/camwatch --create-home camwatch

# Frames are never written anywhere; only the inspection log and state live here.
VOLUME ["/var/lib/camwatch"]
USER camwatch
ENV CAMWATCH_LISTEN=0.0.0.0:9745 \
    CAMWATCH_STORE_URL=sqlite:////var/lib/camwatch/camwatch.db \
    CAMWATCH_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 9745
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9745/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["camwatch"]
CMD ["run", "--inventory", "/app/inventory/example-campus.yaml"]
