"""Providers: AWS, Kubernetes, Helm and the built-in ``local``/``random`` ones."""
