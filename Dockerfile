# Fashion-MNIST workbench: the app with the dataset baked in (works offline), the shipped models inside the
# image, and the user's own registry on a volume (/data).
#   docker build -t fmnist-workbench .     (podman build works the same; see the README's Docker section)

# ---- build: the run-time virtual environment, the dataset, and the source with exactly the shipped models
FROM python:3.11-slim AS build
# Where pip must trust a local CA (a proxy), pass its bundle: --build-arg PIP_CERT=/path with the file mounted.
ARG PIP_CERT=""
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt ./
COPY scripts/setup.sh scripts/setup.sh
# TensorFlow's headers and the libclang binding are for building against it, not for running it.
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
    && bash scripts/setup.sh \
    && rm -rf /root/.cache/pip /var/lib/apt/lists/* \
    && rm -rf .venv/lib/python3.11/site-packages/tensorflow/include .venv/lib/python3.11/site-packages/clang
# Nor does the app run the libraries' own test suites or pip (the build stage's layers never reach the image).
RUN cd .venv/lib/python3.11/site-packages \
    && find pandas scipy numpy matplotlib pyarrow sklearn seaborn -type d -name tests -prune -exec rm -rf {} + \
    && rm -rf pip pip-* /app/.venv/bin/pip*
COPY . /src
# The builder's checkout may hold models it trained itself: the image gets only the manifest's.
RUN .venv/bin/python -c "import sys; sys.path.insert(0, '/src'); from fmnist_core.shipped import main; \
sys.exit(main(['prune', '/src/models']))" \
    && find /src -name __pycache__ -prune -exec rm -rf {} +

# ---- run time: no compilers, test tools or caches
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PORT=8501 \
    FMNIST_MODELS_DIR=/data/models \
    FMNIST_RUNS_DIR=/data/runs \
    FMNIST_FEEDBACK_DB=/data/feedback/feedback.sqlite3
WORKDIR /app
COPY --from=build /usr/share/datasets/fashion-mnist /usr/share/datasets/fashion-mnist
COPY --from=build /app/.venv /app/.venv
COPY --from=build /src /app
RUN useradd --create-home --uid 10001 workbench \
    && mkdir -p /data && chown workbench:workbench /data
USER workbench

# The user's registry (trained models, photo heads, active pointers), job files and the corrections database
# survive restarts and upgrades; the shipped models come from the image at each start (scripts/container/entrypoint.sh).
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD /app/.venv/bin/python -c "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('PORT', '8501'), timeout=4).status == 200 else 1)"

CMD ["bash", "scripts/container/entrypoint.sh"]
