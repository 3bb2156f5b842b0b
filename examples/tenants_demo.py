"""The tenants layer of the platform example: one customer per config line.

Called by demo.py with a scratch folder. When the local cluster's binaries are built,
starts a private local cluster, applies the three dev tenants, adds a fourth customer as
one line of stacks/dev.yaml and prints the review Markdown of that change (a pull-request
comment: only the new tenant's objects), applies that tenant alone with
`up --target tenant:NAME`, removes a customer (exactly its objects are deleted) and
destroys. Otherwise it prints the review of the dev tenants from scratch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from demo import check, say, sw

NEW_CUSTOMER = "      - {name: globex, size: small, values: {ingress: {host: globex.dev.localhost}, settings: {CUSTOMER: Globex}}}\n"


def use_kubeconfig(project: Path, kubeconfig: Path) -> None:
    stack_file = project / "stacks" / "dev.yaml"
    text = stack_file.read_text()
    current = yaml.safe_load(text)["config"]["tenants"]["kubeconfig"]
    stack_file.write_text(text.replace(f"kubeconfig: {current}", f"kubeconfig: {kubeconfig}"))


def add_customer(project: Path) -> None:
    stack_file = project / "stacks" / "dev.yaml"
    stack_file.write_text(stack_file.read_text() + NEW_CUSTOMER)
    print(f"$ echo '{NEW_CUSTOMER.strip()}' >> stacks/dev.yaml")


def remove_customer(project: Path, name: str) -> None:
    stack_file = project / "stacks" / "dev.yaml"
    lines = stack_file.read_text().splitlines(keepends=True)
    stack_file.write_text("".join(line for line in lines if f"name: {name}," not in line))
    print(f"$ sed -i '/name: {name},/d' stacks/dev.yaml")


def story(project: Path) -> None:
    say("Three customers in stacks/dev.yaml: each gets a namespace, RBAC, quota, network policy, PDB and a release")
    text = sw(project, "up", "--yes")
    check("Update succeeded" in text and "40 create." in text, "three tenants, 40 objects")
    say("A new customer is one config line; the review shows exactly its objects")
    add_customer(project)
    review = sw(project, "preview", "--format", "markdown")
    check("| `dev` | 13 | 0 | 0 | 0 |" in review and "globex" in review and "initech$" not in review,
          "13 objects to create, all globex's; nothing else changes")
    say("Apply that customer alone")
    check("13 create." in sw(project, "up", "--yes", "--target", "tenant:globex"), "only globex's objects applied")
    say("A customer leaves: delete its line; exactly its objects are deleted")
    remove_customer(project, "initech")
    text = sw(project, "preview")
    check("13 to delete" in text and "to create" not in text and "to update" not in text,
          "initech's 13 objects are deleted, nothing else changes")
    sw(project, "up", "--yes")
    say("Destroy the tenants layer")
    check("Destroy succeeded" in sw(project, "destroy", "--yes"), "every tenant's objects are deleted")


def main(work: Path) -> None:
    from apps_demo import cluster_tools_missing, copy_project, on_local_cluster

    project = copy_project(work, "tenants")
    sw(project, "stack", "init", "dev")
    missing = cluster_tools_missing()
    if missing:
        say("No local cluster is built, so review the three dev tenants from scratch")
        add_customer(project)
        check("globex" in sw(project, "preview", "--format", "markdown"), "the review lists the new customer")
        print(f"\nTo deploy them ({', '.join(missing)} missing): make kube-tools, then run this demo again.")
    else:
        on_local_cluster(project, work / "tenants-cluster",
                         lambda kubeconfig: (use_kubeconfig(project, kubeconfig), story(project)))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
