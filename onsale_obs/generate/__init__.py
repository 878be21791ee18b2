"""Files generated from one SLO spec: Prometheus rules, Alertmanager routing, Grafana dashboards."""
