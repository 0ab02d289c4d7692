#!/usr/bin/env python3
"""Writes every generated monitoring file from the site settings:

  prometheus/alerts.yml and the alert tables in prometheus/README.md, docs/alerts.md
  prometheus/slo_rules.yml, slo_rules_test.yml, interop/*.yml (from slo_file)
  grafana/dashboards/*.json
  deploy/kubernetes/base/prometheusrule.yaml, prometheusrule-slo.yaml,
    dashboards-configmap.yaml

  python3 tools/generate.py            after changing a generator or tools/site.example.toml
  python3 tools/generate.py --check    CI: fails when a committed file differs

A team's own site: put the settings it changes in a TOML file kept anywhere
(keys as in tools/site.example.toml) and write its copy outside the
repository, Kubernetes objects as a kustomize component:

  python3 tools/generate.py --config my-site.toml --output-dir my-monitoring

Python 3.11 standard library only."""
import shared
import outputs


def render(site, for_site):
    files = {}
    for name in shared.GENERATORS:
        files.update(shared.generator(name).render(site, for_site))
    return files


if __name__ == "__main__":
    outputs.main(__doc__, render)
