# floe-monitoring: the Dagster code location as an image. Its default command serves the location with
# `dagster code-server start` on port 4000 (the Helm chart's user deployment runs the same with its own port).
#
#   docker build -t registry.example.com/data/floe-monitoring:0.1.0 .
#
# The install steps live in docker/install.sh, which CI also runs into a fresh virtual environment and serves
# the location from (no Docker engine runs in CI): floe_monitoring_tests/integration/test_image_install.py.
# Contracts and the monitoring config are read from mounted paths (ConfigMaps in Kubernetes); the image holds an
# empty contracts directory and an empty config (spec defaults), so it also starts with nothing mounted.

FROM python:3.11.14-slim-bookworm AS build

# No pip cache in the layer; bytecode is compiled at install (the runtime user cannot write the venv).
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY floe_monitoring_defs/ floe_monitoring_defs/
COPY docker/install.sh docker/install.sh
RUN sh docker/install.sh /opt/floe/venv /src

FROM python:3.11.14-slim-bookworm

# A fixed numeric user: Kubernetes can verify `runAsNonRoot` only for a numeric USER.
RUN groupadd --system --gid 10001 floe \
    && useradd --system --uid 10001 --gid floe --home-dir /opt/dagster --no-create-home --shell /usr/sbin/nologin floe \
    && mkdir -p /opt/dagster/dagster_home /opt/dagster/app /etc/floe/contracts /etc/floe/config /var/lib/floe/spool \
    && printf '# Spec defaults; mount the monitoring config over /etc/floe/config (a ConfigMap).\n' \
        > /etc/floe/config/monitoring.yaml \
    && chown -R floe:floe /opt/dagster /var/lib/floe

COPY --from=build /opt/floe/venv /opt/floe/venv

# The config file has its own directory: a ConfigMap mounted as a directory (not subPath, so that updates reach
# the pod) over /etc/floe would hide the contracts mount under it.
ENV PATH=/opt/floe/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    FLOE_CONTRACTS_DIR=/etc/floe/contracts \
    FLOE_MONITORING_CONFIG=/etc/floe/config/monitoring.yaml \
    FLOE_SPOOL_DIR=/var/lib/floe/spool

WORKDIR /opt/dagster/app
USER 10001:10001
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "floe_monitoring_defs"]
