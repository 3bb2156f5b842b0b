"""Helm charts rendered by the real ``helm`` binary; each rendered object is a tracked
``k8s.Object`` child, so previews show object-level diffs. See docs/helm.md.

    from stackwright.providers.k8s import helm

    helm.Chart("web", path="charts/app", namespace="shop",
               values_files=[f"values/{sw.get_stack()}.yaml"], values={"replicas": 2})
"""

from stackwright.providers.k8s.helm.binary import HELM_VERSION, HelmError
from stackwright.providers.k8s.helm.chart import Chart
from stackwright.providers.k8s.helm.folder import ChartFolder

__all__ = ["HELM_VERSION", "Chart", "ChartFolder", "HelmError"]
