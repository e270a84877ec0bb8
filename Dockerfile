# Fashion-MNIST workbench: the app with the dataset baked in (works offline) and a volume for models/.
# The install steps are scripts/setup.sh, the same script the README and CI run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PORT=8501

WORKDIR /app
# Only what setup needs first, so the dependency layer is cached across code changes.
COPY requirements.txt ./
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh && rm -rf /var/lib/apt/lists/* /root/.cache/pip

COPY . .
RUN useradd --create-home --uid 10001 workbench \
    && mkdir -p /app/runs \
    && chown -R workbench:workbench /app/models /app/runs
USER workbench

# Retrained models (and the active pointer) survive container restarts.
VOLUME ["/app/models"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health').status == 200 else 1)"

CMD ["bash", "scripts/serve.sh"]
