"""The artifacts name what the code really serves: probe paths, ports, metric names and settings.

The server is introspected (its FastAPI routes, its Prometheus registry, the Settings defaults), never
started; a rename in the code fails here instead of in a cluster.
"""

from __future__ import annotations

import importlib.util
import re
from urllib.parse import urlparse

import yaml
from deploy.artifacts import (
    DEPLOY,
    DOCKERFILES,
    K8S,
    ROOT,
    compose,
    container,
    env_of,
    env_value,
    find,
    load_manifests,
    parse_dockerfile,
    probe_port,
)

# CURBSIDE_* names in the artifacts that are not Settings fields, and who reads each.
NOT_SETTINGS = {
    "CURBSIDE_CONFIG": "curbside/settings.py load_settings: the dotenv file it names",
    "CURBSIDE_SEED_DIR": "deploy/docker-entrypoint.sh",
    "CURBSIDE_HEALTHCHECK_URL": "deploy/healthcheck.py",
}


def _healthcheck_module():
    spec = importlib.util.spec_from_file_location("curbside_healthcheck", DEPLOY / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _streamlit_health_path() -> str:
    from streamlit.web.server.starlette.starlette_routes import ROUTE_HEALTH

    return "/" + ROUTE_HEALTH.lstrip("/")


def _is_open(path: str, served) -> bool:
    return path.startswith(served.open_paths)


def test_engine_probes_hit_real_routes_that_need_no_api_key(rendered, served):
    for variant, docs in rendered.items():
        engine = container(docs, "curbside-engine", "engine")
        probes = ("startupProbe", "readinessProbe", "livenessProbe")
        paths = {probe: engine[probe]["httpGet"]["path"] for probe in probes}
        assert paths == {"startupProbe": "/health/ready", "readinessProbe": "/health/ready",
                         "livenessProbe": "/health/live"}, variant
        for probe, path in paths.items():
            assert path in served.routes, f"{variant}: {probe} {path} is not a route"
            assert _is_open(path, served), f"{variant}: {probe} {path} would get 401 (kubelet sends no key)"
            assert probe_port(engine, engine[probe]) == served.port


def test_app_probes_hit_streamlits_health_route(rendered, served):
    path = _streamlit_health_path()
    assert path in (ROOT / "curbside" / "cli_run.py").read_text()  # what `curbside run` itself waits on
    for docs in rendered.values():
        app = container(docs, "curbside-app", "app")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert app[probe]["httpGet"]["path"] == path
            assert probe_port(app, app[probe]) == served.app_port


def test_ports_match_the_settings_defaults_everywhere(rendered, served):
    for docs in rendered.values():
        for deployment, name, port, service in (("curbside-engine", "engine", served.port, "curbside-engine"),
                                                ("curbside-app", "app", served.app_port, "curbside-app")):
            c = container(docs, deployment, name)
            assert [p["containerPort"] for p in c["ports"]] == [port]
            svc = find(docs, "Service", service)
            (sp,) = svc["spec"]["ports"]
            assert sp["port"] == port and sp["targetPort"] == c["ports"][0]["name"]
            selector = svc["spec"]["selector"]
            labels = find(docs, "Deployment", deployment)["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items()
        for var, port in (("CURBSIDE_PORT", served.port), ("CURBSIDE_APP_PORT", served.app_port)):
            for deployment, name in (("curbside-engine", "engine"), ("curbside-app", "app")):
                value = env_value(container(docs, deployment, name), var)
                assert value in (None, str(port))
    for path in DOCKERFILES.values():
        ins = parse_dockerfile(path)
        env = env_of(ins)
        assert (env["CURBSIDE_PORT"], env["CURBSIDE_APP_PORT"]) == (str(served.port), str(served.app_port))
        assert [i.args for i in ins if i.keyword == "EXPOSE"] == [f"{served.port} {served.app_port}"]
    services = compose()["services"]
    for name in ("engine", "engine-cuda"):
        assert services[name]["ports"] == [f"127.0.0.1:{served.port}:{served.port}"]
    assert services["app"]["ports"] == [f"127.0.0.1:{served.app_port}:{served.app_port}"]


def test_the_app_reaches_the_engine_through_its_openai_base_url(rendered, served):
    assert "/v1/chat/completions" in served.routes and "/v1/models" in served.routes
    for docs in rendered.values():
        url = urlparse(env_value(container(docs, "curbside-app", "app"), "CURBSIDE_LLM_BASE_URL"))
        svc = find(docs, "Service", url.hostname)
        assert url.scheme == "http" and url.port == svc["spec"]["ports"][0]["port"] and url.path == "/v1"
    url = urlparse(compose()["services"]["app"]["environment"]["CURBSIDE_LLM_BASE_URL"])
    assert (url.hostname, url.port, url.path) == ("engine", served.port, "/v1")


def test_compose_and_image_healthchecks_use_real_open_routes(served):
    hc = _healthcheck_module()
    services = compose()["services"]
    for name in ("engine", "engine-cuda"):
        url = urlparse(services[name]["healthcheck"]["test"][-1])
        assert url.path in served.routes and _is_open(url.path, served) and url.port == served.port
    url = urlparse(services["app"]["healthcheck"]["test"][-1])
    assert url.path == _streamlit_health_path() and url.port == served.app_port
    assert hc.ENGINE_HEALTH_PATH in served.routes and _is_open(hc.ENGINE_HEALTH_PATH, served)
    assert hc.APP_HEALTH_PATH == _streamlit_health_path()
    assert urlparse(hc.engine_url({})).port == served.port
    assert urlparse(hc.app_url({})).port == served.app_port


def test_the_hpa_metric_is_a_gauge_the_server_exports_and_the_adapter_exposes(rendered, served):
    for docs in rendered.values():
        (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
        name = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
        assert name == "curbside_num_requests_waiting"
        assert served.metrics.get(name) == "gauge", f"{name} is not a gauge in the server's registry"
    (adapter,) = load_manifests(K8S / "prometheus-adapter-rules.yaml")
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    (rule,) = [r for r in rules if r["name"]["as"] == name]
    assert re.match(rf"{name}\{{", rule["seriesQuery"])
    assert re.fullmatch(rule["name"]["matches"], name)
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}


def test_prometheus_scrapes_the_real_metrics_route_with_the_key(rendered, served):
    (monitor,) = load_manifests(K8S / "prometheus" / "servicemonitor.yaml")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and "/metrics" in served.routes
    assert not _is_open("/metrics", served) and endpoint["authorization"]["type"] == "Bearer"
    svc = find(rendered["base"], "Service", "curbside-engine")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
    (template,) = load_manifests(K8S / "api-key-secret.template.yaml")
    assert endpoint["authorization"]["credentials"] == {"name": template["metadata"]["name"], "key": "api-key"}


def test_the_grace_period_covers_the_servers_drain(rendered):
    from curbside.settings import Settings

    drain = Settings.model_fields["drain_timeout_s"].default
    for docs in rendered.values():
        spec = find(docs, "Deployment", "curbside-engine")["spec"]["template"]["spec"]
        pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert spec["terminationGracePeriodSeconds"] >= pre_stop + drain + 5
    grace = compose()["services"]["engine"]["stop_grace_period"]
    assert int(grace.rstrip("s")) >= drain + 5


def test_every_curbside_variable_in_the_artifacts_is_a_setting():
    from curbside.settings import Settings

    fields = {f"CURBSIDE_{name.upper()}" for name in Settings.model_fields}
    assert "CURBSIDE_CONFIG" in (ROOT / "curbside" / "settings.py").read_text()
    files = [*DOCKERFILES.values(), DEPLOY / "compose.yaml", DEPLOY / "docker-entrypoint.sh",
             DEPLOY / "healthcheck.py", *K8S.rglob("*.yaml")]
    for path in files:
        for name in set(re.findall(r"\bCURBSIDE_[A-Z0-9_]+", path.read_text())):
            assert name in fields or name in NOT_SETTINGS, f"{path.relative_to(ROOT)}: {name} is not a setting"


def test_the_served_model_name_is_what_the_app_asks_for():
    """The image serves the converted model by path, under the registry name the app's settings expect."""
    from curbside.model_store import DEFAULT_MODEL
    from curbside.settings import Settings

    for path in DOCKERFILES.values():
        env = env_of(parse_dockerfile(path))
        assert env["CURBSIDE_SERVED_MODEL_NAME"] == DEFAULT_MODEL
        settings = Settings(model=env["CURBSIDE_MODEL"], served_model_name=env["CURBSIDE_SERVED_MODEL_NAME"],
                            _env_file=None)
        assert settings.chat_model == DEFAULT_MODEL
