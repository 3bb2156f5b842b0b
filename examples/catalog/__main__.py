"""An app catalog: charts/ holds one folder per application chart, each depending on the
shared library chart charts/library (``file://../library``). ``helm.ChartFolder`` makes
each folder a namespace and a release of the same name, with ``values-<stack>.yaml``
from the folder. Adding an app is adding a folder; deleting the folder removes its
namespace and objects.
"""

import stackwright as sw
from stackwright.providers import k8s
from stackwright.providers.k8s import helm

config = sw.Config()
cluster = k8s.Provider("cluster", kubeconfig=config.require_str("kubeconfig"))
catalog = helm.ChartFolder("apps", path="charts", opts=sw.ResourceOptions(provider=cluster))

sw.export("namespaces", sorted(catalog.namespaces))
