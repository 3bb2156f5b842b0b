import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

pytest_plugins = ["aws_emulator", "pg_server", "local_cluster", "helm_servers"]
