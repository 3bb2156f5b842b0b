"""Kubernetes: the local cluster, and the provider that manages objects in a cluster."""
