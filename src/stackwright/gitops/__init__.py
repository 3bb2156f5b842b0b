"""GitOps: a stack's Kubernetes objects as files in git, for Argo CD or Flux to apply.

``render`` writes every object a stack renders (plain objects and each Helm release's
manifests), one file per object per environment and namespace, with Secrets encrypted
by SOPS for age recipients, and the Argo CD Applications or Flux Kustomizations that
point at those folders. ``diff`` compares two such renderings object by object;
``status`` compares one with a live cluster. See docs/gitops.md.
"""
