"""A synthetic platform for benchmarks: `count` resources shaped like a real estate of
networks, clusters, per-tenant services and their alarms.

One network per 500 resources; each network has clusters; each cluster has services;
each service has a config object and an alarm that reference it. Dependencies flow
through Outputs, so the graph is what a real program produces.
"""

import stackwright as sw
from stackwright.providers import synthetic

config = sw.Config()
count = config.require_int("count")
generation = config.get_int("generation", 0)
secret_labels = config.get_int("secrets", 0)
"""How many config objects get a secret label (encrypted in state, masked in output)."""

made = 0


def thing(name, **inputs):
    global made
    made += 1
    return synthetic.Thing(name, **inputs)


while made < count:
    net = thing(f"net-{made}", size=generation)
    for c in range(4):
        if made >= count:
            break
        cluster = thing(f"cluster-{made}", ref=net.value)
        for s in range(40):
            if made + 3 > count:
                break
            svc = thing(f"svc-{made}", ref=cluster.value, size=s)
            secret = secret_labels > 0
            secret_labels -= secret
            thing(f"cfg-{made}", ref=svc.value, label=sw.secret(f"cfg-{made}-secret") if secret else "cfg")
            thing(f"alarm-{made}", ref=svc.value, label="alarm")

while made < count:
    thing(f"extra-{made}")

sw.export("count", made)
